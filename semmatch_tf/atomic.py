"""Atomic writers: readers see the old file or directory or the new one, complete, never half of it.

A write goes to a hidden temporary sibling first and is renamed into place; a crash mid-write leaves
only the hidden sibling (removed by the next write), never a truncated file or a half-built folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`write_file_atomically`): a failed write (a full
    disk) removes its temporary, so nothing partial is left behind."""
    write_file_atomically(path, lambda temporary: temporary.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_file_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` for a hidden sibling with ``path``'s suffix (Keras and matplotlib
    pick the format from it), then rename it to ``path``; a failed write removes the temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_directory_atomically(target: Path, write: Callable[[Path], None], *, overwrite: bool = True) -> Path:
    """Call ``write(tmp_dir)``, then swap ``tmp_dir`` in for ``target``.

    Readers see the old directory or the new one, complete (a crash mid-write leaves only a hidden
    ``.NAME.tmp-PID`` sibling, never a half-written directory); the swap itself is two renames.
    ``overwrite=False`` refuses a ``target`` that exists and is not an empty directory
    (:class:`FileExistsError`, checked before writing and again before the swap), leaving it as it was.
    """
    target = Path(target)
    if not overwrite:
        refuse_existing(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    for leftover in (temporary, aside):
        shutil.rmtree(leftover, ignore_errors=True)
    temporary.mkdir()
    try:
        write(temporary)
        if not overwrite:
            refuse_existing(target)  # it may have appeared while writing
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists():
        os.rename(target, aside)
    os.rename(temporary, target)
    shutil.rmtree(aside, ignore_errors=True)
    return target


def refuse_existing(target: Path) -> None:
    """Raise :class:`FileExistsError` when ``target`` exists and is not an empty directory."""
    target = Path(target)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty: not overwritten "
                              "(overwrite=True replaces it)")


def read_json_object(path: Path, *, remedy: str = "") -> dict:
    """A JSON object file written by one of these writers; garbage, a non-object or undecodable bytes
    raise a ValueError naming the file (and ``remedy``, e.g. "rebuild the index")."""
    suffix = f"; {remedy}" if remedy else ""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}){suffix}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}{suffix}")
    return value
