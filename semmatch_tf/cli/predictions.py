"""``semmatch-tf predict`` as a stream: pairs are read, scored and written a chunk at a time, so a
file of any size runs in constant memory and the first lines reach stdout at once.

A file is read twice: once to check every line and count them (before TensorFlow loads, so a bad
line fails in a second and the progress bar knows its total), once to score. Stdin is read once.
An ``--output`` file is written to a hidden sibling and renamed when the last chunk is in: readers
never see half a file, and a failure leaves no file at all.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

CHUNK_PAIRS = 2048  # pairs scored per step: large enough to batch well, small enough to stream
EMPTY_COLUMNS = ("query", "product", "score")

Records = list[dict]
Scorer = Callable[[list[str], list[str]], Records]


def stream_predictions(pairs: Iterable[list[str]], score: Scorer, output: Path | None, *,
                       total: int | None, progress: bool, class_names: list[str] | None = None) -> int:
    """Score ``pairs`` chunk by chunk with ``score(queries, products) -> records`` and write them:
    JSON lines on stdout without ``output``, else a .jsonl / .csv / .parquet file by its suffix.
    Returns how many predictions were written."""
    chunks = _scored_chunks(pairs, score, total=total, progress=progress)
    if output is None:
        count = 0
        for records in chunks:
            sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            sys.stdout.flush()
            count += len(records)
        return count
    from semmatch_tf.atomic import write_file_atomically

    written = []
    writer = WRITERS[output.suffix.lower()]
    write_file_atomically(output, lambda tmp: written.append(writer(tmp, chunks, class_names)))
    print(f"{written[0]} predictions written to {output}", file=sys.stderr)
    return written[0]


def _scored_chunks(pairs: Iterable[list[str]], score: Scorer, *, total: int | None,
                   progress: bool) -> Iterator[Records]:
    bar = _pair_bar(total) if progress else None
    try:
        iterator = iter(pairs)
        while chunk := list(itertools.islice(iterator, CHUNK_PAIRS)):
            records = score([pair[0] for pair in chunk], [pair[1] for pair in chunk])
            if bar is not None:
                bar.update(len(chunk))
            yield records
    finally:
        if bar is not None:
            bar.close()


def _pair_bar(total: int | None):
    """A tqdm bar over pairs on stderr (tqdm comes with keras-hub's dependencies)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="scoring", unit="pair", file=sys.stderr)


def _write_jsonl(path: Path, chunks: Iterator[Records], class_names: list[str] | None) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for records in chunks:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            count += len(records)
    return count


def _write_csv(path: Path, chunks: Iterator[Records], class_names: list[str] | None) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for records in chunks:
            _flat_table(records, class_names).to_csv(handle, index=False, header=count == 0)
            count += len(records)
        if count == 0:
            _flat_table([], class_names).to_csv(handle, index=False)
    return count


def _write_parquet(path: Path, chunks: Iterator[Records], class_names: list[str] | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    count, writer = 0, None
    try:
        for records in chunks:
            table = pa.Table.from_pandas(_flat_table(records, class_names), preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            count += len(records)
        if writer is None:  # no pairs: the three columns, typed, no rows
            schema = pa.schema([("query", pa.string()), ("product", pa.string()), ("score", pa.float64())])
            pq.write_table(schema.empty_table(), path)
    finally:
        if writer is not None:
            writer.close()
    return count


WRITERS = {".jsonl": _write_jsonl, ".csv": _write_csv, ".parquet": _write_parquet}


def _flat_table(records: Records, class_names: list[str] | None):
    """Records as a flat table: the class probabilities become one ``p_<class>`` column each; an
    empty chunk keeps the query, product and score columns."""
    import pandas as pd

    rows = []
    for record in records:
        row = {k: v for k, v in record.items() if k != "probabilities"}
        row.update({f"p_{name}": p for name, p in zip(class_names or [], record.get("probabilities", []))})
        rows.append(row)
    if not rows:
        return pd.DataFrame({column: pd.Series([], dtype=object if column != "score" else float)
                             for column in EMPTY_COLUMNS})
    return pd.DataFrame(rows)
