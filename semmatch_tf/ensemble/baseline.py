"""The strongest cheap baseline as an ensemble member, in the graph of the exported ensemble."""

from __future__ import annotations

from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.models.tfidf import RawPairInputs, TfidfPairLinear, fit_strong_baseline
from semmatch_tf.runs import TrainedMatcher


def fit_baseline_member(train: PairDataset, validation: PairDataset, labels: LabelScheme,
                        head: str = "regression") -> TrainedMatcher:
    """Fit the strongest cheap baseline on ``train`` and return it as a matcher whose whole
    computation (n-gram analysis, TF-IDF, linear model) runs in TF ops, so it scores, stacks and
    exports like a trained run.

    ``head="regression"``: :class:`StrongPairRidge` on the grades (ridge alpha chosen on
    ``validation``); ``"classification"``: :class:`StrongPairLogReg` on the class ids (features, C
    and class weights chosen on ``validation``).

    Examples:
        >>> from semmatch_tf.data.demo import load_demo
        >>> from semmatch_tf.data.splits import split_by_query
        >>> train, validation, _ = split_by_query(load_demo(), seed=0)
        >>> member = fit_baseline_member(train, validation, train.labels)
        >>> member.head, member.preprocessor.facts()["model"]
        ('regression', 'strong_pair_ridge')
    """
    model = fit_strong_baseline(train, validation, head)
    if head == "classification":
        layer = TfidfPairLinear.from_fitted(model, num_classes=labels.num_classes, name="strong_pair_logreg")
    else:
        layer = TfidfPairLinear.from_fitted(model, grade_range=labels.grade_range, name="strong_pair_ridge")
    facts = {"model": layer.name, "chosen": {k: v for k, v in model.chosen.items() if not isinstance(v, dict)},
             "char_ngrams": len(layer.char_vocabulary), "word_ngrams": len(layer.word_vocabulary)}
    return TrainedMatcher(preprocessor=RawPairInputs(facts, name="raw_pair_inputs"), model=layer, labels=labels,
                          head=head)
