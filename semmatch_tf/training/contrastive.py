"""Contrastive training of bi-encoders: the two phases, fitting, and the finished run directory.

What the model is trained on (positives, hard negatives, duplicate-free batches, the tf.data
pipelines) is :mod:`semmatch_tf.training.bi_encoder_examples`; the report
:mod:`semmatch_tf.training.bi_encoder_evaluation`; the run directory's layout, saving and loading
:mod:`semmatch_tf.runs`. This module re-exports their public names, so the old import paths
(``semmatch_tf.training.contrastive.load_bi_encoder``, ``pair_cosines``, ...) keep working.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path


from semmatch_tf.data.schema import PairDataset
from semmatch_tf import runs
from semmatch_tf.cards import write_run_card
from semmatch_tf.evaluation.report import save_report
from semmatch_tf.losses import CoSENTLoss, CosineRegressionLoss, in_batch_metrics
from semmatch_tf.models.bi_encoder import TwoTowerEncoder, build_towers
from semmatch_tf.models.two_tower import TwoTowerModel
from semmatch_tf.models.cross_encoders import uses_own_vocabulary
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.training.optimizers import build_optimizer
from semmatch_tf.training.run_lock import discard_unstarted_run, run_lock
from semmatch_tf.training.run_plots import write_run_plots
from semmatch_tf.training.runtime import distribution_strategy, resolve_jit, seed_everything
# The F401 imports below are re-exports: their names lived here until the split, and old import
# paths (semmatch_tf.training.contrastive.load_bi_encoder, pair_cosines, ...) keep working.
from semmatch_tf.runs import BI_ENCODER_FAMILY as FAMILY
from semmatch_tf.runs import (BI_ENCODER_META, PRODUCT_PREPROCESSOR, PRODUCT_TOWER, QUERY_PREPROCESSOR,  # noqa: F401
                              QUERY_TOWER, is_bi_encoder_run, load_bi_encoder, save_bi_encoder)
from semmatch_tf.training.bi_encoder_evaluation import (REPORT_KS, RETRIEVAL_KS, all_products,  # noqa: F401
                                                        evaluate_bi_encoder, pair_cosines, qrels_of,
                                                        retrieval_report)
from semmatch_tf.training.bi_encoder_examples import (Examples, add_hard_negatives, bm25_candidates,  # noqa: F401
                                                      encode_texts, epoch_packings, judged_by_query,
                                                      judged_candidates, model_candidates, pack_batches,
                                                      positive_examples, positive_threshold, regression_dataset,
                                                      softmax_dataset, text_key)
from semmatch_tf.training.callbacks import (HISTORY_CSV, completed_epochs, read_history_csv, remove_backup,
                                           save_weights_atomically)
from semmatch_tf.training.fit import fit_resumably, watched_metric
from semmatch_tf.training.hparams import flat_hparams, plain_history
from semmatch_tf.training.tensorboard_logs import bi_encoder_projection, write_run_board
from semmatch_tf.training.vocab import settle_vocabulary, training_texts

log = logging.getLogger(__name__)


# -- training -------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Phase:
    data: object
    steps: int
    validation: object | None


def _softmax_phase(config, towers, train_set: PairDataset, validation_set: PairDataset, threshold: float,
                   *, hard: int, source: str, encoder=None, epochs: int, skip_epochs: int = 0) -> _Phase:
    seed, batch = config.training.seed, config.training.batch_size
    examples = add_hard_negatives(positive_examples(train_set, threshold), train_set, count=hard, source=source,
                                  threshold=threshold, seed=seed, encoder=encoder)
    batches, steps = epoch_packings(examples, batch, epochs, seed)
    if steps == 0:
        raise ValueError(f"{len(examples)} positive pairs (grade >= {threshold:g}) cannot fill one batch of "
                         f"{batch} distinct queries and products: lower training.batch_size or "
                         f"model.bi_encoder.positive_grade, or add data")
    log.info("%d positives, %d batches of %d per epoch (%d rows dropped by the packer)", len(examples), steps,
             batch, len(examples) - steps * batch)
    data = softmax_dataset(examples, towers, batches[skip_epochs * steps:])
    return _Phase(data, steps, _softmax_validation(towers, validation_set, threshold, hard=hard, source=source,
                                                   encoder=encoder, batch=batch, seed=seed))


def _softmax_validation(towers, validation_set: PairDataset, threshold: float, *, hard: int, source: str, encoder,
                        batch: int, seed: int):
    """One packing of the validation positives, or None when they cannot fill a batch."""
    examples = positive_examples(validation_set, threshold)
    if len(examples) < batch:
        return None
    try:
        add_hard_negatives(examples, validation_set, count=hard, source=source, threshold=threshold, seed=seed,
                           encoder=encoder)
    except ValueError as error:
        log.warning("no validation batches: %s", error)
        return None
    batches = pack_batches(examples.query_keys, examples.product_keys, batch, seed=seed, negatives=examples.negatives)
    return softmax_dataset(examples, towers, batches) if len(batches) else None


def _regression_phase(config, towers, train_set, validation_set, *, epochs: int, skip_epochs: int = 0) -> _Phase:
    seed, batch = config.training.seed, config.training.batch_size
    data, steps = regression_dataset(train_set, towers, batch, epochs, seed)
    data = data.skip(skip_epochs * steps)
    validation = None
    if len(validation_set) >= batch:
        validation = regression_dataset(validation_set, towers, batch, 1, seed, shuffle=False)[0]
    return _Phase(data, steps, validation)


def _compile(model, config, total_steps: int) -> None:
    bi = config.model.bi_encoder
    softmax = bi.loss == "in_batch_softmax"
    losses = {"in_batch_softmax": lambda: None,  # label-free: the model's own compute_loss
              "cosine_regression": CosineRegressionLoss, "cosent": lambda: CoSENTLoss(scale=1.0 / bi.temperature)}
    model.compile(optimizer=build_optimizer(config.training, total_steps),
                  loss=losses[bi.loss](),
                  metrics=in_batch_metrics() if softmax else [],
                  steps_per_execution=config.training.steps_per_execution,
                  jit_compile=resolve_jit(config.training.jit_compile))


def _completed_epochs(directory: Path) -> int:
    """Epochs a killed run already finished (from the backup's metadata), to skip their batches."""
    return completed_epochs(directory)


def _fit(model, phase: _Phase, directory: Path, config, epochs: int, verbose: int) -> dict:
    return fit_resumably(model, directory, data=phase.data, validation=phase.validation, epochs=epochs,
                         steps_per_epoch=phase.steps, training=config.training, verbose=verbose)


def train_bi_encoder(config, run_dir: str | Path, splits: tuple[PairDataset, PairDataset, PairDataset], *,
                     verbose: int = 1) -> dict:
    """Train a ``*_bi_encoder`` family, write its run directory (:mod:`semmatch_tf.runs`); return the report.

    As for cross-encoders (``trainer.train``): one process per run directory (``run.lock``), the
    vocabulary written once and checked on a resume (``vocab.settle_vocabulary``), and
    ``backup/`` removed only after every file of the run is written.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir), discard_unstarted_run(run_dir):
        return fit_bi_encoder(config, run_dir, splits, verbose=verbose)


def fit_bi_encoder(config, run_dir: Path, splits: tuple[PairDataset, PairDataset, PairDataset], *,
                      verbose: int = 1) -> dict:
    """The body of :func:`train_bi_encoder`, for a caller that holds the run directory's lock
    (``trainer.train`` after loading the splits)."""
    train_set, validation_set, test_set = splits
    bi, training = config.model.bi_encoder, config.training
    seed_everything(training.seed, training.deterministic)
    threshold = positive_threshold(train_set, bi.positive_grade)
    vocabulary = None
    if uses_own_vocabulary(config.model):  # pretrained BERT towers bring their checkpoint's vocabulary
        vocabulary = learn_vocabulary(training_texts(train_set),
                                      vocab_size=config.text.vocab_size, min_frequency=config.text.min_frequency,
                                      lowercase=config.text.lowercase, strip_accents=config.text.strip_accents)

    softmax = bi.loss == "in_batch_softmax"
    strategy = distribution_strategy(training.distribution)
    with strategy.scope():
        towers = build_towers(config.model, config.text, vocabulary=vocabulary)
        model = TwoTowerModel(towers.query_tower, None if towers.shared else towers.product_tower,
                          temperature=bi.temperature, output="similarities" if softmax else "cosine",
                          name="bi_encoder")
    resuming = (run_dir / "backup").exists() or (run_dir / "warmup" / "backup").exists()
    settle_vocabulary(run_dir, towers.query_preprocessor.vocabulary, resuming=resuming)  # written, or checked
    hparams = {"threshold": threshold, **flat_hparams(config)}
    started = time.perf_counter()
    if softmax:
        history, steps = _train_softmax(model, towers, config, train_set, validation_set, threshold, run_dir,
                                        verbose, strategy)
    else:
        phase = _regression_phase(config, towers, train_set, validation_set, epochs=training.epochs,
                                  skip_epochs=_completed_epochs(run_dir))
        with strategy.scope():
            _compile(model, config, phase.steps * training.epochs)
        history, steps = _fit(model, phase, run_dir, config, training.epochs, verbose), phase.steps
    train_seconds = time.perf_counter() - started

    meta = {"family": FAMILY, "model_family": config.model.family, "shared_towers": towers.shared,
            "embedding_size": bi.embedding_size, "temperature": bi.temperature, "loss": bi.loss,
            "positive_grade": threshold, "hard_negatives": bi.hard_negatives,
            "hard_negative_source": bi.hard_negative_source, "normaliser": "l2",
            "query_length": config.text.query_length, "product_length": config.text.product_length}
    save_bi_encoder(run_dir, towers, meta, train_set.labels)
    runs.atomic_write_text(run_dir / runs.HISTORY, json.dumps(plain_history(history), indent=2))
    encoder = TwoTowerEncoder.from_towers(towers, meta, run_dir)
    evaluation_set = test_set if len(test_set) else validation_set
    report = evaluate_bi_encoder(encoder, evaluation_set, catalogue=all_products(splits))
    report["training"] = {"seconds": round(train_seconds, 1), "steps_per_epoch": steps,
                          "positive_grade": threshold, "epochs_run": len(next(iter(history.values()), []))}
    save_report(report, run_dir / runs.REPORT)
    monitor = watched_metric(training.monitor, bool(len(validation_set)))
    write_run_plots(run_dir / "plots", history=history, monitor=monitor, report=report)
    write_run_board(run_dir, hparams, history, monitor, report, bi_encoder_projection(encoder, evaluation_set))
    write_run_card(run_dir, dict(zip(("train", "validation", "test"), map(len, splits))))
    remove_backup(run_dir / "warmup")  # last: everything above exists now, a kill before this resumes instead
    remove_backup(run_dir)
    return report


def _train_softmax(model, towers, config, train_set, validation_set, threshold, run_dir, verbose, strategy):
    """In-batch softmax training; with ``model``-mined negatives, a warm-up phase first."""
    bi, epochs = config.model.bi_encoder, config.training.epochs
    if not (bi.hard_negatives and bi.hard_negative_source == "model"):
        phase = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=bi.hard_negatives,
                               source=bi.hard_negative_source, epochs=epochs, skip_epochs=_completed_epochs(run_dir))
        with strategy.scope():
            _compile(model, config, phase.steps * epochs)
        return _fit(model, phase, run_dir, config, epochs, verbose), phase.steps
    warm_epochs = max(1, epochs // 2)
    rest = max(1, epochs - warm_epochs)
    warm_dir, warm_weights = run_dir / "warmup", run_dir / "warmup" / "final.weights.h5"
    warm = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=0, source="judged",
                          epochs=warm_epochs, skip_epochs=_completed_epochs(warm_dir))
    with strategy.scope():
        _compile(model, config, warm.steps * (warm_epochs + rest))
    if warm_weights.is_file() and (warm_dir / "backup").exists():
        model.load_weights(warm_weights)  # resuming: the warm-up of this run finished before the kill
        first = plain_history(_read_csv(warm_dir))
    else:
        first = _fit(model, warm, warm_dir, config, warm_epochs, verbose)
        save_weights_atomically(model, warm_weights)
    encoder = TwoTowerEncoder.from_towers(towers)
    phase = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=bi.hard_negatives,
                           source="model", encoder=encoder, epochs=rest, skip_epochs=_completed_epochs(run_dir))
    second = _fit(model, phase, run_dir, config, rest, verbose)
    return {k: list(first.get(k, [])) + list(second.get(k, [])) for k in {*first, *second}}, phase.steps


def _read_csv(directory: Path) -> dict:
    path = directory / HISTORY_CSV
    return read_history_csv(path) if path.exists() else {}


# Public names used by the CLI, the retrieval package and tests.
__all__ = ["train_bi_encoder", "load_bi_encoder", "is_bi_encoder_run", "evaluate_bi_encoder", "positive_threshold",
           "positive_examples", "add_hard_negatives", "pack_batches", "epoch_packings", "softmax_dataset",
           "regression_dataset", "pair_cosines", "qrels_of", "Examples"]
