"""Training runs: configs, training and MLM pretraining, and the run a training writes, loaded back.

* configs: :class:`RunConfig` and its sections (:class:`DataConfig`, :class:`TextConfig`,
  :class:`ModelConfig`, :class:`BertConfig`, :class:`BiEncoderConfig`, :class:`TrainingConfig`,
  :class:`AdversarialConfig`, :class:`AugmentationConfig`), :func:`load_config` (YAML, dotted overrides)
* training: :func:`train` (cross- or bi-encoder, resumable), :func:`pretrain_mlm` (masked-language-
  model pretraining of a BERT backbone, ``semmatch-tf pretrain``), :func:`load_splits` (the train /
  validation / test pairs a config names), :func:`training_compute` and :func:`compute_scope` (the
  precision a training runs in), :class:`FusedAdam` / :class:`FusedAdamW` (Keras' Adam / AdamW with
  TensorFlow's one-kernel update, what ``training.optimizer: adam | adamw`` builds)
* the trained run: :func:`load_run` (a :class:`TrainedMatcher`), :func:`load_bi_encoder`,
  :func:`pair_cosines` and :func:`qrels_of` (a bi-encoder's cosines and judged relevance)
* distillation data: :func:`teacher_scorer`, :func:`teacher_calibration`, :func:`teacher_labelled`, :func:`near_pairs`,
  :func:`save_graded_pairs` / :func:`load_graded_pairs` (``semmatch-tf teacher-label``; a run reads
  the file through ``data.extra_train``)

Names are loaded on first use (PEP 562), so ``import semmatch_tf.training`` (and the config modules
that validation reads) does not import TensorFlow. The pretraining function is ``pretrain_mlm``
here: importing a submodule binds it on its package, so a lazy ``pretrain`` would turn into the
module ``semmatch_tf.training.pretrain`` once something had imported that.

Examples:

>>> from semmatch_tf.training import RunConfig
>>> RunConfig.from_dict({"model": {"family": "bilstm"}}).model.family
'bilstm'
"""

from __future__ import annotations

import importlib

_HOMES = {
    "RunConfig": "semmatch_tf.training.config",
    "DataConfig": "semmatch_tf.training.config",
    "TextConfig": "semmatch_tf.training.config",
    "ModelConfig": "semmatch_tf.training.config",
    "BertConfig": "semmatch_tf.training.config",
    "BiEncoderConfig": "semmatch_tf.training.config",
    "TrainingConfig": "semmatch_tf.training.config",
    "AdversarialConfig": "semmatch_tf.training.config",
    "AugmentationConfig": "semmatch_tf.training.config",
    "load_config": "semmatch_tf.training.config_files",
    "train": "semmatch_tf.training.trainer",
    "load_splits": "semmatch_tf.training.trainer",
    "pretrain_mlm": "semmatch_tf.training.pretrain",
    "pair_cosines": "semmatch_tf.training.bi_encoder_evaluation",
    "qrels_of": "semmatch_tf.training.bi_encoder_evaluation",
    "near_pairs": "semmatch_tf.training.distill",
    "teacher_calibration": "semmatch_tf.training.distill",
    "teacher_labelled": "semmatch_tf.training.distill",
    "teacher_scorer": "semmatch_tf.training.distill",
    "load_graded_pairs": "semmatch_tf.training.distill",
    "save_graded_pairs": "semmatch_tf.training.distill",
    "TrainedMatcher": "semmatch_tf.runs",
    "load_run": "semmatch_tf.runs",
    "load_bi_encoder": "semmatch_tf.runs",
    "compute_scope": "semmatch_tf.compute",
    "FusedAdam": "semmatch_tf.training.optimizers",
    "FusedAdamW": "semmatch_tf.training.optimizers",
    "training_compute": "semmatch_tf.compute",
}
_RENAMED = {"pretrain_mlm": "pretrain"}  # the public name -> its name at home, where they differ

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
