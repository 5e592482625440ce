"""The strongest cheap baselines: TF-IDF pair features with a linear model (issue 18).

Fitted with scikit-learn (:mod:`.linear`), run inside a TF graph once fitted (:mod:`.layer`), so
that the baseline every benchmark reports can also join an exported ensemble. :mod:`.match`
computes in the graph how a title covers a query, for the boosted stack that exports too.
"""

from semmatch_tf.models.tfidf.layer import RawPairInputs, TfidfPairLinear
from semmatch_tf.models.tfidf.match import MATCH_FEATURES, MatchFeatures
from semmatch_tf.models.tfidf.linear import (PairTfidfFeatures, StrongPairLogReg, StrongPairRidge, fit_strong_baseline,
                                             overlap_statistics)

__all__ = ["MATCH_FEATURES", "MatchFeatures", "PairTfidfFeatures", "RawPairInputs", "StrongPairLogReg", "StrongPairRidge", "TfidfPairLinear",
           "fit_strong_baseline", "overlap_statistics"]
