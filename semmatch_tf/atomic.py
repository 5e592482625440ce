"""Atomic writers: readers see the old file or directory or the new one, complete, never half of it.

A write goes to a hidden temporary sibling first and is renamed into place; a crash mid-write leaves
only the hidden sibling (removed by the next write), never a truncated file or a half-built folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary sibling and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)  # a full disk leaves no partial temporary behind
        raise


def write_directory_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)``, then swap ``tmp_dir`` in for ``target``.

    Readers see the old directory or the new one, complete (a crash mid-write leaves only a hidden
    ``.NAME.tmp-PID`` sibling, never a half-written directory); the swap itself is two renames.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    aside = target.with_name(f".{target.name}.old-{os.getpid()}")
    for leftover in (temporary, aside):
        shutil.rmtree(leftover, ignore_errors=True)
    temporary.mkdir()
    try:
        write(temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists():
        os.rename(target, aside)
    os.rename(temporary, target)
    shutil.rmtree(aside, ignore_errors=True)
    return target
