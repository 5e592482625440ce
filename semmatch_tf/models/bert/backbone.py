"""BERT backbones (keras-hub ``BertBackbone``): a size preset from scratch, or a local keras-hub
preset / Hugging Face checkpoint directory (never a hub), with the config's fine-tuning applied."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_hub
import numpy as np

from semmatch_tf.models.bert.fine_tuning import apply_fine_tuning
from semmatch_tf.models.bert.fusion import fuse_dense_layers
from semmatch_tf.models.bert.tokenizer import (checkpoint_prefixes, checkpoint_tokenizer, offline_hub, own_tokenizer,
                                              resolve_checkpoint_path)

# (layers, hidden size, attention heads, feed-forward size): Google's BERT miniatures (Turc et al.).
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}


def scratch_backbone(size: str, vocabulary_size: int, *, sequence_length: int, dropout: float = 0.1):
    """A randomly initialised ``BertBackbone`` of a named size over ``vocabulary_size`` tokens."""
    if size not in SIZES:
        raise ValueError(f"unknown BERT size {size!r}; choose one of {list(SIZES)}")
    layers, hidden, heads, intermediate = SIZES[size]
    return fuse_dense_layers(keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=layers, num_heads=heads, hidden_dim=hidden,
        intermediate_dim=intermediate, dropout=dropout, max_sequence_length=max(512, sequence_length)))


def pretrained_backbone(path: str | Path):
    """A ``BertBackbone`` from a local keras-hub preset or HF checkpoint directory (never a hub)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a keras-hub preset or Hugging Face checkpoint "
                                "(no config.json); pretrained weights are read from a local directory only")
    with offline_hub():
        return fuse_dense_layers(keras_hub.models.BertBackbone.from_preset(str(path)))


def evenly_spaced_layers(total: int, count: int) -> list[int]:
    """``count`` of ``total`` layer indices, evenly spaced from the first to the last: 6 of 12 gives
    0, 2, 4, 7, 9, 11, the layers DistilBERT (Sanh et al. 2019) initialised its student from."""
    if not 1 <= count <= total:
        raise ValueError(f"cannot keep {count} of {total} transformer layers")
    return [int(i) for i in np.linspace(0, total - 1, count).round()]


def keep_layers(backbone, count: int):
    """A ``BertBackbone`` of ``count`` of ``backbone``'s transformer layers (:func:`evenly_spaced_layers`)
    with its embeddings and pooler: a shallower, faster student that starts from the pretrained
    weights instead of from scratch (DistilBERT's initialisation)."""
    if count == backbone.num_layers:
        return backbone
    chosen = evenly_spaced_layers(backbone.num_layers, count)
    shallow = keras_hub.models.BertBackbone.from_config({**backbone.get_config(), "num_layers": count})
    for name in ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm",
                 "pooled_dense"):
        getattr(shallow, name).set_weights(getattr(backbone, name).get_weights())
    for layer, index in zip(shallow.transformer_layers, chosen):
        layer.set_weights(backbone.transformer_layers[index].get_weights())
    return fuse_dense_layers(shallow)


def load_backbone(bert_config, text_config, vocabulary: list[str] | None):
    """``(tokenizer, backbone)`` for ``model.bert`` (see ``training.config.BertConfig``)."""
    if bert_config.source == "scratch":
        if vocabulary is None:
            raise ValueError("a BERT trained from scratch needs the run's WordPiece vocabulary")
        tokenizer = own_tokenizer(vocabulary, lowercase=text_config.lowercase,
                                  strip_accents=text_config.strip_accents)
        backbone = scratch_backbone(bert_config.size, len(vocabulary), sequence_length=bert_config.sequence_length,
                                    dropout=bert_config.dropout)
        return tokenizer, backbone
    if bert_config.path is None:
        raise ValueError(f"model.bert.path is required for source {bert_config.source!r}")
    path = resolve_checkpoint_path(bert_config.path)
    tokenizer = checkpoint_tokenizer(path, strip_accents=text_config.strip_accents)
    backbone = pretrained_backbone(path)
    if bert_config.keep_layers is not None:
        if bert_config.keep_layers > backbone.num_layers:
            raise ValueError(f"model.bert.keep_layers: {bert_config.keep_layers} is more than the "
                             f"{backbone.num_layers} layers of {bert_config.path}")
        backbone = keep_layers(backbone, bert_config.keep_layers)
    return tokenizer, backbone


def side_prefixes(bert_config) -> tuple[str, str]:
    """``(query prefix, product prefix)`` for ``model.bert``: the config's, else the checkpoint's
    (e5: ``"query: "`` / ``"passage: "``), else none."""
    known = checkpoint_prefixes(resolve_checkpoint_path(bert_config.path)) if bert_config.source != "scratch" else {}
    query = bert_config.query_prefix if bert_config.query_prefix is not None else known.get("query", "")
    product = bert_config.product_prefix if bert_config.product_prefix is not None else known.get("passage", "")
    return query, product


def fine_tunable_backbone(bert_config, text_config, vocabulary: list[str] | None):
    """``(tokenizer, backbone)`` with ``model.bert``'s freezing or LoRA applied: what the
    cross-encoder and the towers train (pretraining uses :func:`load_backbone` as it is)."""
    tokenizer, backbone = load_backbone(bert_config, text_config, vocabulary)
    apply_fine_tuning(backbone, freeze_embeddings=bert_config.freeze_embeddings,
                      freeze_layers=bert_config.freeze_layers, lora_rank=bert_config.lora_rank)
    return tokenizer, backbone


def backbone_inputs(name_prefix: str = "") -> dict:
    return {key: keras.Input(shape=(None,), dtype=dtype, name=f"{name_prefix}{key}")
            for key, dtype in (("token_ids", "int32"), ("segment_ids", "int32"), ("padding_mask", "bool"))}
