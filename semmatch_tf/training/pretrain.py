"""Self-supervised masked-language-model pretraining of a BERT backbone on unlabelled text.

Labelled pairs are scarce; queries and product titles are not. ``semmatch-tf pretrain`` reads the
texts of a config's *training split* (queries and product texts, labels ignored; the validation
and test splits stay unseen), masks 15% of the tokens (80% ``[MASK]``, 10% random, 10% kept, as
BERT does) and trains keras-hub's ``BertMaskedLM`` to restore them. The result is a local preset
directory — keras-hub's ``config.json`` + weights, plus our vocabulary and tokenizer settings —
that fine-tuning starts from with ``model.bert.source: preset`` and ``model.bert.path: DIR``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from semmatch_tf.atomic import write_directory_atomically
from semmatch_tf.models.cross_encoders import uses_own_vocabulary
from semmatch_tf.models.bert import BertPreprocessor, OUR_TOKENIZER_FILE, load_backbone
from semmatch_tf.models.bert.task import freeze_unused_pooler
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.text.vocabulary import save_vocabulary
from semmatch_tf.training.optimizers import build_optimizer
from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.runtime import seed_everything, set_precision
from semmatch_tf.training.trainer import load_splits, training_texts

log = logging.getLogger(__name__)
PRETRAIN_REPORT = "pretraining.json"


def unlabelled_texts(config: RunConfig) -> list[str]:
    """Distinct queries and product texts of the training split (deterministic order)."""
    train_set, _, _ = load_splits(config.data)
    return [t for t in dict.fromkeys(training_texts(train_set)) if t.strip()]


def mlm_dataset(texts: list[str], preprocessor, *, vocabulary_size: int, batch_size: int, mask_rate: float,
                seed: int, shuffle: bool = True):
    """``(features, masked ids, weights)`` batches for ``BertMaskedLM``: tokenised and masked in-graph.

    The mask is drawn anew each epoch (dynamic masking, as RoBERTa does), so the model never sees
    the same corruption of a text twice.
    """
    import keras_hub
    import tensorflow as tf

    ids = preprocessor.special_token_ids
    max_predictions = max(1, int(round(preprocessor.sequence_length * mask_rate * 1.5)))
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=vocabulary_size, mask_selection_rate=mask_rate, mask_token_id=ids["mask"],
        mask_selection_length=max_predictions, unselectable_token_ids=[ids["pad"], ids["cls"], ids["sep"]])

    def mask(strings):
        packed = preprocessor(strings)
        masked = masker(packed["token_ids"])
        features = {"token_ids": masked["token_ids"], "segment_ids": packed["segment_ids"],
                    "padding_mask": packed["padding_mask"], "mask_positions": masked["mask_positions"]}
        return features, masked["mask_ids"], masked["mask_weights"]

    data = tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object))
    if shuffle:
        data = data.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=shuffle).map(mask, num_parallel_calls=tf.data.AUTOTUNE) \
        .prefetch(tf.data.AUTOTUNE)


def pretrain(config: RunConfig, output: str | Path, *, mask_rate: float = 0.15, verbose: int = 1) -> dict:
    """Pretrain ``config.model.bert`` with MLM and write a preset to ``output`` (atomically).

    ``model.bert.source: scratch`` starts from random weights over a vocabulary learned from the
    texts; ``preset`` / ``huggingface`` continue pretraining a checkpoint on the shop's own text
    (domain adaptation) with the checkpoint's vocabulary.
    """
    import keras
    import keras_hub


    if not 0 < mask_rate < 1:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
    output = Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists: pretraining writes a new preset directory, choose another")
    training, text, bert = config.training, config.text, config.model.bert
    seed_everything(training.seed, training.deterministic)
    set_precision(training.precision)
    texts = unlabelled_texts(config)
    validation = texts[: max(1, len(texts) // 50)]  # 2% held out to watch the MLM loss
    texts = texts[len(validation):]
    vocabulary = (learn_vocabulary(texts, vocab_size=text.vocab_size, min_frequency=text.min_frequency,
                                   lowercase=text.lowercase, strip_accents=text.strip_accents)
                  if uses_own_vocabulary(config.model) else None)
    tokenizer, backbone = load_backbone(bert, text, vocabulary)
    preprocessor = BertPreprocessor(tokenizer, sequence_length=bert.sequence_length)
    size = backbone.vocabulary_size
    train_data = mlm_dataset(texts, preprocessor, vocabulary_size=size, batch_size=training.batch_size,
                             mask_rate=mask_rate, seed=training.seed)
    validation_data = mlm_dataset(validation, preprocessor, vocabulary_size=size, batch_size=training.batch_size,
                                  mask_rate=mask_rate, seed=training.seed, shuffle=False)
    steps = len(texts) // training.batch_size
    if steps == 0:
        raise ValueError(f"{len(texts)} texts are fewer than one batch of {training.batch_size}")
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    freeze_unused_pooler(backbone)  # the [CLS] pooler takes no part in MLM
    model.compile(optimizer=build_optimizer(training, steps * training.epochs),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    log.info("MLM pretraining on %d texts (%d held out), %d steps per epoch", len(texts), len(validation), steps)
    started = time.perf_counter()
    history = model.fit(train_data, validation_data=validation_data, epochs=training.epochs, verbose=verbose,
                        shuffle=False)  # the stream shuffles itself; Keras would warn it ignores this
    if getattr(backbone, "pooled_dense", None) is not None:
        backbone.pooled_dense.trainable = True  # the preset's pooler trains again when a cross-encoder fine-tunes it
    seconds = time.perf_counter() - started
    report = {"texts": len(texts), "held_out": len(validation), "epochs": training.epochs,
              "mask_rate": mask_rate, "seconds": round(seconds, 1),
              "texts_per_second": round(len(texts) * training.epochs / seconds, 1),
              "history": {k: [float(v) for v in values] for k, values in history.history.items()},
              "source": bert.source, "size": bert.size if bert.source == "scratch" else None,
              "sequence_length": bert.sequence_length}
    write_preset(backbone, tokenizer, output, report=report)
    return report


def write_preset(backbone, tokenizer, output: str | Path, *, report: dict | None = None) -> Path:
    """A local preset directory, written beside ``output`` and renamed into place when complete.

    keras-hub writes the backbone (``config.json``, weights, ``metadata.json``); a keras-hub
    tokenizer is saved its own way, ours as ``vocabulary.txt`` + ``semmatch_tokenizer.json``
    (which :func:`semmatch_tf.models.bert.checkpoint_tokenizer` reads back).
    """
    def write(temporary: Path) -> None:
        backbone.save_to_preset(str(temporary))
        if hasattr(tokenizer, "save_to_preset"):
            tokenizer.save_to_preset(str(temporary))
        else:
            save_vocabulary(tokenizer.vocabulary, temporary / "vocabulary.txt")
            facts = {"vocabulary": "vocabulary.txt", "lowercase": tokenizer.lowercase,
                     "strip_accents": tokenizer.strip_accents}
            (temporary / OUR_TOKENIZER_FILE).write_text(json.dumps(facts, indent=2), encoding="utf-8")
        if report is not None:
            (temporary / PRETRAIN_REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")

    return write_directory_atomically(Path(output), write)
