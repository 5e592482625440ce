"""Fine-tuning controls for BERT backbones: freezing, LoRA, and folding LoRA back into plain weights."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np


def apply_fine_tuning(backbone, *, freeze_embeddings: bool = False, freeze_layers: int = 0,
                      lora_rank: int | None = None) -> None:
    """Freeze parts of ``backbone`` or switch it to LoRA (which freezes every original weight)."""
    if lora_rank:
        backbone.enable_lora(lora_rank)
        return
    if freeze_layers > len(backbone.transformer_layers):
        raise ValueError(f"cannot freeze {freeze_layers} layers of a {len(backbone.transformer_layers)}-layer BERT")
    if freeze_embeddings or freeze_layers:
        for layer in (backbone.token_embedding, backbone.position_embedding, backbone.segment_embedding,
                      backbone.embeddings_layer_norm):
            layer.trainable = False
    for layer in backbone.transformer_layers[:freeze_layers]:
        layer.trainable = False


def find_backbone(model: keras.Model):
    """The ``BertBackbone`` inside a task model (None if it has none)."""
    return next((layer for layer in model.layers if isinstance(layer, keras_hub.models.BertBackbone)), None)


def merge_lora(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose backbone has the LoRA adapters folded into its kernels.

    ``W' = W + (alpha / rank) A B`` is exactly what the adapted layer computes, so outputs are
    unchanged; the copy has no adapter variables, saves as an ordinary ``.keras`` model and costs
    nothing extra at serving time. Models without LoRA are returned as they are.
    """
    lora_layers = [layer for layer in model._flatten_layers() if getattr(layer, "lora_enabled", False)]
    if not lora_layers:
        return model
    values = {}
    for layer in model._flatten_layers():
        for variable in layer._trainable_variables + layer._non_trainable_variables:
            values[variable.path] = keras.ops.convert_to_numpy(variable)
    for layer in lora_layers:
        values[layer._kernel.path] = keras.ops.convert_to_numpy(layer.kernel)  # kernel = W + scaled A B
    copy = keras.Model.from_config(model.get_config())
    _check_no_lora(copy)
    missing = [v.path for v in copy.weights if v.path not in values]
    if missing:
        raise RuntimeError(f"merge_lora: no source for {missing[:3]}")
    for variable in copy.weights:
        variable.assign(values[variable.path])
    return copy


def _check_no_lora(model: keras.Model) -> None:
    """The rebuilt copy has plain layers; make sure nothing in it still has adapters."""
    for layer in model._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            raise RuntimeError(f"merge_lora: layer {layer.name} was rebuilt with LoRA enabled")


def trainable_fraction(model: keras.Model) -> tuple[int, int]:
    """``(trainable parameters, all parameters)`` of a model."""
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return trainable, total
