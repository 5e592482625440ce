"""Optimizers and learning-rate schedules from the training config."""

from __future__ import annotations

import keras

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
        return keras.optimizers.Adam(**common)
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(weight_decay=config.weight_decay, **common)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
        return optimizer
    return keras.optimizers.SGD(momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay or None, **common)
