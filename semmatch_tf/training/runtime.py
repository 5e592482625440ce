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
        if "TF_CONFIG" not in os.environ:
            raise ValueError("distribution 'multi_worker' needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
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
