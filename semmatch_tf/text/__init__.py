"""Text normalisation, vocabulary learning and the in-graph WordPiece tokenizer."""

from semmatch_tf.text.normalize import normalize, split_words
from semmatch_tf.text.tokenizer import WordPieceTokenizer
from semmatch_tf.text.vocabulary import (SPECIAL_TOKENS, learn_vocabulary, load_vocabulary,
                                         save_vocabulary, vocabulary_hash)

__all__ = ["normalize", "split_words", "WordPieceTokenizer", "SPECIAL_TOKENS", "learn_vocabulary",
           "load_vocabulary", "save_vocabulary", "vocabulary_hash"]
