"""Process-level training settings: precision policy, distribution strategy, seeds, determinism.

The only global state the toolkit touches is Keras' dtype policy (and TF's determinism switch when
asked); both are set here, explicitly, from the run config.
"""

from __future__ import annotations

import logging
import os

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_has_bf16_units() -> bool:
    """True on x86 CPUs with bfloat16 matrix instructions (AMX-BF16 or AVX-512 BF16), per /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str) -> str:
    """'auto' is mixed_float16 on a GPU and float32 on a CPU, on every CPU, so that a config trains
    the same numbers wherever it runs. On CPUs with bf16 matrix units (AMX, AVX-512 BF16) an explicit
    ``mixed_bfloat16`` is much faster (a bf16 matmul ran 4x float32's GFLOP/s on such a machine);
    on CPUs without them mixed precision is correct but slower than float32, hence the warning."""
    if precision == "auto":
        return "mixed_float16" if has_gpu() else "float32"
    if precision != "float32" and not has_gpu() and not (precision == "mixed_bfloat16" and cpu_has_bf16_units()):
        log.warning("precision %s on a CPU without matching units: correct but usually slower than float32",
                    precision)
    return precision


def set_precision(precision: str) -> str:
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TF; optionally make TF ops deterministic (slower, reproducible)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """'auto': MirroredStrategy over all GPUs when there are several, else the default strategy.
    'multi_worker': MultiWorkerMirroredStrategy, configured by the TF_CONFIG environment variable
    (one process per machine). 'mirrored': MirroredStrategy over every local GPU (or the CPU)."""
    if name == "multi_worker":
        return multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if name == "mirrored":
        # Every local GPU; without GPUs, every logical CPU device (one unless the process split the
        # CPU into several logical devices, which is how the tests exercise replication).
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    return tf.distribute.get_strategy()


def resolve_jit(jit_compile: bool | str) -> bool | str:
    """XLA pays off on GPUs; on CPUs LSTMs under XLA compile slowly, so 'auto' means off there."""
    if jit_compile == "auto":
        return "auto" if has_gpu() else False
    return jit_compile


# -- multi-worker (one process per machine, TF_CONFIG) ---------------------------------------------
# TensorFlow configures collective ops once per process, before the first op runs, and refuses a
# second MultiWorkerMirroredStrategy after that ("Collective ops must be configured at program
# startup"). The strategy is therefore created once per process and TF_CONFIG and reused: this is
# TensorFlow's own process-level state, held here so every caller (trainer, contrastive trainer,
# CLI) gets the same object.
_MULTI_WORKER: dict[str, tf.distribute.Strategy] = {}


def multi_worker_strategy() -> tf.distribute.Strategy:
    """The process's MultiWorkerMirroredStrategy for ``$TF_CONFIG``, created on the first call.

    Call it (or :func:`distribution_strategy` with ``"multi_worker"``) before any other TensorFlow
    work in the process; ``semmatch-tf train`` does so when the config says ``multi_worker``.
    """
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError("distribution 'multi_worker' needs the TF_CONFIG environment variable")
    if config not in _MULTI_WORKER:
        _MULTI_WORKER[config] = tf.distribute.MultiWorkerMirroredStrategy()
        _let_keras_build_from_a_local_batch()
    return _MULTI_WORKER[config]


def _let_keras_build_from_a_local_batch() -> None:
    """Work around Keras 3's first-batch build under MultiWorkerMirroredStrategy (still needed in
    Keras 3.15.1 with TF 2.21; keras-team/keras#20585).

    Before the first step, ``TensorFlowTrainer._maybe_symbolic_build`` all-reduces the first
    distributed batch with ``strategy.reduce("MEAN", batch)`` only to read its shapes and dtypes.
    With MultiWorkerMirroredStrategy that is a cross-worker collective on the whole nested batch,
    and it fails for a dict of string/int features: ``ValueError: Attempt to convert a value
    ({'query': PerReplica:{...}}) with an unsupported type (<class 'dict'>) to a Tensor``. The
    replacement reads shapes and dtypes from this worker's first local replica instead (identical
    on every worker, and no collective is needed to learn them); every other strategy keeps
    Keras' own code. Installed once, when the process creates its multi-worker strategy.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    if getattr(original, "_semmatch_local_batch", False):
        return

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            data_batch = tf.nest.map_structure(
                lambda value: strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues) else value, batch)
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    maybe_symbolic_build._semmatch_local_batch = True
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = _mean_over_workers(tf_trainer.reduce_per_replica)


def _mean_over_workers(reduce_per_replica):
    """Keras 3.15.1's ``reduce_per_replica`` averages each step's logs across workers with
    ``strategy.reduce("MEAN", value, axis=0)``; the logs are scalars (loss, metrics), and a scalar
    has no axis 0: ``Invalid reduction dimension 0 for input with 0 dimensions``. The mean across
    replicas is ``axis=None``; every other reduction and strategy keeps Keras' own code."""

    def reduce(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return reduce_per_replica(values, strategy, reduction)
        return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)

    return reduce
