"""Text normalisation, vocabulary learning, the in-graph WordPiece tokenizer and the pair preprocessor.

:func:`fold` is the Python form of the graph's normalisation (NFKC, case folding, Latin accents
stripped); :class:`PairPreprocessor` turns (query, product) strings into the token ids a BiLSTM
matcher reads.
"""

from semmatch_tf.text.normalize import normalize, split_words
from semmatch_tf.text.preprocessor import PairPreprocessor
from semmatch_tf.text.tokenizer import WordPieceTokenizer
from semmatch_tf.text.units import fold
from semmatch_tf.text.vocabulary import (SPECIAL_TOKENS, learn_vocabulary, load_vocabulary,
                                         save_vocabulary, vocabulary_hash)

__all__ = ["normalize", "split_words", "fold", "PairPreprocessor", "WordPieceTokenizer", "SPECIAL_TOKENS",
           "learn_vocabulary", "load_vocabulary", "save_vocabulary", "vocabulary_hash"]
