"""Run config validation and YAML round trip."""

from __future__ import annotations

import pytest

from semmatch_tf.training.config import ConfigError, RunConfig
from semmatch_tf.training.config_files import load_config, save_config
from semmatch_tf.training.optimizers import build_optimizer, learning_rate_schedule


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid_and_round_trip(tmp_path):
    config = RunConfig().validate()
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config


def test_yaml_values_and_overrides(tmp_path):
    path = write(tmp_path, "model: {lstm_units: 32}\ntraining: {optimizer: sgd, learning_rate: 1}\n")
    config = load_config(path, {"training.epochs": 2})
    assert config.model.lstm_units == 32 and config.training.learning_rate == 1.0
    assert config.training.optimizer == "sgd" and config.training.epochs == 2
    nested = load_config(path, {"model.bert.lora_rank": 8, "data.subsample": {"train": 100}})
    assert nested.model.bert.lora_rank == 8 and nested.model.lstm_units == 32
    assert nested.data.subsample == {"train": 100}


@pytest.mark.parametrize("text, key", [
    ("model: {lstm_unit: 32}", "model.lstm_unit"),
    ("trainin: {}", "trainin"),
    ("training: {optimizer: rmsprop}", "training.optimizer"),
    ("training: {epochs: two}", "training.epochs"),
    ("training: {epochs: 0}", "training.epochs"),
    ("model: {dropout: 1.5}", "model.dropout"),
    ("data: {split: [0.5, 0.2, 0.2]}", "data.split"),
    ("data: {format: qbqtc}", "data.path"),
    ("training: {weight_decay: 0.01, optimizer: adam}", "training.weight_decay"),
    ("model: {head: regression}\ntraining: {class_weights: balanced}", "training.class_weights"),
    ("training: {precision: float8}", "training.precision"),
    ("data: {subsample: {tain: 10}}", "data.subsample"),
    ("data: {subsample: {train: 0}}", "data.subsample.train"),
    ("model: {bert: {sequence_length: 1024}}", "model.bert.sequence_length"),
    ("training: {mined_negatives: 5, mined_negative_depth: 3}", "training.mined_negative_depth"),
    ("model: {family: bilstm_bi_encoder}\ntraining: {mined_negatives: 2}", "training.mined_negatives"),
])
def test_invalid_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as error:
        load_config(write(tmp_path, text))
    assert str(tmp_path) in str(error.value), "the message names the file"


def test_schedules_warm_up_then_decay():
    config = RunConfig().training
    config.schedule, config.warmup_fraction, config.learning_rate = "linear", 0.1, 1.0
    schedule = learning_rate_schedule(config, total_steps=100)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.5) and rates[2] == pytest.approx(1.0)
    assert rates[3] == pytest.approx(0.5) and rates[4] == pytest.approx(0.0)
    config.schedule, config.warmup_fraction = "constant", 0.0
    assert learning_rate_schedule(config, 100) == 1.0


@pytest.mark.parametrize("name, cls", [("adam", "FusedAdam"), ("adamw", "FusedAdamW"), ("sgd", "SGD")])
def test_optimizers(name, cls):
    config = RunConfig().training
    config.optimizer, config.weight_decay = name, (0.01 if name != "adam" else 0.0)
    optimizer = build_optimizer(config, 10)
    assert type(optimizer).__name__ == cls
    if name == "adamw":
        assert optimizer.weight_decay == pytest.approx(0.01)


def test_fused_adam_updates_as_keras_adam_does_in_one_kernel():
    """FusedAdamW runs TensorFlow's ResourceApplyAdam (one kernel per variable) and lands where
    Keras' AdamW does on the same (dense) gradients, up to float32 rounding. An embedding's sparse
    gradient is summed per row first (a token twice in a batch: one row, one gradient), as a dense
    gradient would be; a config round trip gives the same optimizer back."""
    import keras
    import numpy as np
    import tensorflow as tf

    from semmatch_tf.training.optimizers import FusedAdamW

    rng = np.random.default_rng(0)
    start = [rng.standard_normal(shape).astype("float32") for shape in ((50, 8), (8,))]
    rows = tf.constant([1, 7, 7])  # the embedding's gradient as IndexedSlices, one row twice
    grads = [(tf.IndexedSlices(tf.constant(rng.standard_normal((3, 8)).astype("float32") * 0.1), rows,
                               tf.constant([50, 8])), tf.constant(rng.standard_normal(8).astype("float32") * 0.1))
             for _ in range(22)]
    results = []
    for cls, as_given in ((keras.optimizers.AdamW, tf.convert_to_tensor), (FusedAdamW, lambda g: g)):
        weights = [keras.Variable(w) for w in start]
        optimizer = cls(learning_rate=0.01, weight_decay=0.004)
        step = tf.function(lambda g: optimizer.apply_gradients(zip(g, weights)))
        for embedding_grad, bias_grad in grads:
            step([as_given(embedding_grad), bias_grad])
        kernels = {op.type for op in step.get_concrete_function([as_given(grads[0][0]), grads[0][1]]).graph.get_operations()}
        results.append(([w.numpy() for w in weights], "ResourceApplyAdam" in kernels))
    (keras_weights, keras_fused), (fused_weights, fused_fused) = results
    assert fused_fused and not keras_fused
    for before, a, b in zip(start, keras_weights, fused_weights):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
        assert np.abs(a - before).max() > 0.05  # both moved, the same way
    clone = FusedAdamW.from_config(FusedAdamW(learning_rate=0.01, weight_decay=0.004).get_config())
    assert isinstance(clone, FusedAdamW) and clone.weight_decay == pytest.approx(0.004)


def test_every_packaged_recipe_validates_and_says_what_it_is():
    """A recipe that fails validation would only be found when someone trains it; each also opens
    with a comment (what `semmatch-tf configs` lists), and the compact BERTs keep six e5 layers."""
    from semmatch_tf.training.config_files import load_config, packaged_config_path, packaged_configs

    for name in packaged_configs():
        config = load_config(name)  # validates
        assert packaged_config_path(name).read_text(encoding="utf-8").startswith("# "), name
        if name in ("lcqmc_bert", "qbqtc_bert"):
            assert (config.model.bert.source, config.model.bert.keep_layers) == ("huggingface", 6)
        if name.endswith("_scratch"):
            assert config.model.bert.source == "scratch" and config.model.bert.keep_layers is None


def test_example_configs_ship_in_the_package_and_load_by_name(tmp_path):
    """From outside a checkout: `semmatch-tf configs` lists every example recipe, copies one out,
    and `load_config(name)` reads it; the repository's configs/ is the same folder."""
    import os
    import subprocess
    import sys

    from conftest import REPO
    from semmatch_tf.training.config_files import load_config, packaged_configs

    names = packaged_configs()
    assert {"demo_bilstm", "lcqmc_e5", "home_depot_bilstm", "stsb_e5_bi_encoder"} <= set(names)
    assert sorted(p.stem for p in (REPO / "configs").glob("*.yaml")) == names
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    listed = cli("configs")
    assert listed.returncode == 0 and [line.split()[0] for line in listed.stdout.splitlines()] == names
    copied = cli("configs", "lcqmc_e5", "--copy", tmp_path / "mine")
    assert copied.returncode == 0, copied.stderr
    assert load_config(tmp_path / "mine" / "lcqmc_e5.yaml") == load_config("lcqmc_e5")
    again = cli("configs", "lcqmc_e5", "--copy", tmp_path / "mine")
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = cli("configs", "nope")
    assert unknown.returncode == 2 and "no packaged config 'nope'" in unknown.stderr
