"""Token attributions: why a matcher scores a (query, product) pair as it does.

Integrated gradients on the input embeddings (:mod:`~semmatch_tf.explain.integrated_gradients`)
for the BiLSTM and BERT / e5 cross-encoders and for bi-encoders (which query and product words make
the cosine), mapped from WordPiece / SentencePiece pieces back to the words of the original text
(CJK per character, :mod:`~semmatch_tf.explain.spans`), with the completeness gap reported.
Results are JSON-able (:class:`Explanation`); :func:`format_explanation` colours them for a
terminal; ``semmatch-tf explain`` is the command line.

Examples:
    >>> from semmatch_tf.explain import load_explainer, format_explanation       # doctest: +SKIP
    >>> explanation = load_explainer("runs/demo/run").explain("drill bit", "Bosch drill bit set")  # doctest: +SKIP
    >>> print(format_explanation(explanation))                                    # doctest: +SKIP
"""

from semmatch_tf.explain.explainer import PRETRAINED, Explainer, load_explainer
from semmatch_tf.explain.integrated_gradients import IntegratedGradientsConfig, integrate
from semmatch_tf.explain.result import Explanation, TextAttribution
from semmatch_tf.explain.spans import Piece, Word, merge_words, place_pieces, segments
from semmatch_tf.explain.terminal import format_explanation

__all__ = ["PRETRAINED", "Explainer", "Explanation", "IntegratedGradientsConfig", "Piece", "TextAttribution",
           "Word", "format_explanation", "integrate", "load_explainer", "merge_words", "place_pieces", "segments"]
