"""Dense layers in the form TensorFlow's CPU graph optimiser fuses, for keras-hub's BERT backbones.

Keras' ``Dense`` on a ``[batch, length, features]`` input reshapes to 2-D for the MatMul but adds
the bias after reshaping back, and ``EinsumDense`` (the attention projections) adds its bias to the
einsum's 4-D result. Either way grappler's remapper cannot fuse MatMul + BiasAdd (+ GELU) into one
oneDNN kernel, so the bias and each step of the GELU run as separate passes over the
``[batch * length, 4 * hidden]`` activations. :func:`fuse_dense_layers` makes those layers apply
bias and activation to the 2-D product, and the fused kernel runs.

On all-MiniLM-L6-v2 (2-core AMD EPYC, float32, 2,000 titles) the feed-forward layers alone took
title encoding from 253 to 279 texts/s. The fused GELU rounds differently from the op-by-op one,
so outputs move by float32 rounding (max |change| 1.6e-7 on unit vectors, cosine 0.9999998);
the bias-only fusions are bit-identical (``tests/test_bert.py``).

Only each layer's ``call`` changes, on the instance: class, weights, config and the names Keras
saves them under stay Keras' own, so a saved run or checkpoint is an ordinary keras-hub model.
keras-hub rebuilds these layers plain when it loads one; :func:`fuse_loaded_backbones` fuses them
again (``semmatch_tf.runs`` does, for every run it loads).

Examples:
    >>> from semmatch_tf.models.bert import is_fused, scratch_backbone
    >>> backbone = scratch_backbone("tiny", 100, sequence_length=16)  # built fused
    >>> sum(is_fused(layer) for layer in backbone._flatten_layers())
    13
"""

from __future__ import annotations

import math
import types

import keras
import keras_hub
from keras import ops

# EinsumDense equations with a 2-D form: {equation: input dims contracted}. keras-hub's attention
# projects [batch, length, hidden] -> [batch, length, heads, head_dim] and back.
FLAT_EQUATIONS = {"abc,cde->abde": 1, "abcd,cde->abe": 2}


def flat_dense_call(layer: keras.layers.Dense, inputs, training=None):
    """``keras.layers.Dense.call`` with ``[..., features]`` inputs flattened to 2-D around it."""
    if len(inputs.shape) <= 2:
        return keras.layers.Dense.call(layer, inputs, training=training)
    leading = ops.shape(inputs)[:-1]
    outputs = keras.layers.Dense.call(layer, ops.reshape(inputs, (-1, inputs.shape[-1])), training=training)
    return ops.reshape(outputs, (*leading, layer.units))


def flat_einsum_call(layer: keras.layers.EinsumDense, inputs, training=None):
    """``keras.layers.EinsumDense.call`` for :data:`FLAT_EQUATIONS` as one 2-D MatMul + bias."""
    contracted = FLAT_EQUATIONS[layer.equation]
    kernel = layer.kernel
    inner = math.prod(kernel.shape[:contracted])
    outer_shape = tuple(kernel.shape[contracted:])
    leading = ops.shape(inputs)[:2]
    outputs = ops.matmul(ops.reshape(inputs, (-1, inner)), ops.reshape(kernel, (inner, math.prod(outer_shape))))
    if layer.bias is not None:
        outputs = ops.add(outputs, ops.reshape(layer.bias, (-1,)))
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return ops.reshape(outputs, (*leading, *outer_shape))


def fusable_call(layer):
    """The 2-D call for ``layer``, or None where it has none (other layers and equations)."""
    if type(layer) is keras.layers.Dense:
        return flat_dense_call
    if type(layer) is keras.layers.EinsumDense and layer.equation in FLAT_EQUATIONS:
        full_bias = layer.bias is None or tuple(layer.bias.shape) == tuple(layer.kernel.shape[FLAT_EQUATIONS[layer.equation]:])
        return flat_einsum_call if full_bias else None
    return None


def fuse_dense_layers(backbone):
    """``backbone`` with each ``Dense`` and attention ``EinsumDense`` inside it calling its 2-D form
    (:func:`flat_dense_call`, :func:`flat_einsum_call`); returns it. See the module docstring."""
    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        call = fusable_call(layer)
        if call is not None:
            layer.call = types.MethodType(call, layer)
    return backbone


def is_fused(layer) -> bool:
    """Whether ``layer`` runs a 2-D form (see :func:`fuse_dense_layers`)."""
    return getattr(getattr(layer, "call", None), "__func__", None) in (flat_dense_call, flat_einsum_call)


def fuse_loaded_backbones(model: keras.Model) -> keras.Model:
    """``model`` (loaded with ``keras.saving.load_model``) with :func:`fuse_dense_layers` applied
    to each BERT backbone inside it; models without one are returned unchanged."""
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras_hub.models.BertBackbone):
            fuse_dense_layers(layer)
    return model
