"""A Beam ``ModelHandler`` for the SavedModels that ``semmatch-tf export`` writes.

Beam's own ``TFModelHandlerTensor`` loads a model with ``tf.keras.models.load_model`` (a Keras 3
``.keras`` file, not a SavedModel) and imports ``tensorflow_hub``; our exports are plain
SavedModels whose signatures take string tensors, so this handler loads them with
``tf.saved_model.load`` (after importing ``tensorflow_text``, whose ops the tokeniser uses) and
calls one signature per batch.

Elements are *chunks*: lists of dict records (each holding at least the signature's inputs) that
the pipeline's reader made (:func:`semmatch_tf.batch.sources.read_chunks`), and each chunk's result is one
``PredictionResult(chunk, {output: array [len(chunk), ...]})`` (once :class:`AwaitOutputs` has it). Beam pays a fixed cost per element
at every step (coding, pickling through a ``GroupByKey``, bookkeeping); on 50k titles that cost,
paid per record after ``RunInference``, was as large as the model's own time, and per chunk it is
negligible (``benchmarks/run_scale.py``).

The signature runs on the loaded model's own threads (``model_threads``, 2): ``run_inference``
starts the call and returns at once, its results holding :class:`PendingOutputs`, and
:class:`AwaitOutputs` (the step after ``RunInference``) fills them in a little later, so the
pipeline's thread reads, parses and chunks the next records while TensorFlow (which releases the
GIL) computes two chunks at a time. With a direct runner's one worker thread this is the
overlap its multi-threaded mode would give, without that mode's runner threads (which lose records,
see :func:`semmatch_tf.batch.pipelines._options`). On 50k titles and 2 shared cores, six
alternating rounds gave a median of 0.80x the in-process embedder with two threads, 0.77x with
three and 0.76x calling synchronously: differences within the machine's noise
(``benchmarks/NOTES.md``).

Each call's rows are padded to a multiple of ``pad_rows`` (repeats of the last record, whose
outputs are dropped). On CPU the matrix kernels compute the rows past the last full block of 8
through a tail path that rounds differently (by up to 6e-8 here), so without padding a vector
would depend on how Beam happened to cut the input into bundles and chunks; with it, every row is
computed as in the in-process embedder's full batches, bit for bit.

Examples:
    >>> from semmatch_tf.batch.handler import SignatureModelHandler
    >>> handler = SignatureModelHandler("serving/semmatch_bi/1", "embed_product", {"text": "title"})
    >>> handler.should_skip_batching()  # one chunk per signature call: the chunks are the batches
    True
"""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.transforms.window import GlobalWindows


class LoadedSignature:
    """A loaded SavedModel, one of its signatures and the threads that call it (Beam shares this
    object by weak reference; the SavedModel is kept alive with the function)."""

    def __init__(self, saved_model, function, threads: int = 2) -> None:
        self.saved_model, self.function = saved_model, function
        self.calls = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="semmatch-signature")


def call_signature(function, feeds: dict) -> dict:
    """The signature's outputs for ``feeds`` as NumPy arrays (run on :attr:`LoadedSignature.calls`)."""
    return {name: value.numpy() for name, value in function(**feeds).items()}


class PendingOutputs:
    """One chunk's rows ``[start, end)`` of a signature call that may still be running."""

    def __init__(self, future: Future, start: int, end: Optional[int]) -> None:
        self.future, self.start, self.end = future, start, end

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> dict:
        """The chunk's outputs (waits for the call; re-raises its error)."""
        return {name: value[self.start:self.end] for name, value in self.future.result().items()}

    def __reduce__(self):
        """Pickled as its finished outputs: Beam pickles a sample of elements to estimate their
        size, and a runner may ship one between stages; either waits for the call."""
        return finished_outputs, (self.result(),)


def finished_outputs(outputs: dict) -> PendingOutputs:
    future: Future = Future()
    future.set_result(outputs)
    return PendingOutputs(future, 0, None)


class AwaitOutputs(beam.DoFn):
    """After ``RunInference`` with :class:`SignatureModelHandler`: each PredictionResult with its
    outputs filled in, in input order, once its signature call has finished.

    Up to ``depth`` results wait here (one more than the handler's ``model_threads`` keeps every
    model thread busy), so the pipeline's thread reads, chunks and writes the next chunks while the
    model runs the earlier ones (TensorFlow releases the GIL); the rest are emitted when the bundle
    finishes. For the global window of a batch pipeline (files in, files
    out), as ``beam.BatchElements`` is.
    """

    def __init__(self, depth: int = 3) -> None:
        self.depth = depth

    def start_bundle(self) -> None:
        self._waiting: collections.deque = collections.deque()

    def process(self, result):
        self._waiting.append(result)
        while self._waiting and (len(self._waiting) > self.depth or self._waiting[0].inference.done()):
            yield filled(self._waiting.popleft())

    def finish_bundle(self):
        while self._waiting:
            yield GlobalWindows.windowed_value(filled(self._waiting.popleft()))


def filled(result: PredictionResult) -> PredictionResult:
    return PredictionResult(result.example, result.inference.result(), result.model_id)


class SignatureModelHandler(ModelHandler[Sequence[dict], PredictionResult, Any]):
    """Runs ``signature`` of the SavedModel at ``export_dir`` on chunks of dict records.

    Args:
        export_dir: a version directory (``BASE/NAME/VERSION``) written by ``semmatch-tf export``.
        signature: the signature to call, e.g. ``serving_default`` (cross-encoder) or
            ``embed_product`` (bi-encoder).
        inputs: signature input name -> record field (e.g. ``{"text": "title"}``).
        chunks_per_call: how many chunks one signature call takes (the model's batch is their
            records together); 1 keeps the pipeline's chunk size as the model's batch size.
        pad_rows: each call's rows are padded to a multiple of this (see the module docstring);
            1: no padding.
        model_threads: signature calls that may run at once (see the module docstring).
    """

    def __init__(self, export_dir: str, signature: str, inputs: Mapping[str, str], *,
                 chunks_per_call: int = 1, pad_rows: int = 16, model_threads: int = 2) -> None:
        super().__init__(min_batch_size=chunks_per_call, max_batch_size=chunks_per_call)
        if pad_rows < 1 or model_threads < 1 or chunks_per_call < 1:
            raise ValueError("chunks_per_call, pad_rows and model_threads must be at least 1, got "
                             f"{chunks_per_call}, {pad_rows} and {model_threads}")
        self.chunks_per_call = chunks_per_call
        self.export_dir, self.signature, self.inputs = str(export_dir), signature, dict(inputs)
        self.pad_rows, self.model_threads = pad_rows, model_threads

    def load_model(self):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 (registers the tokeniser's ops before the graph loads)

        loaded = tf.saved_model.load(self.export_dir)
        if self.signature not in loaded.signatures:
            raise ValueError(f"{self.export_dir}: no signature {self.signature!r} "
                             f"(it has {sorted(loaded.signatures)})")
        return LoadedSignature(loaded, loaded.signatures[self.signature], self.model_threads)

    def should_skip_batching(self) -> bool:
        """With one chunk per call the pipeline's chunks are the model's batches already, so
        ``RunInference`` adds no ``BatchElements`` step (one transform fewer for the runner to set up
        on every run) and hands :meth:`run_inference` one chunk at a time."""
        return self.chunks_per_call == 1

    def chunks(self, batch) -> Sequence[Sequence[dict]]:
        """``RunInference``'s batch as a list of chunks (a single chunk when batching is skipped)."""
        return [batch] if self.should_skip_batching() else batch

    def run_inference(self, batch, model, inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
        """One signature call over every record of ``batch``'s chunks, started on the model's thread;
        each chunk's result holds :class:`PendingOutputs` (:class:`AwaitOutputs` fills them in)."""
        import tensorflow as tf

        batch = self.chunks(batch)
        ends = np.cumsum([len(chunk) for chunk in batch])
        padding = -int(ends[-1]) % self.pad_rows
        feeds = {}
        for name, field in self.inputs.items():
            values = [record[field] for chunk in batch for record in chunk]
            feeds[name] = tf.constant(values + values[-1:] * padding, tf.string)
        future = model.calls.submit(call_signature, model.function, feeds)
        return [PredictionResult(chunk, PendingOutputs(future, int(end) - len(chunk), int(end)))
                for chunk, end in zip(batch, ends)]

    def get_num_bytes(self, batch) -> int:
        return sum(len(str(record.get(field, ""))) for chunk in self.chunks(batch) for record in chunk
                   for field in self.inputs.values())

    def get_metrics_namespace(self) -> str:
        return "semmatch_tf"
