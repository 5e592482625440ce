"""SavedModel export for TF Serving (versioned, atomic, with warm-up and metadata) and its check."""

from semmatch_tf.export.compat import TF_SERVING_TF_TEXT, TF_TEXT_OP_SINCE, minimum_tf_serving
from semmatch_tf.export.savedmodel import (METADATA_FILE, clean_stale, existing_versions, export_bi_encoder,
                                           export_model, next_version)
from semmatch_tf.export.signatures import BiEncoderParts, as_bi_encoder
from semmatch_tf.export.warmup import WARMUP_FILE, predict_request, read_warmup

__all__ = ["export_model", "export_bi_encoder", "BiEncoderParts", "as_bi_encoder", "check_export",
           "existing_versions", "next_version", "clean_stale", "predict_request", "read_warmup",
           "minimum_tf_serving", "TF_SERVING_TF_TEXT", "TF_TEXT_OP_SINCE", "METADATA_FILE", "WARMUP_FILE"]


def __getattr__(name: str):
    """``check_export`` is imported lazily, so ``python -m semmatch_tf.export.check`` runs cleanly."""
    if name == "check_export":
        from semmatch_tf.export.check import check_export

        return check_export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

