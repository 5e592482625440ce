"""A Beam ``ModelHandler`` for the SavedModels that ``semmatch-tf export`` writes.

Beam's own ``TFModelHandlerTensor`` loads a model with ``tf.keras.models.load_model`` (a Keras 3
``.keras`` file, not a SavedModel) and imports ``tensorflow_hub``; our exports are plain
SavedModels whose signatures take string tensors, so this handler loads them with
``tf.saved_model.load`` (after importing ``tensorflow_text``, whose ops the tokeniser uses) and
calls one signature per batch. Elements are dicts holding at least the signature's inputs.

Examples:
    >>> from semmatch_tf.batch.handler import SignatureModelHandler
    >>> handler = SignatureModelHandler("serving/semmatch_bi/1", "embed_product", {"text": "title"})
    >>> handler.batch_elements_kwargs()["max_batch_size"]
    256
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class LoadedSignature:
    """A loaded SavedModel and one of its signatures (Beam shares it by weak reference, so an
    object rather than a tuple; the SavedModel is kept alive with the function)."""

    def __init__(self, saved_model, function) -> None:
        self.saved_model, self.function = saved_model, function


class SignatureModelHandler(ModelHandler[dict, PredictionResult, Any]):
    """Runs ``signature`` of the SavedModel at ``export_dir`` on batches of dict records.

    Args:
        export_dir: a version directory (``BASE/NAME/VERSION``) written by ``semmatch-tf export``.
        signature: the signature to call, e.g. ``serving_default`` (cross-encoder) or
            ``embed_product`` (bi-encoder).
        inputs: signature input name -> record field (e.g. ``{"text": "title"}``).
        min_batch_size / max_batch_size: bounds for Beam's batching of elements.
    """

    def __init__(self, export_dir: str, signature: str, inputs: Mapping[str, str], *,
                 min_batch_size: int = 1, max_batch_size: int = 256) -> None:
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self.export_dir, self.signature, self.inputs = str(export_dir), signature, dict(inputs)

    def load_model(self):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 (registers the tokeniser's ops before the graph loads)

        loaded = tf.saved_model.load(self.export_dir)
        if self.signature not in loaded.signatures:
            raise ValueError(f"{self.export_dir}: no signature {self.signature!r} "
                             f"(it has {sorted(loaded.signatures)})")
        return LoadedSignature(loaded, loaded.signatures[self.signature])

    def run_inference(self, batch: Sequence[dict], model, inference_args: Optional[dict] = None
                      ) -> Iterable[PredictionResult]:
        import tensorflow as tf

        function = model.function
        feeds = {name: tf.constant([record[field] for record in batch], tf.string)
                 for name, field in self.inputs.items()}
        outputs = {name: value.numpy() for name, value in function(**feeds).items()}
        return [PredictionResult(record, {name: value[i] for name, value in outputs.items()})
                for i, record in enumerate(batch)]

    def get_num_bytes(self, batch: Sequence[dict]) -> int:
        return sum(len(str(record.get(field, ""))) for record in batch for field in self.inputs.values())

    def get_metrics_namespace(self) -> str:
        return "semmatch_tf"
