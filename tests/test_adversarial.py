"""Adversarial training (FGM / PGD on the token embeddings): the perturbation raises the loss, an
epsilon of 0 is plain training bit for bit, and the config switch trains end to end."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from semmatch_tf.training.config import AdversarialConfig, ConfigError, RunConfig

TEXT = {"vocab_size": 400, "min_frequency": 1, "query_length": 8, "product_length": 16}
BILSTM = {"family": "bilstm", "head": "classification", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16,
          "dropout": 0.0, "embedding_dropout": 0.0}
BERT = {"family": "bert", "head": "regression", "bert": {"source": "scratch", "size": "tiny", "sequence_length": 24,
                                                         "dropout": 0.0}}


@functools.lru_cache(maxsize=None)
def _demo_and_vocabulary(pairs: int):
    from semmatch_tf.data.demo import load_demo
    from semmatch_tf.text import learn_vocabulary

    demo = load_demo().head(pairs)
    texts = demo.frame["query"].tolist() + demo.frame["product"].tolist()
    return demo, tuple(learn_vocabulary(texts, vocab_size=400, min_frequency=1))


def _setup(model_section: dict, seed: int = 7, steps: int = 3, run_eagerly: bool = False):
    """A compiled cross-encoder and ``steps`` batches of 32 demo pairs (no shuffling, no dropout)."""
    from semmatch_tf.data.pipeline import PipelineOptions, make_dataset
    from semmatch_tf.models.cross_encoders import build_cross_encoder, uses_own_vocabulary
    from semmatch_tf.models.heads import loss_for

    config = RunConfig.from_dict({"text": TEXT, "model": model_section})
    demo, vocabulary = _demo_and_vocabulary(32 * steps)
    vocabulary = list(vocabulary) if uses_own_vocabulary(config.model) else None
    keras.utils.set_random_seed(seed)
    preprocessor, model = build_cross_encoder(config.model, config.text, vocabulary=vocabulary,
                                              num_classes=demo.labels.num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss_for(config.model.head), run_eagerly=run_eagerly)
    target = "class" if config.model.head == "classification" else "grade"
    data = make_dataset(demo, preprocessor, PipelineOptions(batch_size=32, target=target))
    return model, data


def _weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.weights]


@pytest.mark.parametrize("section", [BILSTM, BERT], ids=["bilstm", "bert"])
def test_fgm_and_pgd_perturbations_raise_the_loss_and_epsilon_zero_does_not(section):
    from semmatch_tf.training.adversarial import adversarial_losses, embedding_variable

    model, data = _setup(section)
    x, y = next(iter(data))
    before = np.asarray(embedding_variable(model))
    clean, fgm = adversarial_losses(model, x, y, AdversarialConfig(method="fgm", epsilon=0.5))
    _, pgd = adversarial_losses(model, x, y, AdversarialConfig(method="pgd", epsilon=0.5, steps=3))
    same_clean, zero = adversarial_losses(model, x, y, AdversarialConfig(method="fgm", epsilon=0.0))
    assert fgm > clean + 1e-6 and pgd > clean + 1e-6, (clean, fgm, pgd)
    assert zero == clean == same_clean
    np.testing.assert_array_equal(np.asarray(embedding_variable(model)), before)  # rows restored exactly


@pytest.mark.parametrize("section", [BILSTM, BERT], ids=["bilstm", "bert"])
def test_epsilon_zero_trains_exactly_like_plain_training_and_fgm_does_not(section):
    from semmatch_tf.training.adversarial import install_adversarial

    # Eagerly: in a graph, Grappler may compile the step's two copies of the forward pass
    # differently (last-bit differences, which Adam then amplifies); the arithmetic itself is exact.
    plain, data = _setup(section, run_eagerly=True)
    plain.fit(data, epochs=1, verbose=0, shuffle=False)
    zero, data = _setup(section, run_eagerly=True)
    install_adversarial(zero, AdversarialConfig(method="fgm", epsilon=0.0))
    zero.fit(data, epochs=1, verbose=0, shuffle=False)
    fgm, data = _setup(section)
    install_adversarial(fgm, AdversarialConfig(method="fgm", epsilon=1.0))
    history = fgm.fit(data, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(_weights(plain), _weights(zero)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(plain), _weights(fgm)))
    assert np.isfinite(history.history["loss"][0])


def test_config_switch_is_validated():
    with pytest.raises(ConfigError, match="training.adversarial.method"):
        RunConfig.from_dict({"training": {"adversarial": {"method": "fsgm"}}})
    with pytest.raises(ConfigError, match="training.adversarial.epsilon"):
        RunConfig.from_dict({"training": {"adversarial": {"method": "fgm", "epsilon": -1}}})
    with pytest.raises(ConfigError, match="cross-encoders only"):
        RunConfig.from_dict({"model": {"family": "bilstm_bi_encoder"}, "training": {"adversarial": {"method": "pgd"}}})


@pytest.mark.slow
def test_a_pgd_run_trains_through_the_trainer(tmp_path):
    from semmatch_tf.training.trainer import train

    config = RunConfig.from_dict({
        "data": {"format": "demo", "limit": 600, "split": [0.7, 0.15, 0.15]}, "text": TEXT, "model": BILSTM,
        "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                     "epochs": 1, "batch_size": 32, "early_stopping_patience": None,
                     "adversarial": {"method": "pgd", "epsilon": 0.5, "steps": 2}}})
    report = train(config, tmp_path / "run", verbose=0)
    assert 0 < report["classification"]["accuracy"] <= 1
    assert "adversarial" in (tmp_path / "run" / "config.yaml").read_text()
