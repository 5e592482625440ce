"""The ``semmatch-tf`` command line: a thin layer over the package's Python API.

Each sub-command parses its arguments, calls one library function and prints the result; the
logic lives in the library so that notebooks and scripts get exactly the same behaviour.

Rooms: ``app.py`` (the parser and :func:`main`), ``commands.py`` (one function per sub-command),
``inputs.py`` (arguments and text files checked before TensorFlow loads), ``errors.py`` (one-line
failures). Heavy imports stay inside the command functions on purpose: a bad argument or file is
refused in a second, before TensorFlow starts.
"""

from semmatch_tf.cli.app import build_parser, main
from semmatch_tf.cli.commands import _demo_search  # noqa: F401 (tests call it)

__all__ = ["main", "build_parser"]
