"""Reading the batch pipelines' input: files -> chunks (lists) of checked dict records.

One Beam element per chunk, never per record: Beam pays a fixed cost per element at every step
(windowing, a timestamp, a range-tracker claim, bookkeeping), and on 50k titles that cost, paid per
record, was as large as the model's own time (``benchmarks/NOTES.md``).

- **Parquet** is read a row group at a time (``ReadFromParquetBatched``, split across workers by row
  group) and sliced into chunks.
- **JSON lines** are read by :class:`JsonLinesChunks`, a splittable file source: Beam splits each
  file into byte ranges as it does for ``ReadFromText``, and each range is read in blocks, cut into
  lines and parsed ``size`` lines at a time (one ``json.loads`` over the chunk as a JSON array).
- **TFRecords** are read a record at a time and chunked by ``BatchElements`` at a fixed size.

Every record is checked (:func:`check_record`); a bad one stops the pipeline with one line naming
the file and the record (:class:`BatchInputError`).

Examples:
    >>> from semmatch_tf.batch.sources import check_record
    >>> check_record({"product_id": "p1", "title": "oak table"}, ("title",), "catalogue.jsonl")["title"]
    'oak table'
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filebasedsource import FileBasedSource

BLOCK_BYTES = 8 << 20  # a JSON-lines range is read this much at a time (plus the line it ends inside)


class BatchInputError(ValueError):
    """A record the pipeline cannot use (a missing or non-text field), named by file and record."""


def read_chunks(pipeline, source: str, input_format: str, size: int, fields: Sequence[str]):
    """The file(s) ``source`` (a path or glob) as chunks of up to ``size`` dict records holding (at
    least) ``fields`` as non-empty strings."""
    label, fields = f"Read {input_format}", tuple(fields)
    if input_format == "parquet":
        return (pipeline | label >> beam.io.ReadFromParquetBatched(source)
                | "Chunk and check" >> beam.FlatMap(table_chunks, size, fields, source))
    if input_format == "jsonl":
        return (pipeline | label >> beam.io.Read(JsonLinesChunks(source, size))
                | "Parse and check" >> beam.Map(parse_json_chunk, fields))
    return (pipeline | label >> beam.io.ReadFromTFRecord(source)
            | "Chunk" >> beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | "Parse and check" >> beam.Map(lambda chunk: [check_record(parse_example(item), fields, source)
                                                           for item in chunk]))


class JsonLinesChunks(FileBasedSource):
    """JSON-lines file(s) as chunks ``(file name, [(byte offset, line), ...])`` of up to ``size``
    non-blank lines. The next step parses them (:func:`parse_json_chunk`): a bad record raised while
    reading would be retried by the runner as a failed read, and its message lost.

    Splits like Beam's text source: a line belongs to the byte range it starts in, so each range
    skips the partial line it starts inside and reads past its end to finish its last line. Each
    line is claimed from the range tracker before it joins a chunk (a cheap call; it is the per-record
    Beam element that costs), so a runner may still split a range while it is read. Blank lines are
    skipped.

    Args:
        pattern: a file path or glob.
        size: lines per chunk.
    """

    def __init__(self, pattern: str, size: int) -> None:
        super().__init__(pattern)
        self.size = size

    def read_records(self, file_name: str, range_tracker) -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
        lines: list[tuple[int, bytes]] = []
        for offset, line in self._claimed_lines(file_name, range_tracker):
            lines.append((offset, line))
            if len(lines) == self.size:
                yield file_name, lines
                lines = []
        if lines:
            yield file_name, lines

    def _claimed_lines(self, file_name: str, range_tracker) -> Iterator[tuple[int, bytes]]:
        """``(offset, line)`` for the non-blank lines that start in the range, each claimed (until
        a claim fails: the range was cut there, the rest is another reader's)."""
        start = range_tracker.start_position()
        with self.open_file(file_name) as handle:
            position = start
            if start > 0:  # skip the partial line this range starts inside (its reader is the previous range)
                handle.seek(start - 1)
                position = start - 1 + len(handle.readline())
            while position < (stop := range_tracker.stop_position()):
                block = handle.read(min(BLOCK_BYTES, stop - position))
                if not block:
                    return
                block += b"" if block.endswith(b"\n") else handle.readline()
                for line in block.split(b"\n")[:-1] if block.endswith(b"\n") else block.split(b"\n"):
                    if line.strip():
                        if not range_tracker.try_claim(position):
                            return
                        yield position, line
                    position += len(line) + 1


def parse_json_chunk(chunk: tuple[str, Sequence[tuple[int, bytes]]], fields: tuple[str, ...]) -> list[dict]:
    """A :class:`JsonLinesChunks` chunk's JSON objects as checked records.

    The lines are parsed as one JSON array (one C call, not one per line); if that fails or does not
    give one object per line, line by line. Errors name the file and the line's byte offset.
    """
    source, lines = chunk
    try:
        records = json.loads(b"[" + b",".join(line for _, line in lines) + b"]")
    except ValueError:
        records = None
    if records is None or len(records) != len(lines) or not all(isinstance(r, dict) for r in records):
        records = [parse_json_line(line, line_at(source, offset)) for offset, line in lines]
    return [check_record(record, fields, line_at(source, offset)) for record, (offset, _) in zip(records, lines)]


def line_at(source: str, offset: int) -> str:
    return f"{source} (the line at byte {offset})"


def table_chunks(table, size: int, fields: tuple[str, ...], source: str) -> Iterable[list[dict]]:
    """A pyarrow table's rows as checked dict records, ``size`` at a time."""
    for start in range(0, table.num_rows, size):
        yield [check_record(record, fields, source) for record in table.slice(start, size).to_pylist()]


def parse_json_line(line: str | bytes, source: str) -> dict:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    try:
        record = json.loads(line)
    except ValueError as error:
        raise BatchInputError(f"{source}: a line is not JSON ({error}): {text[:80]!r}") from None
    if not isinstance(record, dict):
        raise BatchInputError(f"{source}: a line is not a JSON object: {text[:80]!r}")
    return record


def parse_example(serialized: bytes) -> dict:
    """A tf.train.Example of bytes (or int/float) features as a dict of Python values."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    record = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
        record[name] = values[0] if len(values) == 1 else values
    return record


def check_record(record: dict, fields: tuple[str, ...], source: str) -> dict:
    for field in fields:
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            name = record.get("product_id", record.get("id"))
            where = f" (product_id {name!r})" if name is not None else ""
            problem = "missing" if value is None else f"not a non-empty string ({type(value).__name__})"
            raise BatchInputError(f"{source}: field {field!r} is {problem}{where}")
    return record
