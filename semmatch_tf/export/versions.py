"""Version directories of an export: TF Serving's ``NAME/VERSION/`` layout, written atomically.

A version is written into a hidden, non-numeric sibling (``NAME/.tmp-VERSION-HOST-PID-TOKEN``) that
TF Serving ignores, then renamed into place (:func:`publish_version`), so TF Serving never sees a
half-written version; without an explicit version the next free one is taken, also when a
concurrent export takes it first. A crash leaves only hidden directories, which the next export
removes once their writer is dead (:func:`clean_stale`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import Callable

from semmatch_tf.processes import pid_alive

METADATA_FILE = "semmatch_metadata.json"
EXTRA_DIR = "assets.extra"


# -- version directories -------------------------------------------------------------------------
_HIDDEN = re.compile(r"^\.(tmp|old)-(\d+)-([A-Za-z0-9]*)-(\d+)-[0-9a-f]+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _hidden_name(kind: str, version: int) -> str:
    """``.tmp-3-HOST-PID-TOKEN``: hidden and non-numeric, so TF Serving never loads it."""
    return f".{kind}-{version}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


def existing_versions(model_dir: str | Path) -> list[int]:
    """Numeric version directories, as TF Serving sees them."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def clean_stale(model_dir: str | Path) -> list[Path]:
    """Remove hidden leftovers of exports whose process died (same host only).

    A leftover ``.old-V-*`` whose version ``V`` is missing is the old version of an interrupted
    ``force`` replace: it is renamed back instead of deleted.
    """
    removed = []
    for path in Path(model_dir).iterdir():
        match = _HIDDEN.match(path.name)
        if not match or match.group(3) != _host() or pid_alive(int(match.group(4))):
            continue
        target = path.parent / match.group(2)
        if match.group(1) == "old" and not target.exists():
            os.rename(path, target)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` so the renamed version survives a power loss."""
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _install(temporary: Path, target: Path, force: bool) -> Path:
    """Rename the finished version into place; with ``force`` move the old one aside first."""
    if not target.exists():
        try:
            os.rename(temporary, target)
        except OSError as error:  # another exporter won the race for this version
            raise FileExistsError(f"{target} appeared while exporting; not overwritten") from error
        return target
    if not force:
        raise FileExistsError(f"{target} already exists ({FORCE_HINT})")
    old = target.with_name(_hidden_name("old", int(target.name)))
    os.rename(target, old)
    try:
        os.rename(temporary, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FORCE_HINT = "use --force on the command line, force=True in Python, to replace it"
_VERSION_RACE_TRIES = 20


def check_model_name(name: str) -> str:
    """A model name TF Serving's ``model_config`` and every file system accept: letters, digits,
    ``.``, ``_`` and ``-``, not starting with a dot (no separators, backslashes or newlines)."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ValueError(f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def publish_version(base_dir: str | Path, name: str, version: int | None, force: bool,
            write: Callable[[Path, int], None]) -> Path:
    """Pick the version, write into a hidden temporary directory, rename it into place.

    Without an explicit ``version`` the next free one is taken; when a concurrent export takes it
    first, this one moves on to the next free number instead of failing.
    """
    model_dir = Path(base_dir) / check_model_name(name)
    automatic = version is None
    if not automatic and int(version) < 1:  # before anything is created
        raise ValueError(f"version must be a positive integer, got {version}")
    model_dir.mkdir(parents=True, exist_ok=True)
    clean_stale(model_dir)
    version = next_version(model_dir) if automatic else int(version)
    target = model_dir / str(version)
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists ({FORCE_HINT})")
    temporary = model_dir / _hidden_name("tmp", version)
    try:
        temporary.mkdir()
        write(temporary, version)
        _fsync_tree(temporary)
        target = _install_next_free(temporary, model_dir, version) if automatic else _install(temporary, target, force)
        _fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def _install_next_free(temporary: Path, model_dir: Path, version: int) -> Path:
    """Rename ``temporary`` to the first free version from ``version`` on (renumbering its metadata)."""
    for _ in range(_VERSION_RACE_TRIES):
        target = model_dir / str(version)
        if not target.exists():
            try:
                os.rename(temporary, target)
                return target
            except OSError:
                pass  # another exporter renamed its version in between: try the next number
        version = max(version + 1, next_version(model_dir))
        _renumber(temporary, version)
    raise FileExistsError(f"{model_dir}: no free version after {_VERSION_RACE_TRIES} tries (too many concurrent exports)")


def _renumber(directory: Path, version: int) -> None:
    """Record a new version number in an unpublished export's metadata."""
    path = directory / EXTRA_DIR / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["version"] = version
    path.write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
