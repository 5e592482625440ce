"""Token attributions for a (query, product) pair, for every model family of the toolkit."""

from __future__ import annotations

from pathlib import Path

from semmatch_tf.explain.integrated_gradients import IntegratedGradientsConfig, integrate
from semmatch_tf.explain.paths import (Path as AttributionPath, bert_cross_encoder_path, bi_encoder_paths,
                                       bilstm_cross_encoder_path, is_bert_matcher)
from semmatch_tf.explain.result import Explanation, TextAttribution
from semmatch_tf.explain.spans import merge_words, place_pieces
from semmatch_tf.models.bert import find_backbone, is_sentencepiece
from semmatch_tf.models.bi_encoder import pretrained_encoder
from semmatch_tf.retrieval.search import check_queries
from semmatch_tf.runs import is_bi_encoder_run, load_bi_encoder, load_run

PRETRAINED = ("multilingual-e5-small", "all-minilm-l6-v2")


class Explainer:
    """Integrated-gradients attributions of one loaded model's scores.

    Args:
        model: a cross-encoder (:class:`semmatch_tf.runs.TrainedMatcher`: BiLSTM or BERT/e5) or a
            bi-encoder (:class:`semmatch_tf.models.bi_encoder.TwoTowerEncoder`: a trained run or a
            pretrained encoder).
        config: quadrature steps and the completeness tolerance.

    Examples:
        >>> explainer = Explainer(pretrained_encoder("multilingual-e5-small"))     # doctest: +SKIP
        >>> e = explainer.explain("cordless drill", "Bosch cordless drill 18V")    # doctest: +SKIP
        >>> e.query.top_words(1)[0].text, e.max_relative_gap < 0.02                # doctest: +SKIP
        ('drill', True)
    """

    def __init__(self, model, config: IntegratedGradientsConfig | None = None) -> None:
        self.model = model
        self.config = config or IntegratedGradientsConfig()
        if hasattr(model, "embed_queries"):
            self.family = "bi_encoder"
        elif hasattr(model, "preprocessor") and hasattr(model, "model"):
            self.family = "bert_cross_encoder" if is_bert_matcher(model) else "bilstm_cross_encoder"
        else:
            raise TypeError(f"cannot explain a {type(model).__name__}: expected a TrainedMatcher or a TwoTowerEncoder")

    @property
    def style(self) -> str:
        """How the model's tokenizer marks word pieces: "sentencepiece" or "wordpiece"."""
        preprocessor = self.model.query_preprocessor if self.family == "bi_encoder" else self.model.preprocessor
        return "sentencepiece" if is_sentencepiece(getattr(preprocessor, "tokenizer", None)) else "wordpiece"

    @property
    def baseline(self) -> str:
        """What the text tokens start from (see :mod:`semmatch_tf.explain.paths`): ``[MASK]`` for a
        bi-encoder's BERT tower, padding otherwise."""
        return "[MASK]" if self._bert_towers() else "padding"

    def _bert_towers(self) -> bool:
        if self.family != "bi_encoder":
            return False

        return find_backbone(self.model.query_tower) is not None

    def explain(self, query: str, product: str) -> Explanation:
        """Attributions of the pair's score to each query and product word.

        Cross-encoders: one integration from both texts' baseline to the pair, of the predicted
        grade (the score that ranks). Bi-encoders: the cosine, integrated over the query's
        embeddings with the product's vector fixed, and over the product's with the query's fixed.
        """
        query, product = check_queries([query])[0], _check_product(product)
        if self.family == "bi_encoder":
            paths = bi_encoder_paths(self.model, query, product)
            results = {name: integrate(path.forward, path.inputs, path.baselines, self.config)
                       for name, path in paths.items()}
            texts = {name: self._attribution(text, paths[name], name, results[name])
                     for name, text in (("query", query), ("product", product))}
            return Explanation(self.family, results["query"].score, texts["query"], texts["product"],
                               {name: r.completeness() for name, r in results.items()}, self.baseline, "cosine")
        build = bert_cross_encoder_path if self.family == "bert_cross_encoder" else bilstm_cross_encoder_path
        path = build(self.model, query, product)
        result = integrate(path.forward, path.inputs, path.baselines, self.config)
        texts = {name: self._attribution(text, path, name, result)
                 for name, text in (("query", query), ("product", product))}
        return Explanation(self.family, result.score, texts["query"], texts["product"],
                           {"pair": result.completeness()}, self.baseline, "predicted grade")

    def _attribution(self, text: str, path: AttributionPath, name: str, result) -> TextAttribution:
        side = path.sides[name]
        values = result.attributions[side.part][side.positions]
        pieces = place_pieces(text, side.tokens, values)
        return TextAttribution(text, pieces, merge_words(text, pieces, self.style))


def _check_product(product) -> str:
    if not isinstance(product, str) or not product.strip():
        raise ValueError("product: expected a non-empty product title")
    return product.strip()


def load_explainer(reference: str | Path, config: IntegratedGradientsConfig | None = None) -> Explainer:
    """An :class:`Explainer` for a run directory (cross-encoder or bi-encoder) or a pretrained
    encoder name (``multilingual-e5-small``, ``all-minilm-l6-v2``)."""
    if str(reference) in PRETRAINED:
        return Explainer(pretrained_encoder(str(reference)), config)

    path = Path(reference)
    if not path.is_dir():
        raise FileNotFoundError(f"--model {reference}: not a run directory (nor one of {list(PRETRAINED)})")
    return Explainer(load_bi_encoder(path) if is_bi_encoder_run(path) else load_run(path), config)
