"""Errors for bad input files: always name the file, the row and the field."""

from __future__ import annotations

from pathlib import Path

#: Encodings a message need not mention: the default, and binary formats.
_PLAIN = {"utf-8", "utf8", "parquet"}


class DataFormatError(ValueError):
    """A data file could not be read into judged pairs.

    Attributes:
        path: the file.
        row: 1-based data row (the header is row 0; JSON lines: the line number); ``None`` when
            the problem is the whole file.
        field: the column or JSON field at fault; ``None`` when not about one field.
        encoding: the text encoding the file was decoded with (or detected as); ``None`` when
            unknown. The message names it when it is not UTF-8 (e.g. a latin-1 fallback), since
            that is where mojibake comes from.
    """

    def __init__(self, path: str | Path, message: str, *, row: int | None = None,
                 field: str | None = None, encoding: str | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.field = field
        self.encoding = encoding
        self.reason = message
        shown = encoding and encoding.lower() not in _PLAIN and encoding not in message
        where = [f"{self.path} (read as {encoding})" if shown else self.path]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")
