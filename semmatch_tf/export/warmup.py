"""TF Serving warm-up requests: ``assets.extra/tf_serving_warmup_requests``.

TF Serving replays these ``PredictionLog`` records when it loads a version and before it marks the
version available, so the first real request does not pay for graph initialisation (TF Text's
regex compilation, the WordPiece model parse, the LSTM while-loop setup). The file is a TFRecord
file of serialised ``tensorflow.serving.PredictionLog`` protos (at most 1000 records).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def _serving_apis():
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("writing TF Serving warm-up requests needs tensorflow-serving-api "
                          "(pip install tensorflow-serving-api==2.21.0)") from error
    return model_pb2, predict_pb2, prediction_log_pb2


def string_tensor_proto(values: list[str]) -> "tf.core.framework.tensor_pb2.TensorProto":
    """A ``[batch]`` string TensorProto (also for an empty batch, whose dtype cannot be inferred)."""
    return tf.make_tensor_proto(np.asarray([v.encode("utf-8") for v in values], dtype=object),
                                dtype=tf.string, shape=[len(values)])


def predict_request(model_name: str, signature: str, inputs: dict[str, list[str]]):
    """A gRPC ``PredictRequest`` with string-vector inputs, as a client would send it."""
    model_pb2, predict_pb2, _ = _serving_apis()
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name,
                                                                        signature_name=signature))
    for key, values in inputs.items():
        request.inputs[key].CopyFrom(string_tensor_proto(values))
    return request


def write_warmup(path: str | Path, model_name: str,
                 requests: list[tuple[str, dict[str, list[str]]]]) -> int:
    """Write ``(signature, inputs)`` requests as PredictionLog records; returns the record count."""
    if len(requests) > MAX_RECORDS:
        raise ValueError(f"TF Serving reads at most {MAX_RECORDS} warm-up records, got {len(requests)}")
    _, _, prediction_log_pb2 = _serving_apis()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(model_name, signature, inputs)))
            writer.write(log.SerializeToString())
    return len(requests)


def read_warmup(path: str | Path) -> list[tuple[str, dict[str, list[str]]]]:
    """Parse a warm-up file back into ``(signature, inputs)`` pairs (strings decoded as UTF-8)."""
    _, _, prediction_log_pb2 = _serving_apis()
    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        inputs = {key: [v.decode("utf-8") for v in tf.make_ndarray(proto).reshape(-1).tolist()]
                  for key, proto in request.inputs.items()}
        requests.append((request.model_spec.signature_name or "serving_default", inputs))
    return requests
