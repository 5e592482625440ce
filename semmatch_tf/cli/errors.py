"""How the CLI fails: bad input in one line, a full disk in one line, TensorFlow's start-up noise
silenced, and an output directory it created removed when nothing was written into it."""

from __future__ import annotations

import errno
import importlib
import importlib.abc
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from semmatch_tf.quiet import import_tensorflow


#: What bad input raises (ConfigError and DataFormatError are ValueErrors; UnicodeDecodeError
#: too). Deliberately not OSError or Exception: a disk or programming error keeps its traceback
#: (except a full or read-only disk, DISK_ERRORS, which is reported in one line).
INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


_DISK_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "File too large")


def _disk_full(error: BaseException, output) -> str | None:
    """The one-line message when ``error`` is a full (or read-only) disk, else None.

    Besides an OSError with ENOSPC & co., writers report it their own way: TensorFlow's file
    system as ResourceExhaustedError "...; No space left on device", h5py as "[Errno 28] Can't
    close file (... filename = '...' ...)", pyarrow as a short write "4694 requested and 3040 written"
    (no errno), others maybe with no sign but the output's file system having no space left."""
    import re

    text = str(error)
    found = getattr(error, "errno", None) in DISK_ERRORS or any(m in text for m in _DISK_MESSAGES)
    found = found or bool(isinstance(error, OSError) and re.fullmatch(r"\d+ requested and \d+ written", text))
    if not found and isinstance(error, OSError) and output is not None:
        try:
            probe = Path(output)
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            stats = os.statvfs(probe)
            found = stats.f_bavail == 0
        except OSError:
            found = False
    if not found:
        return None
    where = getattr(error, "filename", None)
    if where is None:
        match = re.search(r"filename = '([^']+)'", text) or re.search(r"(/[^;\s]+); No space", text)
        where = match.group(1) if match else output
    reason = next((m for m in _DISK_MESSAGES if m in text), "No space left on device")
    return f"{reason.lower()} while writing {where}" if where else reason.lower()


def _remove_if_empty(path: str | Path | None) -> None:
    """Remove an output directory this command created when the command failed before writing any
    file into it (a refused input must not leave an empty run directory behind)."""
    if path is None or not os.path.isdir(path) or os.path.islink(path):
        return
    if not any(files for _, _, files in os.walk(path)):
        shutil.rmtree(path, ignore_errors=True)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ runtime writes start-up lines (oneDNN, CUDA stubs, "All log messages before
    absl::InitializeLog()") straight to descriptor 2 while it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a refused input would print them above its one error line. Only
    with ``TF_CPP_MIN_LOG_LEVEL`` >= 1 (the CLI's default is 3) and without ``--verbose``; an import
    failure still raises its ImportError.
    """

    def __init__(self) -> None:
        self._spec = None

    @classmethod
    def install(cls) -> "_QuietTensorFlowImport | None":
        if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
            return None
        finder = cls()
        sys.meta_path.insert(0, finder)
        return finder

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or "tensorflow" in sys.modules:
            return None
        self.uninstall()
        module = import_tensorflow()
        self._spec = module.__spec__
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return sys.modules["tensorflow"]  # imported above; the import system only binds it

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the import system set ours; TensorFlow keeps its own


def _one_line(error: BaseException) -> str:
    """The error's message on one line (some library messages span several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
