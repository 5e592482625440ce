"""Explanations as plain, JSON-able objects."""

from __future__ import annotations

import dataclasses

from semmatch_tf.explain.spans import Piece, Word, segments


@dataclasses.dataclass
class TextAttribution:
    """One text's attributions: per piece (with its span) and per word of the original text."""

    text: str
    pieces: list[Piece]
    words: list[Word]

    @property
    def total(self) -> float:
        return float(sum(p.attribution for p in self.pieces))

    def top_words(self, n: int = 3) -> list[Word]:
        """The ``n`` words that raised the score most."""
        return sorted(self.words, key=lambda w: -w.attribution)[:n]

    def to_dict(self) -> dict:
        return {"text": self.text, "total": self.total, "pieces": [p.to_dict() for p in self.pieces],
                "words": [w.to_dict() for w in self.words], "segments": segments(self.text, self.words)}


@dataclasses.dataclass
class Explanation:
    """Why a model gave a (query, product) pair its score.

    Attributes:
        model: the model family (``bilstm_cross_encoder``, ``bert_cross_encoder``, ``bi_encoder``).
        score: what the model outputs for the pair (a predicted grade, or the cosine).
        query, product: each text's attributions.
        completeness: per integration (``pair`` for a cross-encoder; ``query`` and ``product`` for a
            bi-encoder, each side explained with the other's vector fixed): the sum of attributions,
            the score difference to the baseline, their gap and the quadrature steps.
        baseline: what the baseline is (``padding`` / ``[MASK]`` embeddings).
    """

    model: str
    score: float
    query: TextAttribution
    product: TextAttribution
    completeness: dict[str, dict]
    baseline: str
    score_name: str = "score"

    @property
    def max_relative_gap(self) -> float:
        return max(c["relative_gap"] for c in self.completeness.values())

    def to_dict(self) -> dict:
        return {"model": self.model, "score_name": self.score_name, "score": self.score,
                "baseline": self.baseline, "completeness": self.completeness,
                "query": self.query.to_dict(), "product": self.product.to_dict()}
