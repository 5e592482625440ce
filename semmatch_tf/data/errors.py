"""Errors for bad input files: always name the file, the row and the field."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file could not be read into judged pairs.

    Attributes:
        path: the file.
        row: 1-based data row (the header is row 0); ``None`` when the problem is the whole file.
        field: the column or JSON field at fault; ``None`` when not about one field.
    """

    def __init__(self, path: str | Path, message: str, *, row: int | None = None,
                 field: str | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.field = field
        self.reason = message
        where = [self.path]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")
