"""The one strict reader of text and table files, and the field checks every loader shares.

Every text file goes through :func:`read_text` (UTF-8 with an optional fallback, UTF-16/32
refused with the byte-order mark named); tables through :func:`read_delimited`,
:func:`read_jsonl` or :func:`read_parquet`; fields through :func:`text_column`,
:func:`id_column`, :func:`number_column` and :func:`class_column`, which raise
:class:`~semmatch_tf.data.errors.DataFormatError` naming the file, the 1-based data row and the
field. Used by the pair loaders (:mod:`semmatch_tf.data.loaders`) and the catalogue reader
(:mod:`semmatch_tf.retrieval.index`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import reprlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.data.errors import DataFormatError
from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame

log = logging.getLogger(__name__)


# -- reading ---------------------------------------------------------------------------------------
#: Byte-order marks of the wide Unicode encodings, longest first (UTF-32-LE starts like UTF-16-LE).
WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32-LE"), (b"\x00\x00\xfe\xff", "UTF-32-BE"),
             (b"\xff\xfe", "UTF-16-LE"), (b"\xfe\xff", "UTF-16-BE"))


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing file, a directory or no permission is a DataFormatError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFormatError(path, "is a directory, expected a file") from None
    except NotADirectoryError:
        raise DataFormatError(path, f"{path.parent} is a file, expected a directory") from None
    except PermissionError:
        raise DataFormatError(path, "permission denied") from None
    except OSError as error:  # a symlink loop, an I/O error
        raise DataFormatError(path, f"cannot read: {error.strerror or error}") from None


def _check_not_wide(path: Path, data: bytes, encoding: str) -> None:
    """Refuse UTF-16/32 text read as an 8-bit encoding: it would decode to NUL-riddled nonsense
    (every column name "missing") or, as latin-1, to silent mojibake."""
    if encoding.lower().replace("-", "").replace("_", "").startswith(("utf16", "utf32")):
        return
    for bom, name in WIDE_BOMS:
        if data.startswith(bom):
            raise DataFormatError(path, f"file is {name} (byte-order mark {bom.hex(' ')}), not {encoding}; "
                                        f"convert it, e.g. iconv -f {name} -t UTF-8", encoding=name)
    if b"\x00" in data[:4096]:
        raise DataFormatError(path, f"NUL bytes in the first 4 KiB: probably UTF-16 or UTF-32 without a "
                                    f"byte-order mark, not {encoding}; convert it to UTF-8")


def read_text(path: Path, encoding: str = "utf-8", fallback: str | None = None) -> tuple[str, str]:
    """Whole file as text, and the encoding it was decoded with.

    ``fallback`` (e.g. latin-1 for Home Depot) is used only when the bytes are not valid
    ``encoding``; otherwise undecodable bytes are reported with their 1-based line. A leading
    UTF-8 BOM is dropped; an empty (or whitespace-only) file is an error.
    """
    data = read_bytes(path)
    _check_not_wide(path, data, encoding)
    try:
        text, used = data.decode(encoding), encoding
    except UnicodeDecodeError as error:
        if fallback is None:
            line = data[: error.start].count(b"\n") + 1
            raise DataFormatError(path, f"bytes not valid {encoding} at offset {error.start} "
                                        f"(line {line}): {data[error.start:error.start + 4]!r}",
                                  row=line, encoding=encoding) from None
        text, used = data.decode(fallback), fallback
        log.info("%s: not valid %s (offset %d); read as %s", path, encoding, error.start, fallback)
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise DataFormatError(path, "empty file", encoding=used)
    return text, used


def read_delimited(path: Path, *, sep: str, header: bool, names: Sequence[str] | None = None,
                    encoding: str = "utf-8", fallback: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """CSV/TSV as strings, every field kept verbatim (no NA guessing); a BOM is dropped.

    A header-only file is an error (it would load zero pairs). The frame's ``attrs`` record the
    file and the encoding used (see :func:`source_of`).
    """
    text, used = read_text(path, encoding, fallback)
    quoting = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None, names=names, dtype=str,
                            keep_default_na=False, quoting=quoting, nrows=limit, lineterminator=None,
                            on_bad_lines="error", engine="python" if sep == "\t" else "c")
    except (pd.errors.ParserError, csv.Error) as error:
        raise DataFormatError(path, f"malformed {kind}: {' '.join(str(error).split())}", encoding=used) from None
    if frame.empty and limit != 0:
        raise DataFormatError(path, f"no data rows (only a header: {list(frame.columns)})", encoding=used)
    if header:
        _check_unique_header(path, text, sep, quoting, used)
    frame = frame.map(lambda v: v.replace("\ufeff", "").rstrip("\r") if isinstance(v, str) else v)
    frame.attrs.update(path=str(path), encoding=used)
    return frame


def _check_unique_header(path: Path, text: str, sep: str, quoting: int, encoding: str) -> None:
    """A column named twice is an error: pandas would rename the second ``name.1`` and the loader
    read the first, silently ignoring the other."""
    names = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep, quoting=quoting), [])
    names = [name.strip().rstrip("\r") for name in names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFormatError(path, f"duplicate column(s) {repeated} in the header", field=repeated[0],
                              encoding=encoding)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook`` for json.loads: a key twice in one object is an error (json keeps the last)."""
    record = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"duplicate key {key!r}")
        record[key] = value
    return record


def read_jsonl(path: Path, limit: int | None = None) -> pd.DataFrame:
    """JSON lines (UTF-8), one object per line; blank lines are skipped. The frame's index is
    each record's 1-based line number, so that errors name the line even after blank lines."""
    records, lines = [], []
    text, used = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, f"malformed JSON: {error.msg}", row=number) from None
        except RecursionError:
            raise DataFormatError(path, "malformed JSON: nested too deeply", row=number) from None
        except ValueError as error:  # a duplicate key
            raise DataFormatError(path, f"malformed JSON: {error}", row=number) from None
        if not isinstance(record, dict):
            raise DataFormatError(path, f"each line must be a JSON object, got {type(record).__name__}", row=number)
        records.append(record)
        lines.append(number)
        if limit is not None and len(records) >= limit:
            break
    frame = pd.DataFrame.from_records(records, index=lines)
    frame.attrs.update(path=str(path), encoding=used, numbered=True)
    return frame


def read_parquet(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    if path.is_dir():
        raise DataFormatError(path, "is a directory, expected a Parquet file")
    try:
        frame = pd.read_parquet(path, columns=list(columns) if columns else None)
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except (ValueError, KeyError) as error:  # pyarrow's ArrowInvalid (not Parquet at all) is a ValueError too
        what = f"cannot read Parquet columns {list(columns)}" if columns else "not a readable Parquet file"
        raise DataFormatError(path, f"{what}: {error}") from None
    except Exception as error:  # pyarrow raises its own error types for corrupt files
        raise DataFormatError(path, f"not a readable Parquet file: {error}") from None
    frame.attrs.update(path=str(path), encoding="parquet")
    return frame


# -- validation ------------------------------------------------------------------------------------
def data_row(frame: pd.DataFrame, position: int, row_offset: int = 1) -> int:
    """The 1-based row of a frame's ``position``-th record (JSON lines: its line number)."""
    return int(frame.index[position]) if frame.attrs.get("numbered") else position + row_offset


def fail_at(frame: pd.DataFrame, path: Path, message: str, position: int, field: str,
          row_offset: int = 1) -> DataFormatError:
    """The error for one bad value: file, 1-based row, field and the encoding the file was read in."""
    return DataFormatError(path, message, row=data_row(frame, position, row_offset), field=field,
                           encoding=frame.attrs.get("encoding"))


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    for column in columns:
        if column not in frame.columns:
            raise DataFormatError(path, f"missing column (found {list(frame.columns)})", field=column,
                                  encoding=frame.attrs.get("encoding"))


def describe_value(value) -> str:
    """A wrong value in a message: its type and a short repr (bounded: never the repr of a huge list)."""
    shown = _REPR.repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def text_column(frame: pd.DataFrame, column: str, path: Path, row_offset: int = 1) -> list[str]:
    """Stripped texts of a column. A missing or empty text names its row; so does a value that is
    not a string (a JSON number, list or object is refused rather than stringified)."""
    texts = []
    for position, value in enumerate(frame[column].tolist()):
        if not isinstance(value, str) and not is_missing(value):
            raise fail_at(frame, path, f"expected text, got {describe_value(value)}", position, column, row_offset)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            raise fail_at(frame, path, "empty text", position, column, row_offset)
        texts.append(text)
    return texts


def id_column(frame: pd.DataFrame, column: str, path: Path, row_offset: int = 1) -> list[str]:
    """Ids of a column as strings: text or whole numbers; a missing, empty or other value names its row."""
    ids = []
    for position, value in enumerate(frame[column].tolist()):
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a JSON/Parquet integer column that pandas widened to float
        if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
            message = "empty id" if is_missing(value) else f"expected an id (text or integer), got {describe_value(value)}"
            raise fail_at(frame, path, message, position, column, row_offset)
        text = str(value).strip()
        if not text:
            raise fail_at(frame, path, "empty id", position, column, row_offset)
        ids.append(text)
    return ids


def as_number(value) -> float:
    """A label as a float: numbers and numeric strings; NaN for anything else (bools, lists, "")."""
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else np.nan
    except ValueError:
        return np.nan


def number_column(frame: pd.DataFrame, column: str, path: Path, low: float, high: float, row_offset: int = 1) -> np.ndarray:
    values = np.array([as_number(v) for v in frame[column].tolist()], dtype=np.float64)
    bad = np.isnan(values) | (values < low) | (values > high)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise fail_at(frame, path, f"label {frame[column].iloc[position]!r} is not a number in [{low}, {high}]",
                    position, column, row_offset)
    return values


def class_column(frame: pd.DataFrame, column: str, path: Path, mapping: dict, row_offset: int = 1) -> np.ndarray:
    missing = np.flatnonzero([is_missing(v) for v in frame[column].tolist()])
    if len(missing):  # a short row or a JSON line without the key: not the label "nan"
        raise fail_at(frame, path, f"missing label; expected one of {sorted(mapping)}", int(missing[0]), column,
                    row_offset)
    keys = frame[column].astype(str).str.strip()
    codes = keys.map(mapping)
    bad = codes.isna().to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise fail_at(frame, path, f"unknown label {keys.iloc[position]!r}; expected one of {sorted(mapping)}",
                    position, column, row_offset)
    return codes.to_numpy(dtype=np.int64)


def source_of(*frames: pd.DataFrame) -> dict:
    """Provenance for :attr:`PairDataset.source`: each file read and the encoding it was decoded with."""
    return {"files": {f.attrs["path"]: f.attrs.get("encoding") for f in frames if "path" in f.attrs}}


def pair_dataset(name: str, labels: LabelScheme, frames: Sequence[pd.DataFrame], **columns) -> PairDataset:
    """The canonical dataset of ``columns``, recording where ``frames`` were read from."""
    return PairDataset(build_frame(**columns), labels, name, source=source_of(*frames))
