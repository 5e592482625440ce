"""End-to-end training: the run directory, TensorBoard logs, resume after a kill, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO

TINY = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 1200},
    "text": {"vocab_size": 600, "min_frequency": 1, "query_length": 8, "product_length": 16},
    "model": {"family": "bilstm", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16, "dropout": 0.1},
    "training": {"epochs": 3, "batch_size": 64, "optimizer": "adamw", "learning_rate": 0.005,
                 "schedule": "cosine", "warmup_fraction": 0.1, "weight_decay": 0.0001,
                 "class_weights": "balanced", "early_stopping_patience": None, "seed": 5},
}


def write_config(tmp_path: Path, overrides: dict | None = None) -> Path:
    config = json.loads(json.dumps(TINY))
    for section, values in (overrides or {}).items():
        config[section].update(values)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def cli(*args: str, timeout: int = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO, **kwargs)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, dict]:
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    report = train(load_config(write_config(tmp)), tmp / "run", verbose=0)
    return tmp / "run", report


def test_run_directory_is_complete(trained_run):
    run_dir, report = trained_run
    for name in ("config.yaml", "labels.json", "vocabulary.txt", "preprocessor.keras", "model.keras",
                 "history.json", "report.json", "plots/training_curves.png", "plots/confusion_matrix.png",
                 "plots/relevance_curves.png", "plots/predicted_vs_true.png", "plots/by_language.png",
                 "checkpoints/best.weights.h5", "MODEL_CARD.md"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "backup").exists(), "the resume state is removed after a finished fit"
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 3 and "val_loss" in history and "learning_rate" in history
    rates = history["learning_rate"]
    assert rates[0] > rates[-1] > 0 or rates[-1] == 0, "cosine decay lowers the rate"
    assert json.loads((run_dir / "report.json").read_text()) == json.loads(json.dumps(report))


def test_report_beats_chance_on_the_demo(trained_run):
    _, report = trained_run
    assert report["dataset"]["pairs"] > 100
    assert set(report["by_language"]) >= {"en", "zh", "ja", "es"}
    # Three epochs of a 16-unit model: not good, but clearly better than a constant ranking.
    assert report["ranking"]["ndcg@10"] > 0.5
    assert 0.0 <= report["classification"]["accuracy"] <= 1.0


def event_tags(folder: Path, recursive: bool = True) -> dict[str, float]:
    """``{tag: last value}`` of the event files in ``folder`` (and below it when ``recursive``)."""
    import tensorflow as tf

    values: dict[str, float] = {}
    files = folder.rglob("events.out.tfevents.*") if recursive else folder.glob("events.out.tfevents.*")
    for event_file in files:
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor) if value.HasField("tensor") else np.zeros(2)
                values[value.tag] = float(array) if array.ndim == 0 and array.dtype.kind == "f" else float("nan")
    return values


def test_tensorboard_logs_scalars_learning_rate_hparams_and_projector(trained_run):
    run_dir, report = trained_run
    logs = run_dir / "logs"
    assert {"epoch_loss", "epoch_learning_rate"} <= set(event_tags(logs / "train")), "Keras' per-epoch scalars"
    session = event_tags(logs, recursive=False)  # the HParams session lives in logs/ itself
    assert "_hparams_/session_start_info" in session
    history = json.loads((run_dir / "history.json").read_text())
    best = int(np.nanargmin(history["val_loss"]))
    assert session["best/epoch"] == best + 1 and session["best/val_loss"] == pytest.approx(history["val_loss"][best])
    assert session["test/ndcg@10"] == pytest.approx(report["ranking"]["ndcg@10"])
    assert session["test/accuracy"] == pytest.approx(report["classification"]["accuracy"])
    assert not any(tag.startswith("hparams/") for tag in event_tags(logs)), "no scalar copied into an extra run"
    assert len(list(logs.glob("events.out.tfevents.*"))) == 1, "one session"

    projector = logs / "projector"
    assert list(projector.glob("events.out.tfevents.*")), "an event file makes the folder a TensorBoard run"
    metadata = pd.read_csv(projector / "pairs_metadata.tsv", sep="\t")
    vectors = np.loadtxt(projector / "pairs_vectors.tsv", delimiter="\t")
    assert list(metadata.columns) == ["pair", "query", "product", "grade", "predicted", "language"]
    assert len(metadata) == len(vectors) == min(1000, report["dataset"]["pairs"]) and vectors.shape[1] == 16
    assert metadata["pair"].iloc[0] == f"{metadata['query'].iloc[0]} → {metadata['product'].iloc[0]}"
    assert {"en", "zh"} <= set(metadata["language"])


def test_run_and_export_carry_a_model_card_read_from_the_run(trained_run, tmp_path):
    from semmatch_tf.export import export_model
    from semmatch_tf.runs import load_run

    run_dir, report = trained_run
    card = (run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card.startswith("# Model card: a bilstm cross-encoder")
    for section in ("**Intended use.**", "## Training data", "## Evaluation (held-out queries)", "## Limits",
                    "## How to use"):
        assert section in card, section
    assert f"{report['classification']['accuracy']:.4f}" in card, "the report's numbers, not typed-in ones"
    assert f"test {report['dataset']['pairs']:,}" in card and "split by query" in card
    assert "Languages measured: en, es, ja, zh" in card
    history = json.loads((run_dir / "history.json").read_text())
    best = int(np.nanargmin(history["val_loss"]))
    assert f"best val_loss was {history['val_loss'][best]:.4f} at epoch {best + 1}" in card
    exported = export_model(load_run(run_dir), tmp_path / "serving")
    export_card = (exported / "assets.extra" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert export_card.startswith(card.rstrip()) and "## This export" in export_card
    assert "| `serving_default` | `product`, `query` | `label`, `probabilities`, `scores` |" in export_card


def test_a_run_is_measured_against_the_strongest_cheap_baseline_on_its_test_pairs(trained_run):
    """report.json and the card carry the run's macro-F1 against the strong baseline's, refitted here
    on the same splits, with a paired-bootstrap interval and a verdict that follows it."""
    from semmatch_tf.evaluation import confusion_matrix, precision_recall_f1
    from semmatch_tf.models.tfidf import StrongPairLogReg
    from semmatch_tf.training import load_splits
    from semmatch_tf.training.config_files import load_config

    run_dir, report = trained_run
    check = report["baseline"]
    assert (check["model"], check["metric"], check["pairs"]) == ("strong_pair_logreg", "macro_f1", report["dataset"]["pairs"])
    assert check["run"] == pytest.approx(report["classification"]["macro"]["f1"])
    train, validation, test = load_splits(load_config(run_dir / "config.yaml").data)
    texts = lambda d: (d.frame["query"].tolist(), d.frame["product"].tolist())  # noqa: E731
    baseline = StrongPairLogReg().fit(*texts(train), train.frame["label"].to_numpy(),
                                      validation=(*texts(validation), validation.frame["label"].to_numpy()))
    predicted = baseline.predict_proba(*texts(test)).argmax(axis=1)
    matrix = confusion_matrix(test.frame["label"].to_numpy(), predicted, train.labels.num_classes)
    assert check["baseline"] == pytest.approx(precision_recall_f1(matrix)["macro"]["f1"])
    assert check["gain"] == pytest.approx(check["run"] - check["baseline"])
    assert check["low"] <= check["gain"] <= check["high"] and check["beats"] == (check["low"] > 0)
    assert check["accuracy"]["run"] == pytest.approx(report["classification"]["accuracy"])
    card = (run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Against the strongest cheap baseline" in card and f"{check['baseline']:.4f}" in card
    assert ("**It beats the baseline**" in card) == check["beats"]
    assert "have no baseline beside them" not in card


def test_cli_evaluate_baseline_reproduces_the_training_comparison(trained_run):
    run_dir, report = trained_run
    result = cli("evaluate", "--model", str(run_dir), "--baseline", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    again = json.loads(result.stdout)["baseline"]
    for key in ("run", "baseline", "gain", "low", "high"):
        assert again[key] == pytest.approx(report["baseline"][key]), key
    assert again["beats"] == report["baseline"]["beats"] and again["chosen"] == report["baseline"]["chosen"]
    table = cli("evaluate", "--model", str(run_dir), "--baseline")
    assert table.returncode == 0 and "vs the strongest cheap baseline (strong_pair_logreg): macro-F1" in table.stdout


def test_the_baseline_verdict_follows_the_interval():
    from semmatch_tf.data.demo import load_demo
    from semmatch_tf.data.splits import split_by_query
    from semmatch_tf.training.baseline_check import compare_with_baseline

    train, validation, test = split_by_query(load_demo(), seed=0)
    gold = test.labels.normalise(test.frame["grade"].to_numpy())
    perfect = compare_with_baseline(train, validation, test, "regression", test.labels, gold, samples=200)
    constant = compare_with_baseline(train, validation, test, "regression", test.labels,
                                     np.full(len(test), gold.mean()), samples=200)
    assert perfect["beats"] and perfect["run"] == pytest.approx(0.0, abs=1e-9) and perfect["low"] > 0
    assert not constant["beats"] and constant["high"] < 0, "a constant grade loses to TF-IDF + ridge"
    assert perfect["baseline"] == constant["baseline"] > 0


def test_loaded_run_reproduces_the_report_scores(trained_run):
    from semmatch_tf.runs import load_run

    run_dir, _ = trained_run
    matcher = load_run(run_dir)
    scores = matcher.score(["apple iphone charger", "apple iphone charger"],
                           ["Apple USB-C 20W Power Adapter", "Fuji apples 1kg"])
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 2))
    assert matcher.predict_outputs([], []).shape == (0, 3)


def test_resume_after_sigkill(tmp_path):
    """Kill a training process with SIGKILL after an epoch is backed up; re-running resumes."""
    config = write_config(tmp_path, {"training": {"epochs": 6}})
    run_dir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "semmatch_tf.cli", "train", "--config", str(config),
                                "--output", str(run_dir)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = run_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", -1) >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, "training finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(metadata.read_text())["epoch"]  # epochs completed and backed up
    assert not (run_dir / "model.keras").exists(), "a killed run has no final model"
    assert (run_dir / "checkpoints" / "best.weights.h5").is_file(), "the best checkpoint survives the kill"

    result = cli("train", "--config", str(config), "--output", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    epochs_run = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs_run[0] == f"Epoch {done + 1}/6", "the second run starts after the last backed-up epoch"
    assert len(epochs_run) == 6 - done
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 6, "history.json covers the epochs of both processes"
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()


def test_cli_evaluate_predict_and_bad_input(trained_run, tmp_path):
    run_dir, _ = trained_run
    held_out = tmp_path / "held_out.tsv"
    held_out.write_text("query\tproduct\tgrade\napple charger\tApple USB-C 20W Power Adapter\t2\n"
                        "apple charger\tFuji apples 1kg\t0\nfresh apples\tFuji apples 1kg\t2\n"
                        "fresh apples\tApple USB-C 20W Power Adapter\t0\n", encoding="utf-8")
    result = cli("evaluate", "--model", str(run_dir), "--dataset", "generic", "--path", str(held_out),
                 "--option", "query=query", "--option", "product=product", "--option", "label=grade",
                 "--option", "grade_range=[0, 2]", "--output", str(tmp_path / "report.json"))
    assert result.returncode == 0, result.stderr[-2000:]
    table = result.stdout.splitlines()
    assert table[0] == "held_out: 4 pairs, 2 queries" and "accuracy" in table[1] and table[2].split()[:2] == ["all", "4"]
    report = json.loads((tmp_path / "report.json").read_text())  # the whole report: --output, or --json
    assert report["counts"]["pairs"] == 4
    assert "ranking" in report and "classification" in report

    result = cli("predict", "--model", str(run_dir),
                 input="apple charger\tApple USB-C 20W Power Adapter\n苹果\t红富士苹果 5斤\n")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [l["query"] for l in lines] == ["apple charger", "苹果"]
    assert all(len(l["probabilities"]) == 3 and abs(sum(l["probabilities"]) - 1) < 1e-4 for l in lines)

    result = cli("predict", "--model", str(run_dir), input="only one field\n")
    assert result.returncode == 2 and "line 1" in result.stderr and "<stdin>" in result.stderr


def test_cli_rejects_bad_config_before_training(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {lstm_unitz: 3}\n", encoding="utf-8")
    result = cli("train", "--config", str(bad), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and "model.lstm_unitz" in result.stderr
    assert not (tmp_path / "run").exists()


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from semmatch_tf.training.config_files import load_config
from semmatch_tf.training.runtime import distribution_strategy
from semmatch_tf.training.trainer import train
config = load_config(sys.argv[1])
print("REPLICAS", distribution_strategy("mirrored").num_replicas_in_sync)
report = train(config, sys.argv[2], verbose=0)
print("NDCG", report["ranking"]["ndcg@10"])
"""


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    """tf.distribute: the same trainer runs replicated over two devices (logical CPUs here)."""
    config = write_config(tmp_path, {"training": {"epochs": 1, "distribution": "mirrored"}})
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(config), str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REPLICAS 2" in result.stdout
    assert (tmp_path / "run" / "model.keras").is_file()


def test_resume_refuses_a_backup_of_another_config(tmp_path):
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import train

    run_dir = tmp_path / "run"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(write_config(tmp_path).read_text())
    other = load_config(write_config(tmp_path, {"model": {"lstm_units": 8}}))
    with pytest.raises(ValueError, match="interrupted run of a different config"):
        train(other, run_dir, verbose=0)


def test_precision_auto_is_float32_on_a_cpu_and_bf16_units_are_read_from_cpuinfo(monkeypatch, caplog):
    import builtins
    import io

    from semmatch_tf.training import runtime

    monkeypatch.setattr(runtime, "has_gpu", lambda: False)
    assert runtime.resolve_precision("auto") == "float32"  # on every CPU: same numbers everywhere
    real_open = builtins.open

    def fake_cpuinfo(flags: str):
        def fake_open(path, *args, **kwargs):
            if str(path) == "/proc/cpuinfo":
                return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
            return real_open(path, *args, **kwargs)
        return fake_open

    monkeypatch.setattr(builtins, "open", fake_cpuinfo("fpu avx2 avx512f avx512_bf16 amx_bf16"))
    assert runtime.cpu_has_bf16_units()
    caplog.clear()
    assert runtime.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert "slower" not in caplog.text
    monkeypatch.setattr(builtins, "open", fake_cpuinfo("fpu avx2 avx512f"))
    assert not runtime.cpu_has_bf16_units()
    with caplog.at_level("WARNING"):
        assert runtime.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert "slower than float32" in caplog.text


def test_bert_cross_encoder_hyper_parameters_reach_tensorboard():
    """One flattener for every family: model.bert.* and model.bi_encoder.* reach HParams where the
    family reads them, and only there."""
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.hparams import flat_hparams

    flat = flat_hparams(RunConfig.from_dict({"model": {"family": "bert", "bert": {"lora_rank": 8, "pooling": "mean"}}}))
    assert flat["model.bert.lora_rank"] == 8 and flat["model.bert.pooling"] == "mean"
    assert "model.bert" not in flat and not any(k.startswith("model.bi_encoder.") for k in flat), \
        "a cross-encoder reads no bi-encoder section: no column for it"
    bilstm = flat_hparams(RunConfig.from_dict({"model": {"family": "bilstm"}}))
    assert "model.lstm_units" in bilstm and not any(k.startswith("model.bert.") for k in bilstm)
    towers = flat_hparams(RunConfig.from_dict({"model": {"family": "bert_bi_encoder"}}))
    assert "model.bi_encoder.temperature" in towers and "model.bert.pooling" in towers


def test_a_unit_normalising_run_exports_the_same_normalisation(tmp_path):
    """``text.normalize_units``: the vocabulary is learned from normalised text, the saved run and its
    SavedModel score every spelling of a size alike, and the export agrees with the run."""
    import numpy as np
    import tensorflow as tf

    from semmatch_tf.export import export_model
    from semmatch_tf.runs import load_run
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import train

    config = load_config(write_config(tmp_path, {"text": {"normalize_units": True}, "training": {"epochs": 1}}))
    train(config, tmp_path / "run", verbose=0)
    vocabulary = (tmp_path / "run" / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    assert "cm" in vocabulary  # a piece only the normalised demo text has (centimetres written one way)
    matcher = load_run(tmp_path / "run")
    assert matcher.preprocessor.normalize_units
    queries = ['12" shelf bracket', "12 in. shelf bracket", "12-inch shelf bracket"]
    products = ["Everbilt 12 in. x 10 in. White Shelf Bracket"] * 3
    scores = matcher.score(queries, products)
    np.testing.assert_allclose(scores, scores[0], atol=1e-6)
    served = tf.saved_model.load(str(export_model(matcher, tmp_path / "serving")))
    outputs = served.signatures["serving_default"](query=tf.constant(queries), product=tf.constant(products))
    np.testing.assert_allclose(outputs["scores"].numpy(), scores, atol=1e-5)


def test_class_cuts_tuned_on_validation_are_saved_reported_and_served(tmp_path):
    """``training.class_cuts: validation``: a regression run stores cuts that beat the nearest class
    grade on its validation macro-F1, its report and its export name classes by them."""
    import numpy as np
    import tensorflow as tf

    from semmatch_tf.evaluation import macro_f1
    from semmatch_tf.export import export_model
    from semmatch_tf.runs import load_run
    from semmatch_tf.training import load_splits
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import train

    overrides = {"model": {"head": "regression"}, "training": {"epochs": 2, "class_weights": None, "class_cuts": "validation"}}
    config = load_config(write_config(tmp_path, overrides))
    report = train(config, tmp_path / "run", verbose=0)
    matcher = load_run(tmp_path / "run")
    cuts = json.loads((tmp_path / "run" / "labels.json").read_text(encoding="utf-8"))["cuts"]
    assert matcher.labels.cuts == tuple(cuts) and len(cuts) == matcher.labels.num_classes - 1
    _, validation, test = load_splits(config.data)
    k = matcher.labels.num_classes
    held = matcher.score(validation.frame["query"].tolist(), validation.frame["product"].tolist())
    gold = validation.frame["label"].to_numpy()
    assert macro_f1(gold, matcher.labels.class_of_grade(held), k) >= macro_f1(gold, test.labels.class_of_grade(held), k)
    grades = matcher.score(test.frame["query"].tolist(), test.frame["product"].tolist())
    expected = macro_f1(test.frame["label"].to_numpy(), matcher.labels.class_of_grade(grades), k)
    assert report["classification"]["macro"]["f1"] == pytest.approx(expected)
    served = tf.saved_model.load(str(export_model(matcher, tmp_path / "serving")))
    queries, products = test.frame["query"].tolist()[:64], test.frame["product"].tolist()[:64]
    labels = served.signatures["serving_default"](query=tf.constant(queries), product=tf.constant(products))["label"]
    assert [b.decode() for b in labels.numpy()] == [matcher.labels.names[c] for c in matcher.labels.class_of_grade(grades[:64])]
    assert "tuned for macro-F1 on the validation split" in (tmp_path / "run" / "MODEL_CARD.md").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="training.class_cuts"):
        load_config(write_config(tmp_path, {"training": {"class_cuts": "validation"}}))  # a classification head
