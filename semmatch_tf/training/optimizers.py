"""Optimizers and learning-rate schedules from the training config.

Adam and AdamW update each variable with TensorFlow's fused ``ResourceApplyAdam`` kernel
(:class:`FusedAdam`, :class:`FusedAdamW`): one pass over a variable and its two moments, where
Keras' update is about a dozen element-wise ops, each a pass over memory. On MiniLM's 22.7M
parameters (half of them the token embedding, updated every step) that took an update from 66-77
to 30 ms on 2 CPU cores, ~6% of a fine-tuning step (``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from semmatch_tf.training.config import TrainingConfig


@keras.saving.register_keras_serializable(package="semmatch_tf")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to the peak rate, then the wrapped decay (BERT-style fine-tuning)."""

    def __init__(self, peak: float, warmup_steps: int, decay: keras.optimizers.schedules.LearningRateSchedule | None):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.decay = decay

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * step / max(1, self.warmup_steps)
        after = self.decay(step - self.warmup_steps) if self.decay is not None else self.peak
        return keras.ops.where(step < self.warmup_steps, warm, after)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "decay": keras.saving.serialize_keras_object(self.decay)}

    @classmethod
    def from_config(cls, config: dict) -> "WarmupSchedule":
        config = dict(config)
        config["decay"] = keras.saving.deserialize_keras_object(config["decay"])
        return cls(**config)


class FusedAdamStep:
    """Adam's update of one variable as TensorFlow's ``ResourceApplyAdam``: the same formula as
    Keras' (``m += (g - m)(1 - b1)``, ``v += (g² - v)(1 - b2)``, ``w -= m · lr·sqrt(1 - b2^t)/(1 - b1^t)
    / (sqrt(v) + eps)``) in one kernel; results equal Keras' on dense gradients up to float32
    rounding (``tests/test_config.py``). An embedding's sparse gradient (``IndexedSlices``) is made
    dense, its repeated rows summed, as PyTorch's Adam sees it; Keras' own sparse path squares each
    repeat separately for the second moment, so embedding rows of tokens seen twice in a batch
    differ from it. AMSGrad, and variables that are not TensorFlow variables, take Keras' own
    update. A mixin: the optimizer's config, slots and checkpoints are Keras'."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not isinstance(variable, tf.Variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle, v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype))  # IndexedSlices made dense: repeated rows summed


@keras.saving.register_keras_serializable(package="semmatch_tf")
class FusedAdam(FusedAdamStep, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with the fused update (:class:`FusedAdamStep`).

    Examples:
        >>> import keras, numpy as np
        >>> weight = keras.Variable(np.ones(3, "float32"))
        >>> optimizer = FusedAdam(learning_rate=0.1)
        >>> _ = optimizer.apply_gradients([(np.array([1.0, -1.0, 0.0], "float32"), weight)])
        >>> weight.numpy().round(3).tolist()
        [0.9, 1.1, 1.0]
    """


@keras.saving.register_keras_serializable(package="semmatch_tf")
class FusedAdamW(FusedAdamStep, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` (decoupled weight decay, Keras') with the fused Adam update."""


def learning_rate_schedule(config: TrainingConfig, total_steps: int):
    """constant | cosine (to 0) | linear (to 0), each with optional linear warm-up."""
    warmup = int(round(config.warmup_fraction * total_steps))
    decay_steps = max(1, total_steps - warmup)
    if config.schedule == "cosine":
        decay = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps, alpha=0.0)
    elif config.schedule == "linear":
        decay = keras.optimizers.schedules.PolynomialDecay(config.learning_rate, decay_steps, 0.0, power=1.0)
    else:
        decay = None
    if warmup == 0:
        return decay if decay is not None else config.learning_rate
    return WarmupSchedule(config.learning_rate, warmup, decay)


def build_optimizer(config: TrainingConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam, AdamW (decoupled weight decay; embeddings, biases and norms excluded) or SGD+momentum."""
    rate = learning_rate_schedule(config, total_steps)
    common = {"learning_rate": rate, "clipnorm": config.clipnorm,
              "gradient_accumulation_steps": config.gradient_accumulation_steps}
    if config.optimizer == "adam":
        return FusedAdam(**common)
    if config.optimizer == "adamw":
        optimizer = FusedAdamW(weight_decay=config.weight_decay, **common)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
        return optimizer
    return keras.optimizers.SGD(momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay or None, **common)
