"""BERT matchers on keras-hub: a backbone from a size preset, a local preset or a local HF checkpoint.

Following keras-hub's Backbone / Preprocessor / Task split:

* **Backbone** — ``keras_hub.models.BertBackbone``, from one of three offline sources
  (:func:`load_backbone`): ``scratch`` (a size preset, randomly initialised, over the project's
  own WordPiece vocabulary), ``preset`` (a local keras-hub preset directory, e.g. one written by
  ``semmatch-tf pretrain``) or ``huggingface`` (a local HF BERT checkpoint directory:
  ``config.json`` + ``model.safetensors`` + ``vocab.txt``, converted by keras-hub). A pretrained
  backbone may keep only some of its layers (:func:`keep_layers`, evenly spaced: DistilBERT's
  student initialisation), a shallower model that still starts from the pretrained weights.
* **Preprocessor** — :class:`BertPreprocessor`: raw strings to ``token_ids`` / ``segment_ids`` /
  ``padding_mask``, all TensorFlow ops, so it runs inside tf.data and inside exported models.
  ``{"query", "product"}`` inputs are packed as ``[CLS] query [SEP] product [SEP]``; a plain
  string tensor as ``[CLS] text [SEP]`` (a bi-encoder tower's input).
* **Tasks** — :func:`build_bert_cross_encoder` (pooled ``[CLS]`` or mean -> dropout -> head) and
  :func:`build_bert_tower` (mean pooling + L2 normalisation, sentence-transformers style).

Every backbone built or loaded here runs its dense layers and attention projections in the 2-D
form TensorFlow's CPU optimiser fuses (:mod:`semmatch_tf.models.bert.fusion`).

Fine-tuning controls (:func:`apply_fine_tuning`): freeze the embeddings and the bottom N layers,
or LoRA (``backbone.enable_lora``), after which only the low-rank adapters and the head train.
:func:`merge_lora` folds the adapters back into plain weights so the saved model is an ordinary
BERT (no adapter compute at serving time, loadable without our code).
"""

from semmatch_tf.models.bert.backbone import (SIZES, backbone_inputs, evenly_spaced_layers,
                                              fine_tunable_backbone, keep_layers, load_backbone,
                                              pretrained_backbone, scratch_backbone, side_prefixes)
from semmatch_tf.models.bert.fine_tuning import (apply_fine_tuning, find_backbone, merge_lora,
                                                 trainable_fraction)
from semmatch_tf.models.bert.fusion import fuse_dense_layers, fuse_loaded_backbones, is_fused
from semmatch_tf.models.bert.preprocessor import PAIR_STYLES, BertPreprocessor, trim_packed_padding
from semmatch_tf.models.bert.task import build_bert_cross_encoder, build_bert_tower
from semmatch_tf.models.bert.tokenizer import (OUR_TOKENIZER_FILE, SENTENCEPIECE_FILE, checkpoint_prefixes,
                                               checkpoint_tokenizer, installed_minilm, is_sentencepiece,
                                               offline_hub, own_tokenizer, prefix_token_count,
                                               resolve_checkpoint_path, special_ids)

__all__ = ["SIZES", "OUR_TOKENIZER_FILE", "SENTENCEPIECE_FILE", "PAIR_STYLES", "BertPreprocessor",
           "fuse_dense_layers", "fuse_loaded_backbones", "is_fused",
           "apply_fine_tuning", "backbone_inputs", "build_bert_cross_encoder", "build_bert_tower",
           "checkpoint_prefixes", "checkpoint_tokenizer", "evenly_spaced_layers", "find_backbone",
           "fine_tunable_backbone", "installed_minilm", "is_sentencepiece", "keep_layers", "load_backbone", "merge_lora", "offline_hub", "own_tokenizer",
           "prefix_token_count", "pretrained_backbone", "resolve_checkpoint_path", "scratch_backbone",
           "side_prefixes", "special_ids", "trainable_fraction", "trim_packed_padding"]
