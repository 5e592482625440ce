"""Adversarial training on the input embeddings: FGM and PGD (Miyato et al. 2017; Madry et al. 2018).

Each training step also scores the batch with its token embeddings pushed a small distance
``epsilon`` in the direction that raises the loss most, and fits the mean of the clean and the
perturbed loss (the two gradients are computed apart and averaged). Small judged sets overfit to exact token identities; the perturbed pass asks the
model to give the same answer to near-identical embeddings, a smoothness prior that costs one
(FGM) or ``steps + 1`` (PGD) extra forward/backward passes per step.

The perturbation is applied to the rows of the embedding table that the batch uses (the variant
common in text-matching competitions): ``r = epsilon * g / ||g||`` with ``g`` the loss gradient
with respect to those rows (FGM), or ``steps`` projected ascent steps of size ``step_size`` inside
the ``epsilon`` ball (PGD). The rows are restored exactly afterwards (saved, not subtracted), so
the weights the optimizer updates never carry a perturbation. With ``epsilon = 0`` and no dropout
the step equals plain training bit for bit when run eagerly (``tests/test_adversarial.py``; in a
graph, Grappler may compile the two copies of the forward pass with last-bit differences).

Works for the BiLSTM (``model.encoder.embedding``) and the BERT cross-encoders (the backbone's
``token_embedding``); installed on the compiled model by :func:`install_adversarial`, so the saved
model is the ordinary one.

Examples:

>>> from semmatch_tf.training.config import AdversarialConfig
>>> AdversarialConfig(method="fgm", epsilon=0.5).validate().enabled
True
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.trainers.data_adapters import data_adapter_utils

from semmatch_tf.models.bert import find_backbone


def embedding_variable(model: keras.Model):
    """The token embedding table of a cross-encoder (BERT backbone or BiLSTM encoder)."""
    backbone = find_backbone(model)
    if backbone is not None:
        return backbone.token_embedding.embeddings
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(encoder, "embedding"):
        return encoder.embedding.embeddings
    raise ValueError(f"adversarial training: no token embedding found in model {model.name!r}")


def install_adversarial(model: keras.Model, config) -> keras.Model:
    """Make ``model.fit`` take adversarial steps (``config``: an ``AdversarialConfig``). A disabled
    config leaves the model untouched. Call after ``compile``; returns ``model``."""
    if not config.enabled:
        return model
    model.train_step = adversarial_train_step(model, config)
    return model


def adversarial_train_step(model: keras.Model, config):
    """The ``train_step(data)`` of Keras's TensorFlow trainer with the perturbed pass added."""
    table = embedding_variable(model)

    def train_step(data):
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        weights = model.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(table.value)
            y_pred = model(x, training=True)
            clean = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            with tape.stop_recording():
                rows, saved, perturbation = _perturbation(tape, clean, model, x, y, sample_weight, table, config)
            table.assign(tf.tensor_scatter_nd_add(table.value, rows[:, None], perturbation))
            adversarial = model._compute_loss(x=x, y=y, y_pred=model(x, training=True),
                                              sample_weight=sample_weight, training=True)
            scale = model.optimizer.scale_loss
            clean_scaled, adversarial_scaled = scale(clean), scale(adversarial)
        gradients = [_mean(a, b) for a, b in zip(tape.gradient(clean_scaled, weights),
                                                  tape.gradient(adversarial_scaled, weights))]
        del tape
        table.assign(tf.tensor_scatter_nd_update(table.value, rows[:, None], saved))  # exactly the old rows
        model._loss_tracker.update_state(clean, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        model.optimizer.apply_gradients(zip(gradients, weights))
        return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return train_step


def adversarial_losses(model: keras.Model, x, y, config, *, training: bool = False) -> tuple[float, float]:
    """``(clean loss, loss under the config's perturbation)`` of one batch, weights left as they
    were: what each adversarial step fits the mean of (``training=False``: dropout off, so the two
    differ by the perturbation alone)."""
    table = embedding_variable(model)
    with tf.GradientTape() as tape:
        tape.watch(table.value)
        clean = model._compute_loss(x=x, y=y, y_pred=model(x, training=training), sample_weight=None,
                                    training=training)
    config = _Inference(config, training)
    rows, saved, perturbation = _perturbation(tape, clean, model, x, y, None, table, config)
    table.assign(tf.tensor_scatter_nd_add(table.value, rows[:, None], perturbation))
    try:
        adversarial = model._compute_loss(x=x, y=y, y_pred=model(x, training=training), sample_weight=None,
                                          training=training)
    finally:
        table.assign(tf.tensor_scatter_nd_update(table.value, rows[:, None], saved))
    return float(clean), float(adversarial)


class _Inference:
    """A config view that also says whether the PGD passes run with dropout."""

    def __init__(self, config, training: bool) -> None:
        self.method, self.epsilon, self.steps, self.step_size = (config.method, config.epsilon, config.steps,
                                                                 config.step_size)
        self.training = training


def _perturbation(tape, clean, model, x, y, sample_weight, table, config):
    """``(rows, their saved values, the perturbation of those rows)`` for this batch."""
    rows, gradient = _row_gradient(tape.gradient(clean, table.value), table)
    saved = tf.gather(table.value, rows)
    if config.method == "fgm":
        return rows, saved, _scaled(gradient, config.epsilon)
    step = config.step_size if config.step_size is not None else config.epsilon / config.steps
    perturbation = tf.zeros_like(saved)
    for index in range(config.steps):
        perturbation = _project(perturbation + _scaled(gradient, step), config.epsilon)
        if index == config.steps - 1:
            break
        table.assign(tf.tensor_scatter_nd_update(table.value, rows[:, None], saved + perturbation))
        with tf.GradientTape() as inner:
            inner.watch(table.value)
            training = getattr(config, "training", True)
            loss = model._compute_loss(x=x, y=y, y_pred=model(x, training=training), sample_weight=sample_weight,
                                       training=training)
        _, gradient = _row_gradient(inner.gradient(loss, table.value), table, rows)
    table.assign(tf.tensor_scatter_nd_update(table.value, rows[:, None], saved))
    return rows, saved, perturbation


def _row_gradient(gradient, table, rows=None):
    """The gradient restricted to the touched rows, duplicates summed: ``(rows, [n, D])``."""
    if isinstance(gradient, tf.IndexedSlices):
        indices, values = tf.cast(gradient.indices, tf.int32), gradient.values
        if rows is None:
            rows, positions = tf.unique(indices)
        else:
            lookup = tf.scatter_nd(rows[:, None], tf.range(tf.shape(rows)[0]), [tf.shape(table.value)[0]])
            positions = tf.gather(lookup, indices)
        return rows, tf.math.unsorted_segment_sum(values, positions, tf.shape(rows)[0])
    dense = tf.convert_to_tensor(gradient) if gradient is not None else tf.zeros_like(table.value)
    if rows is None:
        rows = tf.range(tf.shape(dense)[0])
    return rows, tf.gather(dense, rows)


def _mean(clean, adversarial):
    """``(clean + adversarial) / 2``; equal gradients give back exactly the same gradient. Sparse
    embedding gradients stay sparse, slice by slice: both passes gather the same token ids, so the
    slices line up (adding the two IndexedSlices would concatenate them, and the optimizer would
    then sum the duplicate rows in another order)."""
    if clean is None or adversarial is None:
        return clean if adversarial is None else adversarial
    if isinstance(clean, tf.IndexedSlices) and isinstance(adversarial, tf.IndexedSlices):
        return tf.IndexedSlices((clean.values + adversarial.values) * 0.5, clean.indices, clean.dense_shape)
    return (tf.convert_to_tensor(clean) + tf.convert_to_tensor(adversarial)) * 0.5


def _scaled(gradient, size: float):
    """``size * g / ||g||`` (zero where the gradient is zero or not finite, e.g. a loss-scale overflow)."""
    gradient = tf.cast(gradient, tf.float32)
    norm = tf.norm(gradient)
    safe = tf.math.is_finite(norm) & (norm > 0)
    return tf.where(safe, size * gradient / tf.where(safe, norm, 1.0), tf.zeros_like(gradient))


def _project(perturbation, epsilon: float):
    """Back onto the L2 ball of radius ``epsilon``."""
    norm = tf.norm(perturbation)
    return tf.where(norm > epsilon, perturbation * (epsilon / tf.maximum(norm, 1e-12)), perturbation)
