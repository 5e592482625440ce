"""How traced inference runs on the CPU: float32 as trained, or bfloat16 through oneDNN's graph rewrite.

Keras' ``mixed_bfloat16`` policy has to be chosen before a model is built and casts around every
op it does not fuse. TensorFlow's oneDNN bfloat16 rewrite (a grappler pass,
``auto_mixed_precision_onednn_bfloat16``, official since TF 2.12) instead converts an existing
float32 graph when a traced function is first instantiated, keeping fused sub-graphs whole, so it
applies to any loaded run or export without rebuilding the model. It pays on CPUs with bf16 matrix
instructions (AVX-512 BF16, AMX) and changes outputs slightly (worst cosine to float32 0.99994 on
e5-small in ``benchmarks/run_multilingual.py``, 0.99997 on MiniLM): it is an opt-in, never the default.

The switch is process state in TensorFlow, so :func:`compute_scope` sets it only around the calls it
wraps and puts the previous value back. TensorFlow instantiates a function once per configuration,
so a function called inside and outside the scope keeps one float32 and one bf16 graph side by
side and each call runs the one its scope asks for.

Examples:

>>> import tensorflow as tf
>>> double = tf.function(lambda x: tf.matmul(x, x))
>>> with compute_scope("bfloat16"):
...     _ = double(tf.eye(2))
>>> tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16", False)
False
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import tensorflow as tf

COMPUTE_MODES = ("float32", "bfloat16")
REWRITE = "auto_mixed_precision_onednn_bfloat16"
# Ops the rewrite may otherwise run in bf16 because their inputs are: keeping the residual-stream
# additions in float32 took e5-small's worst cosine to float32 from 0.9961 to 0.99994 and MiniLM's
# from 0.99985 to 0.99997, at the same or better speed (TensorFlow reads these lists from the
# environment when it rewrites a graph; the scope adds to them and restores them).
FLOAT32_OPS = {"TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE": "AddV2"}


def per_object_function(python_function, input_signature: list) -> tf.types.experimental.PolymorphicFunction:
    """``tf.function`` for a graph built once per loaded model, index or tokenizer.

    TensorFlow keys its "N out of the last N calls triggered tf.function retracing" warning on the
    Python *code*, so a process that loads its fifth model (a notebook, an ensemble, a test run)
    is warned though each object traced once, as it must. With a fixed ``input_signature`` a
    function here never retraces for its own object, so that warning can only be noise: it is
    turned off for these functions alone, not for the process.
    """
    function = tf.function(python_function, input_signature=input_signature, reduce_retracing=True)
    if hasattr(function, "_omit_frequent_tracing_warning"):  # TensorFlow's own switch, per function
        function._omit_frequent_tracing_warning = True
    return function


def check_compute(mode: str) -> str:
    """``mode`` if it is one of :data:`COMPUTE_MODES`, else a ValueError naming the choices."""
    if mode not in COMPUTE_MODES:
        raise ValueError(f"compute must be one of {list(COMPUTE_MODES)}, got {mode!r}")
    return mode


def training_compute(precision: str) -> str:
    """The compute mode that goes with a training precision: a ``mixed_bfloat16`` run also gets the
    bf16 rewrite, which converts what the Keras policy leaves in float32 (with both on, MiniLM
    fine-tuning ran 1.36x float32's pairs/s in ``benchmarks/run_peers.py`` on a CPU with AVX-512
    BF16, where probes of either alone gave about 1.08x). Use it as
    ``compute_scope(mode, float32_adds=False)``."""
    return "bfloat16" if precision == "mixed_bfloat16" else "float32"


@contextlib.contextmanager
def compute_scope(mode: str = "float32", *, float32_adds: bool = True) -> Iterator[None]:
    """Run the ``tf.function`` calls inside in ``mode``; the previous setting is restored on exit.

    Args:
        mode: "float32" (nothing changes) or "bfloat16" (oneDNN's bf16 graph rewrite on).
        float32_adds: keep the additions in float32 (:data:`FLOAT32_OPS`): what inference wants.
            Training under ``mixed_bfloat16`` passes False: its float32 master weights absorb the
            rounding, and the bf16 adds fuse (MiniLM fine-tuning: 51.5 pairs/s against 37.5).
    """
    if check_compute(mode) == "float32":
        yield
        return
    previous = bool(tf.config.optimizer.get_experimental_options().get(REWRITE, False))
    environment = {name: os.environ.get(name) for name in FLOAT32_OPS}
    if float32_adds:  # added to a list the user may have set, not replacing it
        for name, ops in FLOAT32_OPS.items():
            listed = [op for op in (environment[name] or "").split(",") if op]
            os.environ[name] = ",".join(listed + [op for op in ops.split(",") if op not in listed])
    tf.config.optimizer.set_experimental_options({REWRITE: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({REWRITE: previous})
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
