"""SavedModel export for TF Serving: signatures, versions, atomicity, warm-up, metadata, checks.

One tiny untrained BiLSTM matcher (random weights: outputs only have to agree) is exported once per
module; most tests read that export. Subprocesses (fresh-process check, saved_model_cli, the
SIGKILL test) dominate the run time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.data.schema import LabelScheme
from semmatch_tf.export import (METADATA_FILE, WARMUP_FILE, BiEncoderParts, as_bi_encoder,
                                check_export, existing_versions, export_bi_encoder, export_model,
                                predict_request, read_warmup)
from semmatch_tf.export import savedmodel
from semmatch_tf.export.signatures import SAMPLE_PRODUCTS, SAMPLE_QUERIES
from semmatch_tf.models.bilstm import BiLSTMMatcher
from semmatch_tf.models.encoders import MaskedPooling
from semmatch_tf.models.heads import predicted_grades
from semmatch_tf.runs import TrainedMatcher
from semmatch_tf.text import WordPieceTokenizer, learn_vocabulary
from semmatch_tf.text.preprocessor import PairPreprocessor

TESTS_DIR = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
LABELS = LabelScheme(("irrelevant", "partial", "exact"), (0.0, 1.0, 2.0), (0.0, 2.0))
UNICODE_QUERIES = ["", "红色跑鞋", "赤いランニングシューズ ガ", "حذاء أحمر", "👟🔥🇯🇵", "Zapatos CAFÉ",
                   "word " * 2000, "x" * 5000, "\u200b\ufeff", "한국어"]
UNICODE_PRODUCTS = ["", "Nike 红色 跑鞋 42码", "アシックス ｹﾞﾙｶﾔﾉ", "حذاء رياضي للرجال", "Sneakers 👟",
                    "zapatillas de café", "long title " * 3000, "", "usb cable", "노트북 거치대"]


def build_matcher(head: str = "classification", seed: int = 7) -> TrainedMatcher:
    """A tiny untrained matcher over a vocabulary learned from the sample texts."""
    keras.utils.set_random_seed(seed)
    texts = list(SAMPLE_QUERIES) + list(SAMPLE_PRODUCTS[:7]) + ["red shoes", "usb cable", "跑鞋"]
    vocabulary = learn_vocabulary(texts, vocab_size=200, min_frequency=1)
    preprocessor = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=8, product_length=16)
    model = BiLSTMMatcher(len(vocabulary), head=head, num_classes=LABELS.num_classes, embedding_dim=8,
                          lstm_units=8, hidden_units=8, query_length=8, product_length=16)
    return TrainedMatcher(preprocessor, model, LABELS, head)


@pytest.fixture(scope="module")
def matcher() -> TrainedMatcher:
    return build_matcher()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="module")
def exported(matcher, base_dir) -> Path:
    return export_model(matcher, base_dir)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.fixture(scope="module")
def metadata(exported) -> dict:
    return json.loads((exported / "assets.extra" / METADATA_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def background(exported, tmp_path_factory):
    """Subprocesses started as early as possible so that they overlap the in-process tests (each
    pays ~8 s for importing TensorFlow): ``saved_model_cli show`` and the export to be SIGKILLed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    scratch = tmp_path_factory.mktemp("background")
    logs = {name: open(scratch / name, "w+", encoding="utf-8") for name in ("cli.out", "cli.err", "kill.err")}
    cli = subprocess.Popen([str(BIN / "saved_model_cli"), "show", "--all", "--dir", str(exported)],
                           env=env, stdout=logs["cli.out"], stderr=logs["cli.err"])
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD.format(tests=str(TESTS_DIR)),
                              str(scratch / "serving")], env={**env, "SEMMATCH_TEST_READY": str(scratch / "ready")},
                             stdout=subprocess.DEVNULL, stderr=logs["kill.err"])
    yield {"cli": cli, "killed": (child, scratch / "serving", scratch / "ready"), "logs": scratch}
    for process in (cli, child):
        if process.poll() is None:
            process.kill()
        process.wait()
    for log in logs.values():
        log.close()


def serve(loaded, queries: list[str], products: list[str], signature: str = "serving_default") -> dict:
    outputs = loaded.signatures[signature](query=tf.constant(queries, tf.string),
                                           product=tf.constant(products, tf.string))
    return {key: value.numpy() for key, value in outputs.items()}


def assert_matches_keras(matcher: TrainedMatcher, outputs: dict, queries, products) -> None:
    """Serving outputs == TrainedMatcher.predict_outputs / score (one Keras predict for both)."""
    probabilities = matcher.predict_outputs(queries, products)
    grades = predicted_grades(probabilities, matcher.head, LABELS)  # what TrainedMatcher.score returns
    np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=1e-5)
    np.testing.assert_allclose(outputs["scores"], grades, atol=1e-5)
    if matcher.head == "classification":
        classes = probabilities.argmax(axis=-1)
    else:
        classes = matcher.labels.class_of_grade(grades)  # the run's cuts, when it has tuned some
    assert [label.decode() for label in outputs["label"]] == [LABELS.names[c] for c in classes]


def hidden_leftovers(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith("."))


# -- layout, signature, outputs ------------------------------------------------------------------
def test_layout_is_tf_serving_version_directory(exported, base_dir, background):
    assert exported == base_dir / "semmatch" / "1"
    for name in ("saved_model.pb", "variables/variables.index", f"assets.extra/{WARMUP_FILE}",
                 f"assets.extra/{METADATA_FILE}", "assets.extra/vocabulary.txt"):
        assert (exported / name).is_file(), name
    assert hidden_leftovers(base_dir / "semmatch") == []


def test_each_weight_is_stored_once(exported, matcher, loaded):
    """keras-team/keras#23553: ExportArchive wrote every weight twice (Keras wrapper and tf.Variable)."""
    stored = tf.train.list_variables(str(exported / "variables" / "variables"))
    values = sum(int(np.prod(shape)) for name, shape in stored if name.endswith("VARIABLE_VALUE"))
    variables = matcher.model.variables + matcher.preprocessor.variables  # weights and seed states
    assert matcher.model.count_params() > 1000
    assert values == sum(int(np.prod(v.shape)) for v in variables), values
    # the collection is still there, in order
    assert [tuple(v.shape) for v in loaded.variables] == [tuple(v.shape) for v in variables]


def test_signature_takes_raw_strings(loaded, matcher):
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        "query": (tf.string, [None]), "product": (tf.string, [None])}
    outputs = signature.structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
        "scores": (tf.float32, [None]), "probabilities": (tf.float32, [None, 3]), "label": (tf.string, [None])}


def test_outputs_match_keras_for_every_script_empty_and_long_texts(loaded, matcher):
    outputs = serve(loaded, UNICODE_QUERIES, UNICODE_PRODUCTS)
    assert outputs["scores"].shape == (10,) and outputs["probabilities"].shape == (10, 3)
    assert_matches_keras(matcher, outputs, UNICODE_QUERIES, UNICODE_PRODUCTS)


def test_batch_of_one_and_empty_batch(loaded, matcher):
    one = serve(loaded, ["红色跑鞋"], ["Nike 红色 跑鞋"])
    assert one["scores"].shape == (1,) and one["label"].shape == (1,)
    np.testing.assert_allclose(one["scores"], matcher.score(["红色跑鞋"], ["Nike 红色 跑鞋"]), atol=1e-5)
    empty = serve(loaded, [], [])
    assert empty["scores"].shape == (0,) and empty["probabilities"].shape == (0, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        serve(loaded, ["a", "b"], ["c"])


def test_check_export_in_fresh_process_without_semmatch(exported, matcher, metadata):
    report = check_export(exported, matcher=matcher)
    assert report["ok"], report["problems"]
    assert report["compared_with"] == "keras matcher"
    assert report["child_imported_semmatch_tf"] is False
    assert "tensorflow_text" in report["child_imported"] and "semmatch_tf" not in report["child_imported"]
    assert report["max_abs_diff"]["serving_default"] < 1e-5
    assert report["custom_ops"] == metadata["custom_ops"]
    assert report["requests_run"] == 2 * metadata["warmup_requests"]
    json.dumps(report)  # CLI-ready


# -- metadata, warm-up, clients ------------------------------------------------------------------
def test_metadata_fields(metadata, matcher):
    tokenizer = matcher.preprocessor.tokenizer
    assert metadata["kind"] == "cross_encoder" and metadata["head"] == "classification"
    assert metadata["labels"] == LABELS.to_dict()
    assert metadata["vocabulary_sha256"] == tokenizer.vocabulary_sha256
    assert metadata["sequence_lengths"] == {"query": 8, "product": 16}
    assert metadata["versions"]["tensorflow"] == tf.__version__
    assert metadata["versions"]["tensorflow_text"]
    # Read from the saved graph: the TF Text ops of normalisation, splitting and WordPiece.
    assert {"NormalizeUTF8", "CaseFoldUTF8", "RegexSplitWithOffsets",
            "FastWordpieceTokenizeWithOffsets"} <= set(metadata["custom_ops"])
    assert set(metadata["custom_op_libraries"].values()) == {"tensorflow_text"}
    assert metadata["tf_serving"]["minimum"] == "2.12"
    assert set(metadata["tf_serving"]["per_op"]) == set(metadata["custom_ops"])
    # Core ops outside the set verified on TF 2.12.1 (compat.CORE_OPS_VERIFIED_TF_2_12) would make
    # the 2.12 minimum a guess: re-verify and extend the set when this fails after an upgrade.
    assert metadata["tf_serving"]["unverified_core_ops"] == []
    assert metadata["signatures"]["serving_default"]["inputs"] == {
        "product": {"dtype": "string", "shape": [None]}, "query": {"dtype": "string", "shape": [None]}}


def test_warmup_records_parse_and_run(exported, loaded):
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(exported / "assets.extra" / WARMUP_FILE)).as_numpy_iterator())
    assert 1 <= len(records) <= 1000
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        assert request.model_spec.name == "semmatch"
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert outputs["scores"].shape[0] == len(inputs["query"])
    assert [len(r[1]["query"]) for r in read_warmup(exported / "assets.extra" / WARMUP_FILE)] == \
        [1, len(SAMPLE_QUERIES)]


def test_grpc_predict_request_is_accepted(loaded, matcher):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "semmatch"
    request.model_spec.signature_name = "serving_default"
    request.inputs["query"].CopyFrom(tf.make_tensor_proto(["red running shoes", "无线耳机"]))
    request.inputs["product"].CopyFrom(tf.make_tensor_proto(["Nike running shoe, red", "蓝牙耳机"]))
    received = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire
    inputs = {key: tf.make_ndarray(proto) for key, proto in received.inputs.items()}
    outputs = {k: v.numpy() for k, v in loaded.signatures[received.model_spec.signature_name](**inputs).items()}
    assert_matches_keras(matcher, outputs, ["red running shoes", "无线耳机"], ["Nike running shoe, red", "蓝牙耳机"])
    built = predict_request("semmatch", "serving_default", {"query": ["a"], "product": ["b"]})
    assert tf.make_ndarray(built.inputs["query"]).tolist() == [b"a"]


def test_saved_model_cli_lists_signature_and_inputs(background):
    returncode = background["cli"].wait(timeout=300)  # `saved_model_cli show --all --dir VERSION_DIR`
    stdout = (background["logs"] / "cli.out").read_text(encoding="utf-8")
    assert returncode == 0, (background["logs"] / "cli.err").read_text(encoding="utf-8")[-2000:]
    for text in ("signature_def['serving_default']", "inputs['query']", "inputs['product']",
                 "outputs['scores']", "outputs['probabilities']", "outputs['label']", "DT_STRING",
                 "Method name is: tensorflow/serving/predict"):
        assert text in stdout, text


# -- versions and atomicity ----------------------------------------------------------------------
def test_second_export_gets_next_version_regression_head(base_dir, exported):
    regression = build_matcher("regression", seed=3)
    second = export_model(regression, base_dir)
    assert second == base_dir / "semmatch" / "2"
    assert existing_versions(base_dir / "semmatch") == [1, 2]
    reloaded = tf.saved_model.load(str(second))
    outputs = serve(reloaded, UNICODE_QUERIES, UNICODE_PRODUCTS)
    assert outputs["probabilities"].shape == (10, 1)
    assert ((outputs["probabilities"] >= 0) & (outputs["probabilities"] <= 1)).all()
    assert_matches_keras(regression, outputs, UNICODE_QUERIES, UNICODE_PRODUCTS)
    meta = json.loads((second / "assets.extra" / METADATA_FILE).read_text(encoding="utf-8"))
    assert meta["head"] == "regression" and meta["tf_serving"]["unverified_core_ops"] == []


def test_regression_export_names_classes_by_the_runs_tuned_cuts(tmp_path):
    regression = build_matcher("regression", seed=3)
    grades = regression.score(UNICODE_QUERIES, UNICODE_PRODUCTS)  # an untrained model: all near one grade
    cuts = tuple(np.quantile(grades, [0.3, 0.7]) + [0.0, 1e-3])
    tuned = dataclasses.replace(regression, labels=LABELS.with_cuts(cuts))
    outputs = serve(tf.saved_model.load(str(export_model(tuned, tmp_path))), UNICODE_QUERIES, UNICODE_PRODUCTS)
    assert_matches_keras(tuned, outputs, UNICODE_QUERIES, UNICODE_PRODUCTS)
    served = {label.decode() for label in outputs["label"]}
    assert served == set(LABELS.names)  # all three classes, where the nearest class grade names one
    assert len({LABELS.names[c] for c in LABELS.class_of_grade(grades)}) == 1


def test_existing_version_is_not_overwritten_without_force(matcher, exported):
    before = (exported / "saved_model.pb").read_bytes()
    with pytest.raises(FileExistsError):
        export_model(matcher, exported.parent.parent, version=1)
    assert (exported / "saved_model.pb").read_bytes() == before
    assert hidden_leftovers(exported.parent) == []


def _stub_writer(directory: Path, **_) -> None:
    (directory / "saved_model.pb").write_bytes(b"stub")


def test_force_replaces_a_version(matcher, tmp_path, monkeypatch):
    monkeypatch.setattr(savedmodel, "_write_version", _stub_writer)
    first = export_model(matcher, tmp_path, version=4)
    (first / "old-marker").write_text("old")
    assert export_model(matcher, tmp_path, version=4, force=True) == first
    assert not (first / "old-marker").exists() and (first / "saved_model.pb").is_file()
    assert hidden_leftovers(tmp_path / "semmatch") == []
    assert export_model(matcher, tmp_path) == tmp_path / "semmatch" / "5"


def test_failure_midway_leaves_no_version(matcher, tmp_path, monkeypatch):
    def half_written(archive, directory):
        (Path(directory) / "variables").mkdir()
        (Path(directory) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(savedmodel, "_write_archive", half_written)
    with pytest.raises(OSError, match="disk full"):
        export_model(matcher, tmp_path)
    model_dir = tmp_path / "semmatch"
    assert existing_versions(model_dir) == [] and list(model_dir.iterdir()) == []


KILLED_CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
from test_export import build_matcher
from semmatch_tf.export import savedmodel

def write_half_then_hang(archive, directory):
    # Midway through writing the SavedModel: some files there, others not yet.
    os.makedirs(os.path.join(directory, "variables"))
    with open(os.path.join(directory, "saved_model.pb"), "wb") as half:
        half.write(b"half a graph")
    open(os.environ["SEMMATCH_TEST_READY"], "w").write(str(directory))
    time.sleep(600)

savedmodel._write_archive = write_half_then_hang
savedmodel.export_model(build_matcher(), sys.argv[1])
"""


def test_sigkill_while_writing_leaves_only_hidden_temporaries(matcher, background, monkeypatch):
    """An export in a child process (started by the ``background`` fixture) hangs halfway through
    writing its SavedModel; SIGKILL it there: no version may be visible, the next export cleans up."""
    child, base, ready = background["killed"]
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert child.poll() is None, (background["logs"] / "kill.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "export child never reached the write"
            time.sleep(0.2)
        partial = Path(ready.read_text())
        assert (partial / "saved_model.pb").is_file()  # half a SavedModel on disk, not renamed
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    model_dir = base / "semmatch"
    assert existing_versions(model_dir) == []
    leftovers = hidden_leftovers(model_dir)
    assert leftovers == [partial.name] and leftovers[0].startswith(".tmp-1-")
    assert sorted(p.name for p in model_dir.iterdir()) == leftovers  # nothing TF Serving would load

    monkeypatch.setattr(savedmodel, "_write_version", _stub_writer)
    assert export_model(matcher, base) == model_dir / "1"
    assert hidden_leftovers(model_dir) == []  # the dead writer's directory was cleaned up


def test_interrupted_force_replace_is_restored(matcher, tmp_path, monkeypatch):
    monkeypatch.setattr(savedmodel, "_write_version", _stub_writer)
    version = export_model(matcher, tmp_path)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
    aside = version.with_name(f".old-1-{savedmodel._host()}-{dead_pid}-abcd1234")
    os.rename(version, aside)  # as if killed between "rename old away" and "rename new in"
    assert export_model(matcher, tmp_path) == version.with_name("2")
    assert existing_versions(version.parent) == [1, 2] and hidden_leftovers(version.parent) == []


# -- bi-encoders ---------------------------------------------------------------------------------
def tower(vocabulary_size: int, length: int, name: str) -> keras.Model:
    """Embedding -> masked mean pooling -> L2 normalisation: a minimal bi-encoder tower."""
    ids = keras.Input(shape=(length,), dtype="int32")
    vectors = keras.layers.Embedding(vocabulary_size, 8, mask_zero=True)(ids)
    pooled = MaskedPooling("mean")(vectors)
    return keras.Model(ids, keras.layers.UnitNormalization()(pooled), name=name)


def test_bi_encoder_export(matcher, tmp_path):
    vocabulary = matcher.preprocessor.tokenizer.vocabulary
    # Any object with these four attributes will do (e.g. models.bi_encoder.TwoTowerEncoder).
    towers = SimpleNamespace(query_encoder=tower(len(vocabulary), 8, "query_tower"),
                             product_encoder=tower(len(vocabulary), 16, "product_tower"),
                             query_preprocessor=WordPieceTokenizer(vocabulary, sequence_length=8),
                             product_preprocessor=WordPieceTokenizer(vocabulary, sequence_length=16),
                             meta={"family": "test_towers"})
    encoder = as_bi_encoder(towers)
    assert isinstance(encoder, BiEncoderParts)
    catalogue = ([f"sku-{i}" for i in range(len(UNICODE_PRODUCTS))], UNICODE_PRODUCTS)
    version = export_bi_encoder(towers, tmp_path, catalogue=catalogue, top_k=3)
    assert version == tmp_path / "semmatch_bi" / "1"
    # The fresh-process check (against the Keras outputs recorded at export) runs in a thread while
    # this process checks the signatures itself: the thread mostly waits for the child.
    pending = ThreadPoolExecutor(1).submit(check_export, version)
    loaded = tf.saved_model.load(str(version))
    assert {"embed_query", "embed_product", "search", "serving_default"} <= set(loaded.signatures)

    queries = tf.constant(UNICODE_QUERIES)
    query_vectors = loaded.signatures["embed_query"](text=queries)["embedding"].numpy()
    np.testing.assert_allclose(query_vectors, encoder.embed_numpy("query", UNICODE_QUERIES), atol=1e-6)
    products = loaded.signatures["embed_product"](text=tf.constant(UNICODE_PRODUCTS))["embedding"].numpy()
    np.testing.assert_allclose(products, encoder.embed_numpy("product", UNICODE_PRODUCTS), atol=1e-6)

    found = loaded.signatures["search"](query=queries)
    scores = query_vectors @ products.T
    assert found["product_ids"].shape == (len(UNICODE_QUERIES), 3)
    np.testing.assert_allclose(found["scores"].numpy(), -np.sort(-scores, axis=1)[:, :3], atol=1e-5)
    best = [catalogue[0][i] for i in scores.argmax(axis=1)]
    ties = np.sort(scores, axis=1)[:, -1] - np.sort(scores, axis=1)[:, -2] < 1e-5
    assert all(t or got.decode() == want for got, want, t in zip(found["product_ids"][:, 0].numpy(), best, ties))
    one = loaded.signatures["search"](query=tf.constant(["usb cable"]))
    assert one["scores"].shape == (1, 3)

    meta = json.loads((version / "assets.extra" / METADATA_FILE).read_text(encoding="utf-8"))
    assert meta["kind"] == "bi_encoder" and meta["catalogue_size"] == 10 and meta["top_k"] == 3
    assert meta["tf_serving"]["minimum"] == "2.12" and meta["tf_serving"]["unverified_core_ops"] == []
    assert meta["family"] == "test_towers" and meta["sequence_lengths"] == {"query": 8, "product": 16}
    assert meta["vocabulary_sha256"] == matcher.preprocessor.tokenizer.vocabulary_sha256
    assert (version / "assets.extra" / "vocabulary.txt").read_text(encoding="utf-8").split() == vocabulary
    assert sorted(meta["signatures"]) == ["embed_product", "embed_query", "search", "serving_default"]
    assert {r[0] for r in read_warmup(version / "assets.extra" / WARMUP_FILE)} == {
        "embed_query", "embed_product", "search"}

    report = pending.result(timeout=300)
    assert report["ok"], report["problems"]
    assert report["compared_with"] == "outputs recorded at export"
    assert set(report["max_abs_diff"]) == {"embed_query", "embed_product", "search", "serving_default"}


# -- comparison and compatibility logic (no TensorFlow work) -------------------------------------
def test_compare_reports_differences_and_tolerates_ties():
    from semmatch_tf.export.check import _compare

    expected = {"scores": [1.0, 2.0], "label": ["exact", "partial"]}
    assert _compare(expected, {}, {"scores": [1.0, 2.0 + 1e-7], "label": ["exact", "partial"]}, 1e-5)[1] == []
    worst, problems = _compare(expected, {}, {"scores": [1.0, 2.1], "label": ["exact", "exact"]}, 1e-5)
    assert worst == pytest.approx(0.1) and len(problems) == 2
    assert _compare(expected, {"label": [False, True]}, {"scores": [1, 2], "label": ["exact", "exact"]},
                    1e-5)[1] == []
    assert "missing" in _compare(expected, {}, {"scores": [1.0, 2.0]}, 1e-5)[1][0]
    assert "shape" in _compare(expected, {}, {"scores": [1.0], "label": ["exact"]}, 1e-5)[1][0]


def test_minimum_tf_serving_table():
    from semmatch_tf.export.compat import minimum_tf_serving

    ours = {"NormalizeUTF8": "tensorflow_text", "FastWordpieceTokenizeWithOffsets": "tensorflow_text"}
    assert minimum_tf_serving(ours)["minimum"] == "2.12"
    assert minimum_tf_serving({})["minimum"] == "2.12"
    assert minimum_tf_serving({"SomeFutureOp": "unknown"})["minimum"] is None



def test_check_export_flags_a_leaking_or_wrong_child(exported, metadata, monkeypatch):
    """The parent's verdict, with a fabricated child report (no subprocess): semmatch_tf imported,
    a custom op missing from the metadata and a changed score must each be reported."""
    from semmatch_tf.export import check

    def fake_child(version_dir, requests, timeout=600):
        results = [dict(record["expected"]) for records in metadata["samples"].values() for record in records]
        results += [{"scores": [0.0] * len(inputs["query"]), "probabilities": [[0.0] * 3] * len(inputs["query"]),
                     "label": ["exact"] * len(inputs["query"])} for _, inputs in requests[len(results):]]
        results[0] = {**results[0], "scores": [results[0]["scores"][0] + 0.5]}
        return {"signatures": metadata["signatures"], "results": results, "semmatch_modules": ["semmatch_tf"],
                "ops_missing_in_core_tf": metadata["custom_ops"] + ["MysteryOp"],
                "ops_unregistered_after_tf_text": [], "top_level_modules": ["semmatch_tf", "tensorflow"],
                "tensorflow": tf.__version__, "tensorflow_text": "?"}

    monkeypatch.setattr(check, "run_child", fake_child)
    report = check_export(exported)
    assert not report["ok"] and report["child_imported_semmatch_tf"]
    assert report["max_abs_diff"]["serving_default"] == pytest.approx(0.5)
    assert len(report["problems"]) == 3, report["problems"]


def _metadata_stub_writer(directory: Path, *, model_name: str, version: int, **_) -> None:
    (directory / "saved_model.pb").write_bytes(b"stub")
    (directory / savedmodel.EXTRA_DIR).mkdir()
    (directory / savedmodel.EXTRA_DIR / savedmodel.METADATA_FILE).write_text(json.dumps({"version": version}))


def test_concurrent_export_without_version_takes_the_next_free_one(matcher, tmp_path, monkeypatch):
    """Another exporter publishes version 1 while ours writes: ours becomes 2, metadata included."""
    def racing_writer(directory: Path, **kwargs) -> None:
        _metadata_stub_writer(directory, **kwargs)
        (tmp_path / "semmatch" / "1").mkdir()  # the other process wins the rename

    monkeypatch.setattr(savedmodel, "_write_version", racing_writer)
    target = export_model(matcher, tmp_path)
    assert target == tmp_path / "semmatch" / "2"
    meta = json.loads((target / savedmodel.EXTRA_DIR / savedmodel.METADATA_FILE).read_text())
    assert meta["version"] == 2
    assert hidden_leftovers(tmp_path / "semmatch") == []


@pytest.mark.parametrize("name", ["a\\b", "a\nb", "../up", ".hidden", "", "a/b", "x" * 200])
def test_model_names_that_tf_serving_or_a_file_system_would_trip_on_are_refused(matcher, tmp_path, name):
    with pytest.raises(ValueError, match="invalid model name"):
        export_model(matcher, tmp_path, name=name)
    assert not any(tmp_path.iterdir())


def test_existing_version_error_names_the_cli_flag(matcher, tmp_path, monkeypatch):
    monkeypatch.setattr(savedmodel, "_write_version", _stub_writer)
    export_model(matcher, tmp_path, version=1)
    with pytest.raises(FileExistsError, match="--force"):
        export_model(matcher, tmp_path, version=1)


def test_readme_bf16_session_config_parses_and_the_rewritten_export_scores_alike(exported, matcher):
    """The README's TF Serving bf16 recipe: its session config is a valid ConfigProto that turns on
    oneDNN's bf16 rewrite, and the export run through that rewrite (what the server does, here via
    ``compute_scope``) scores like float32."""
    import re

    from google.protobuf import text_format
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

    from semmatch_tf.compute import FLOAT32_OPS, compute_scope

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("**bf16 on the server**", 1)[1]
    config = text_format.Parse(re.search(r"```text\n(.*?)```", section, re.S).group(1), config_pb2.ConfigProto())
    assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == rewriter_config_pb2.RewriterConfig.ON
    for name, value in FLOAT32_OPS.items():
        assert f"-e {name}={value}" in section
    reloaded = tf.saved_model.load(str(exported))  # a fresh function library: instantiated under the rewrite
    with compute_scope("bfloat16"):
        fast = serve(reloaded, UNICODE_QUERIES, UNICODE_PRODUCTS)
    exact = serve(reloaded, UNICODE_QUERIES, UNICODE_PRODUCTS)
    np.testing.assert_allclose(fast["probabilities"], exact["probabilities"], atol=0.05)
    np.testing.assert_allclose(exact["scores"], matcher.score(UNICODE_QUERIES, UNICODE_PRODUCTS), atol=1e-5)
