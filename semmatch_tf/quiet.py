"""TensorFlow imported without its C++ start-up lines.

TensorFlow 2.21 writes "All log messages before absl::InitializeLog() is called are written to
STDERR", the oneDNN notice and "Could not find cuda drivers" straight to file descriptor 2 while it
is imported, twice (two shared objects), whatever ``TF_CPP_MIN_LOG_LEVEL`` says; Jupyter shows
them as red stderr in the first cell. :func:`import_tensorflow` points descriptor 2 at /dev/null
for the import alone and puts it back, so later errors and warnings still show. The CLI and the
notebooks' set-up cell both use it.

Examples:

>>> tf = import_tensorflow()
>>> int(tf.constant(1))
1
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from types import ModuleType
from typing import Iterator


@contextlib.contextmanager
def descriptor_silenced(descriptor: int = 2) -> Iterator[None]:
    """Point ``descriptor`` (stderr by default) at /dev/null inside the block, then restore it."""
    saved = os.dup(descriptor)
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` without its start-up lines (a no-op when it is already imported).

    Returns:
        The ``tensorflow`` module.

    Examples:

    >>> import semmatch_tf
    >>> semmatch_tf.import_tensorflow().__name__
    'tensorflow'
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with descriptor_silenced(2):
        return importlib.import_module("tensorflow")
