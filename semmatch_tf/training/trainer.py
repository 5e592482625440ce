"""Train a matcher from a RunConfig and write a complete run directory (see semmatch_tf.runs)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from semmatch_tf import runs
from semmatch_tf.cards import write_run_card
from semmatch_tf.data.demo import load_demo
from semmatch_tf.data.loaders import load_dataset
from semmatch_tf.data.pipeline import PipelineOptions, make_dataset, make_epoch_stream
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.data.splits import split_by_query, subsample_queries
from semmatch_tf.evaluation.classification import macro_f1, tune_class_cuts
from semmatch_tf.evaluation.report import save_report
from semmatch_tf.models.bert import merge_lora
from semmatch_tf.models.cross_encoders import build_cross_encoder, uses_own_vocabulary
from semmatch_tf.models.heads import loss_for, metrics_for
from semmatch_tf.models.registry import family
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.text.units import normalize_units
from semmatch_tf.augment import augment_pairs
from semmatch_tf.training.adversarial import install_adversarial
from semmatch_tf.training.baseline_check import compare_with_baseline
from semmatch_tf.training.callbacks import completed_epochs, remove_backup
from semmatch_tf.training.config import DataConfig, RunConfig, resolve_data_path
from semmatch_tf.training.config_files import load_config, save_config
from semmatch_tf.training.contrastive import fit_bi_encoder
from semmatch_tf.training.distill import load_graded_pairs
from semmatch_tf.training.fit import fit_resumably, watched_metric
from semmatch_tf.training.hparams import flat_hparams, plain_history
from semmatch_tf.training.negatives import with_mined_negatives
from semmatch_tf.training.tensorboard_logs import cross_encoder_projection, write_run_board
from semmatch_tf.training.optimizers import build_optimizer
from semmatch_tf.training.run_lock import discard_unstarted_run, run_lock
from semmatch_tf.training.run_plots import write_run_plots
from semmatch_tf.compute import compute_scope, training_compute
from semmatch_tf.training.runtime import distribution_strategy, resolve_jit, seed_everything, set_precision
from semmatch_tf.training.vocab import settle_vocabulary, training_texts  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


def load_splits(config: DataConfig, *, extra: bool = True) -> tuple[PairDataset, PairDataset, PairDataset]:
    """Train / validation / test splits, grouped by query so no query is in two splits.

    Explicit ``validation_path`` / ``test_path`` files are used as they are; whatever is not given
    is carved out of ``path`` by query. ``subsample`` caps then apply per split, and last the
    ``extra_train`` files join the training split (``extra=False``: without them).
    """
    splits = _split(config)
    if config.subsample:
        caps = [config.subsample.get(name) for name in ("train", "validation", "test")]
        splits = tuple(subsample_queries(s, cap, seed=config.seed) if cap else s for s, cap in zip(splits, caps))
    train, validation, test = splits
    for path in config.extra_train if extra else ():
        train = _concat(train, load_graded_pairs(resolve_data_path(path), train.labels))
    return train, validation, test


def _split(config: DataConfig) -> tuple[PairDataset, PairDataset, PairDataset]:
    data = _load(config, config.path)
    given = {"validation": config.validation_path, "test": config.test_path}
    if all(given.values()):
        return data, _load(config, given["validation"]), _load(config, given["test"])
    train, validation, test = split_by_query(data, fractions=config.split, seed=config.seed)
    if given["validation"]:
        train = _concat(train, validation)
        validation = _load(config, given["validation"])
    if given["test"]:
        train = _concat(train, test)
        test = _load(config, given["test"])
    return train, validation, test


def _load(config: DataConfig, path: str | None) -> PairDataset:
    if config.format == "demo":
        data = load_demo()
        return data.head(config.limit) if config.limit else data

    return load_dataset(config.format, resolve_data_path(path), limit=config.limit, **config.options)


def _concat(first: PairDataset, second: PairDataset) -> PairDataset:
    return PairDataset(pd.concat([first.frame, second.frame], ignore_index=True), first.labels, first.name)


def class_weights(train: PairDataset, spec) -> dict[int, float] | None:
    """None, 'balanced' (n / (k * count_c), as scikit-learn defines it) or an explicit mapping."""
    if spec is None:
        return None
    k = train.labels.num_classes
    if spec == "balanced":
        counts = np.bincount(train.frame["label"].to_numpy(), minlength=k)
        return {c: (len(train) / (k * counts[c]) if counts[c] else 0.0) for c in range(k)}
    weights = {int(c): float(w) for c, w in spec.items()}
    unknown = sorted(set(weights) - set(range(k)))
    if unknown:
        raise ValueError(f"training.class_weights names classes {unknown} outside 0..{k - 1}")
    return {c: weights.get(c, 1.0) for c in range(k)}


def train(config: RunConfig, run_dir: str | Path, *, verbose: int = 1) -> dict:
    """Train, evaluate on the test split and write the run directory (:mod:`semmatch_tf.runs`).

    Re-running on the same ``run_dir`` after a kill resumes from the last finished epoch
    (``backup/``) and ends with exactly the weights and metrics of an unkilled run of the same
    config: each epoch's batches depend on (seed, epoch) only (``make_epoch_stream``), and the
    backup carries the optimizer and dropout states. The vocabulary is written once, before the
    first epoch; a resume re-learns it and must find the saved one (:func:`settle_vocabulary`).
    ``backup/`` is removed only after every file of the run is written, so a kill at any moment
    resumes rather than retraining. One process at a time per run directory (``run.lock``).

    Args:
        config: a validated run config (:func:`semmatch_tf.load_config`), of either kind of family.
        run_dir: the run directory.
        verbose: Keras' fit verbosity.

    Returns:
        The test report (as ``report.json``): metrics on the test split (the validation split when
        the test split is empty).

    Examples:
        >>> from semmatch_tf import load_config
        >>> report = train(load_config("demo_bilstm"), "runs/demo", verbose=0)      # doctest: +SKIP
        >>> "classification" in report                                             # doctest: +SKIP
        True
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    policy = keras.mixed_precision.global_policy()  # training.precision sets it: restored after
    try:
        with run_lock(run_dir), discard_unstarted_run(run_dir), \
                compute_scope(training_compute(config.training.precision), float32_adds=False):
            return _train(config, run_dir, verbose)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _train(config: RunConfig, run_dir: Path, verbose: int) -> dict:
    """The body of :func:`train`, run while holding the run directory's lock."""
    seed_everything(config.training.seed, config.training.deterministic)
    policy = set_precision(config.training.precision)
    _check_resumable(config, run_dir)
    train_set, validation_set, test_set = load_splits(config.data)
    _check_sizes(train_set, validation_set, config)
    save_config(config, run_dir / runs.CONFIG)
    log.info("splits: train %d, validation %d, test %d pairs", len(train_set), len(validation_set), len(test_set))
    if family(config.model.family).is_bi_encoder:
        return fit_bi_encoder(config, run_dir, (train_set, validation_set, test_set), verbose=verbose)
    judged_train = train_set  # what the baseline of the report is fitted on (before mined and augmented pairs)
    if config.training.mined_negatives:
        before = len(train_set)
        train_set = with_mined_negatives(train_set, count=config.training.mined_negatives,
                                         depth=config.training.mined_negative_depth, seed=config.training.seed)
        log.info("mined negatives: %d pairs added to %d training pairs", len(train_set) - before, before)
    if config.training.augmentation.copies:
        before = len(train_set)
        train_set = augment_pairs(train_set, config.training.augmentation, seed=config.training.seed)
        log.info("augmentation: %d augmented pairs added to %d training pairs", len(train_set) - before, before)
    return _fit_cross_encoder(config, run_dir, (train_set, validation_set, test_set), policy, verbose,
                              judged_train=judged_train)


def _fit_cross_encoder(config: RunConfig, run_dir: Path, splits, policy: str, verbose: int, *,
                       judged_train: PairDataset) -> dict:
    """Build, fit (or resume), save and evaluate a cross-encoder; removes ``backup/`` last.
    ``judged_train``: the training split before mined and augmented pairs (the baseline's)."""
    train_set, validation_set, test_set = splits
    preprocessor, model = _build_cross_encoder(config, run_dir, train_set)
    train_data, steps, validation_data = _cross_encoder_data(config, run_dir, preprocessor, train_set, validation_set)
    history = fit_resumably(model, run_dir, data=train_data, validation=validation_data,
                            epochs=config.training.epochs, steps_per_epoch=steps, training=config.training,
                            verbose=verbose,
                            class_weight=class_weights(train_set, config.training.class_weights))

    model = merge_lora(model)  # adapters folded into plain weights: an ordinary model to save and serve
    matcher = runs.TrainedMatcher(preprocessor, model, train_set.labels, config.model.head, run_dir)
    if config.training.class_cuts == "validation":
        matcher = dataclasses.replace(matcher, labels=validation_cuts(matcher, validation_set))
    runs.save_cross_encoder(run_dir, preprocessor, model, matcher.labels, config.model.head)
    runs.atomic_write_text(run_dir / runs.HISTORY, json.dumps(plain_history(history), indent=2))
    evaluation_set = test_set if len(test_set) else validation_set
    monitor = watched_metric(config.training.monitor, validation_data is not None)
    baseline_splits = (judged_train, validation_set) if config.training.compare_baseline else None
    report = write_evaluation(matcher, evaluation_set, run_dir, history=history, monitor=monitor,
                              baseline_splits=baseline_splits)
    write_run_board(run_dir, {"precision": policy, **flat_hparams(config)}, history, monitor, report,
                    cross_encoder_projection(matcher, evaluation_set))
    write_run_card(run_dir, {"train": len(train_set), "validation": len(validation_set), "test": len(test_set)})
    remove_backup(run_dir)  # last: everything above exists now, a kill before this resumes instead
    return report


def validation_cuts(matcher, validation_set: PairDataset):
    """The run's label scheme with class cuts tuned for macro-F1 on its validation predictions
    (``training.class_cuts: validation``; :func:`~semmatch_tf.evaluation.tune_class_cuts`)."""
    labels, gold = matcher.labels, validation_set.frame["label"].to_numpy()
    grades = matcher.grades_of(matcher.predict_dataset(validation_set))
    cuts = tune_class_cuts(grades, gold, labels.boundaries, labels.grade_range)
    log.info("class cuts tuned on %d validation pairs: %s (macro-F1 %.4f; nearest class grade %.4f)",
             len(validation_set), [round(c, 4) for c in cuts],
             macro_f1(gold, labels.with_cuts(cuts).class_of_grade(grades), labels.num_classes),
             macro_f1(gold, labels.class_of_grade(grades), labels.num_classes))
    return labels.with_cuts(cuts)


def _build_cross_encoder(config: RunConfig, run_dir: Path, train_set: PairDataset):
    """Preprocessor and compiled model; the vocabulary is learned (or the checkpoint's) and settled."""
    text, training = config.text, config.training
    vocabulary = None
    if uses_own_vocabulary(config.model):
        texts = training_texts(train_set)
        if text.normalize_units:  # learn the pieces of the text the preprocessor will see
            texts = [normalize_units(t) for t in texts]
        vocabulary = learn_vocabulary(texts, vocab_size=text.vocab_size,
                                      min_frequency=text.min_frequency, lowercase=text.lowercase,
                                      strip_accents=text.strip_accents)
    steps_per_epoch = len(train_set) // training.batch_size
    with distribution_strategy(training.distribution).scope():
        preprocessor, model = build_cross_encoder(config.model, text, vocabulary=vocabulary,
                                                  num_classes=train_set.labels.num_classes,
                                                  titles=train_set.frame["product"].astype(str).tolist())
        settle_vocabulary(run_dir, preprocessor.vocabulary)  # learned above, or the checkpoint's
        model.compile(optimizer=build_optimizer(training, steps_per_epoch * training.epochs),
                      loss=loss_for(config.model.head), metrics=metrics_for(config.model.head),
                      steps_per_execution=training.steps_per_execution, jit_compile=resolve_jit(training.jit_compile))
        install_adversarial(model, training.adversarial)  # a no-op unless training.adversarial.method is set
    return preprocessor, model


def _cross_encoder_data(config: RunConfig, run_dir: Path, preprocessor, train_set, validation_set):
    """``(train stream from the first unfinished epoch, steps per epoch, validation batches or None)``."""
    text, training = config.text, config.training
    target = "class" if config.model.head == "classification" else "grade"
    buckets = (tuple(text.length_buckets) if text.length_buckets and family(config.model.family).supports_length_buckets
               else None)
    train_data, steps = make_epoch_stream(train_set, preprocessor, PipelineOptions(
        batch_size=training.batch_size, target=target, shuffle=True, drop_remainder=True,
        token_dropout=training.token_dropout, length_buckets=buckets, seed=training.seed),
        epochs=training.epochs, first_epoch=min(completed_epochs(run_dir), training.epochs))
    validation_data = make_dataset(validation_set, preprocessor, PipelineOptions(
        batch_size=training.batch_size, target=target, length_buckets=buckets)) if len(validation_set) else None
    return train_data, steps, validation_data


def write_evaluation(matcher, dataset: PairDataset, run_dir: Path, history: dict | None = None,
                     monitor: str = "val_loss", baseline_splits: tuple[PairDataset, PairDataset] | None = None) -> dict:
    """Score ``dataset`` once, write report.json and the run's plots; returns the report.
    ``baseline_splits`` (train, validation): also compare with the strongest cheap baseline fitted
    on them (``report["baseline"]``, :func:`~semmatch_tf.training.baseline_check.compare_with_baseline`)."""
    outputs = matcher.predict_dataset(dataset)
    report = matcher.report_of(dataset, outputs)
    report["dataset"] = {"name": dataset.name, "pairs": len(dataset)}
    if baseline_splits is not None:
        report["baseline"] = compare_with_baseline(*baseline_splits, dataset, matcher.head, matcher.labels, outputs)
        log.info("vs the strongest cheap baseline: %s %.4f vs %.4f, gain %+.4f [%+.4f, %+.4f]",
                 *(report["baseline"][k] for k in ("metric", "run", "baseline", "gain", "low", "high")))
    save_report(report, run_dir / runs.REPORT)
    classification = matcher.head == "classification"
    write_run_plots(run_dir / "plots", history=history or {}, monitor=monitor, report=report, dataset=dataset,
                    predicted_grades=matcher.grades_of(outputs), probabilities=outputs if classification else None,
                    head=matcher.head)
    return report


def _check_resumable(config: RunConfig, run_dir: Path) -> None:
    """A resume state (``backup/``) is only valid for the config that wrote it: resuming a different
    model would fail deep inside Keras, or silently mix two runs."""
    if not (run_dir / "backup").exists() or not (run_dir / runs.CONFIG).is_file():
        return
    try:
        previous = load_config(run_dir / runs.CONFIG)
    except ValueError:
        previous = None
    if previous != config:
        raise ValueError(f"{run_dir} holds an interrupted run of a different config ({run_dir / runs.CONFIG}); "
                         f"use another --output, or delete {run_dir / 'backup'} to start afresh")


def _check_sizes(train_set: PairDataset, validation_set: PairDataset, config: RunConfig) -> None:
    if config.training.class_cuts == "validation" and not len(validation_set):
        raise ValueError("training.class_cuts: validation tunes the cuts on the validation split, which is empty: "
                         "give data.split a validation fraction or data.validation_path")
    if len(train_set) < config.training.batch_size:
        raise ValueError(f"the training split has {len(train_set)} pairs, fewer than one batch "
                         f"(training.batch_size={config.training.batch_size}): lower the batch size or add data")
