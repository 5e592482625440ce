"""Ensembles of trained cross-encoders, scored and exported as one model (issue 18).

:func:`build_ensemble` combines finished runs (``load_run``) by averaging (``method="average"``)
or stacking (``method="stacked"``: weights fitted on held-out pairs). The result behaves like a
:class:`~semmatch_tf.runs.TrainedMatcher` (``score``, ``predict_outputs``, ``predict_dataset``)
and :func:`~semmatch_tf.export.export_model` writes it as ONE SavedModel whose
``serving_default(query, product)`` takes raw strings and runs every member's own tokenizer and
network inside the graph. :func:`fit_baseline_member` makes the strongest cheap baseline such a
member (its TF-IDF features and linear model run as TF ops).

For graded relevance without a neural member, :class:`BoostedStacker` (``stacking.py``) fits
gradient-boosted trees over a base model's out-of-fold predictions (:func:`query_folds`,
:func:`out_of_fold_predictions`), title-only match features (:class:`PairFeatures`,
``pair_features.py``) and a product's grade history (:class:`ProductPrior`).
:func:`fit_boosted_member` fits such a stack whose features and trees run in TF ops
(:class:`BoostedPairStack`, :class:`GradientBoostedTrees`), so it exports as one SavedModel too.
"""

from semmatch_tf.ensemble.baseline import fit_baseline_member
from semmatch_tf.ensemble.boosted import BoostedPairStack, fit_boosted_member
from semmatch_tf.ensemble.matcher import EnsembleMatcher, build_ensemble, fit_stacking_weights
from semmatch_tf.ensemble.pair_features import PairFeatures
from semmatch_tf.ensemble.stacking import BoostedStacker, ProductPrior, out_of_fold_predictions, query_folds
from semmatch_tf.ensemble.trees import GradientBoostedTrees

__all__ = ["BoostedPairStack", "BoostedStacker", "EnsembleMatcher", "GradientBoostedTrees", "PairFeatures", "ProductPrior", "build_ensemble", "ensemble_from_runs",
           "fit_baseline_member", "fit_boosted_member", "fit_stacking_weights", "out_of_fold_predictions", "query_folds"]


def __getattr__(name: str):
    """``ensemble_from_runs`` is imported lazily: it reads the runs' data splits through
    ``semmatch_tf.training``, which the search path (averaging re-rankers) must not import."""
    if name == "ensemble_from_runs":
        from semmatch_tf.ensemble.runs import ensemble_from_runs

        return ensemble_from_runs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
