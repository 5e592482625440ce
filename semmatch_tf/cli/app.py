"""``semmatch-tf``: the argument parser and :func:`main`, which maps failures to one line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from semmatch_tf import __version__
from semmatch_tf.cli.commands import (cmd_configs, cmd_batch, cmd_check_export, cmd_demo, cmd_embed, cmd_ensemble, cmd_evaluate,
                                      cmd_explain, cmd_export, cmd_index, cmd_predict, cmd_pretrain, cmd_search,
                                      cmd_serve, cmd_train, cmd_weights)
from semmatch_tf.cli.distill import cmd_teacher_label
from semmatch_tf.cli.errors import INPUT_ERRORS, _QuietTensorFlowImport, _disk_full, _one_line, _remove_if_empty



def add_compute_argument(parser) -> None:
    parser.add_argument("--compute", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: oneDNN's bf16 rewrite of the model graph; faster on CPUs with AVX-512 "
                             "BF16 or AMX, outputs within cosine 0.999 of float32 (default: float32)")


def add_progress_argument(parser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: when stderr is a terminal)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    had = list(logging.getLogger().handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if handler not in had:  # a library that sets its own logger to DEBUG (bm25s does) stays quiet
            handler.setLevel(level)
    with _tensorflow_log_level("0" if args.verbose else "3"):
        return _run(args)


def _run(args) -> int:
    output = getattr(args, "output", None)
    created = output is not None and not os.path.lexists(output)  # ours to tidy if we fail
    quiet = None if args.verbose else _QuietTensorFlowImport.install()
    try:
        return args.handler(args) or 0
    except INPUT_ERRORS as error:
        # Bad input (config, data file, run directory): one clear line, no traceback.
        print(f"semmatch-tf {args.command}: error: {_one_line(error)}", file=sys.stderr)
        _remove_if_empty(output if created else None)
        return 2
    except BrokenPipeError:
        # The reader went away (`semmatch-tf ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        full = _disk_full(error, output)
        if full is None:
            raise
        # A full or read-only disk: one line; whatever was written stays (atomic files, resumable runs).
        print(f"semmatch-tf {args.command}: error: {full}", file=sys.stderr)
        _remove_if_empty(output if created else None)
        return 1
    finally:
        if quiet is not None:
            quiet.uninstall()


@contextlib.contextmanager
def _tensorflow_log_level(level: str):
    """TensorFlow's C++ log threshold for one command, unless the user set ``TF_CPP_MIN_LOG_LEVEL``.

    By default 3: on a machine without a GPU TensorFlow 2.21 logs at ERROR level things that are
    not errors ("failed call to cuInit", "oneDNN supports DT_INT64 only on platforms with
    AVX-512"), so 2 is not quiet; a real failure still raises, with its message. ``--verbose``
    shows everything. The variable is put back afterwards (TensorFlow reads it once).
    """
    previous = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if previous is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = level
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semmatch-tf", description="semantic matching for e-commerce search: train, evaluate, export, index and search")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"semmatch-tf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a matcher from a YAML config")
    train.add_argument("--config", required=True, type=Path)
    train.add_argument("--output", required=True, type=Path, help="run directory (re-run to resume)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config value, e.g. --set training.epochs=2 (YAML value)")
    train.set_defaults(handler=cmd_train)

    pretrain = commands.add_parser("pretrain", help="masked-language-model pretraining of a BERT -> a local preset")
    pretrain.add_argument("--config", required=True, type=Path,
                          help="a bert config: data (its training split's texts), text, model.bert, training")
    pretrain.add_argument("--output", required=True, type=Path, help="new preset directory")
    pretrain.add_argument("--mask-rate", type=float, default=0.15)
    pretrain.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    pretrain.set_defaults(handler=cmd_pretrain)

    evaluate = commands.add_parser("evaluate", help="score a judged file (default: the run's own test split)")
    evaluate.add_argument("--model", required=True, type=Path, help="run directory")
    evaluate.add_argument("--dataset", help="loader format (e.g. home_depot, qbqtc, generic, demo); omit it to "
                                            "score the run's own held-out test split, re-made from its config")
    evaluate.add_argument("--path", type=Path, help="data file or directory")
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="loader option (YAML value), e.g. --option query=search_term")
    evaluate.add_argument("--output", type=Path, help="also write the JSON report here")
    evaluate.add_argument("--json", action="store_true", help="print the whole JSON report instead of the table")
    evaluate.add_argument("--baseline", action="store_true",
                          help="also compare with the strongest cheap baseline, fitted on the run's own training "
                               "split (its config.yaml), on the same pairs")
    add_compute_argument(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", help="score query<TAB>product lines from a file or stdin")
    predict.add_argument("--model", required=True, type=Path)
    predict.add_argument("--input", type=Path, help="TSV file (default: stdin)")
    predict.add_argument("--batch-size", type=int, default=256)
    predict.add_argument("--output", type=Path,
                         help="write a .jsonl, .csv or .parquet file (atomically) instead of JSON lines on stdout")
    add_progress_argument(predict)
    add_compute_argument(predict)
    predict.set_defaults(handler=cmd_predict)

    embed = commands.add_parser("embed", help="embed text lines (file or stdin) with a bi-encoder -> JSON lines")
    embed.add_argument("--model", required=True,
                       help="a bi-encoder run directory, or multilingual-e5-small / all-minilm-l6-v2")
    embed.add_argument("--side", choices=("query", "product"), default="query", help="which tower embeds them")
    embed.add_argument("--input", type=Path, help="one text per line (default: stdin)")
    embed.add_argument("--batch-size", type=int, default=256)
    add_progress_argument(embed)
    add_compute_argument(embed)
    embed.set_defaults(handler=cmd_embed)

    export = commands.add_parser("export", help="export a run as a SavedModel for TF Serving")
    export.add_argument("--model", required=True, type=Path)
    _export_target_arguments(export, default_name="semmatch")
    export.set_defaults(handler=cmd_export)

    ensemble = commands.add_parser("ensemble", help="combine cross-encoder runs and export them as one SavedModel")
    ensemble.add_argument("--model", required=True, type=Path, action="append",
                          help="a run directory (twice or more, or once with --baseline)")
    ensemble.add_argument("--method", choices=("average", "stacked"), default="average",
                          help="stacked: weights fitted on the runs' validation split")
    ensemble.add_argument("--baseline", action="store_true",
                          help="add the strongest cheap baseline (TF-IDF pair features + ridge / logistic "
                               "regression, fitted on the runs' training split) as a member, in the same graph")
    ensemble.add_argument("--boosted", action="store_true",
                          help="add gradient-boosted trees over that baseline's out-of-fold score and match "
                               "features (coverage, stems, numbers, BM25; graded labels) as a member, in the same graph")
    _export_target_arguments(ensemble, default_name="semmatch_ensemble")
    ensemble.set_defaults(handler=cmd_ensemble)

    check = commands.add_parser("check-export", help="reload an export without semmatch_tf and compare")
    check.add_argument("directory", type=Path, help="BASE_DIR/NAME/VERSION")
    check.add_argument("--model", type=Path, help="run directory to compare against")
    check.set_defaults(handler=cmd_check_export)

    index = commands.add_parser("index", help="embed a catalogue with a bi-encoder run (+ BM25) for search")
    index.add_argument("--model", type=Path, help="bi-encoder run directory (omit for a BM25-only index)")
    index.add_argument("--pretrained", help="or a pretrained encoder used zero-shot, e.g. multilingual-e5-small "
                       "(cross-lingual: a query in one language finds products in another)")
    index.add_argument("--catalogue", required=True, help="'demo' or a csv/tsv/jsonl/parquet with product_id, title")
    index.add_argument("--output", required=True, type=Path)
    index.add_argument("--batch-size", type=int, default=256)
    index.add_argument("--ann", action="store_true", help="also build an approximate (HNSW) index")
    index.add_argument("--query-understanding", action="store_true",
                       help="learn spelling correction, unit normalisation, attributes and senses from the catalogue")
    index.add_argument("--training-queries", type=Path,
                       help="text file, one past query per line: weights the spelling dictionary (needs "
                            "--query-understanding)")
    add_progress_argument(index)
    index.set_defaults(handler=cmd_index)

    search = commands.add_parser("search", help="search an index; optionally re-rank with a cross-encoder")
    search.add_argument("query")
    search.add_argument("--index", required=True, type=Path)
    search.add_argument("--rerank", type=Path, action="append",
                        help="cross-encoder run directory (repeat it: the runs' average re-ranks)")
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"])
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--candidates", type=int, default=100, help="first-stage depth before re-ranking")
    search.add_argument("--no-query-understanding", action="store_true",
                        help="search the query as typed (no correction, boosts or diversification)")
    search.add_argument("--stage-weight", type=float, default=0.0,
                        help="with --rerank: weight in [0, 1] of the first-stage score against the re-ranker's")
    add_compute_argument(search)
    search.set_defaults(handler=cmd_search)

    explain = commands.add_parser("explain", help="token attributions of a model's score for one (query, product) pair")
    explain.add_argument("query")
    explain.add_argument("product")
    explain.add_argument("--model", required=True,
                         help="a cross-encoder or bi-encoder run directory, or multilingual-e5-small / all-minilm-l6-v2")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("--steps", type=int, default=16, help="first number of integration steps (doubled until "
                         "the completeness gap is under --tolerance, up to 256)")
    explain.add_argument("--tolerance", type=float, default=0.02, help="relative completeness gap accepted")
    explain.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    explain.set_defaults(handler=cmd_explain)

    serve = commands.add_parser("serve", help="a local search page + JSON API (/search, /explain) over an index")
    serve.add_argument("--index", required=True, type=Path)
    serve.add_argument("--rerank", type=Path, action="append",
                        help="cross-encoder run directory (repeat it: the runs' average re-ranks)")
    serve.add_argument("--mode", choices=["dense", "bm25", "hybrid"], help="default: hybrid when the index has both")
    serve.add_argument("--stage-weight", type=float, default=0.0,
                       help="with --rerank: weight in [0, 1] of the first-stage score against the re-ranker's")
    serve.add_argument("--qrels", type=Path, help="judgements (query, product_id, grade; csv/tsv/jsonl); "
                       "the demo catalogue's index brings its own")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("-k", type=int, default=10)
    serve.add_argument("--candidates", type=int, default=100, help="first-stage depth before re-ranking")
    add_compute_argument(serve)
    serve.set_defaults(handler=cmd_serve)

    for name, text in (("score-batch", "score query/product records with a cross-encoder export on Apache Beam"),
                       ("embed-batch", "embed a catalogue with a bi-encoder export on Apache Beam (+ index shards)")):
        batch = commands.add_parser(name, help=text, epilog="Beam flags go after --, e.g. -- --runner=FlinkRunner "
                                    "--flink_master=HOST:8081 (default: DirectRunner, this machine)")
        batch.add_argument("--export", required=True, type=Path, help="SavedModel version directory BASE/NAME/VERSION")
        batch.add_argument("--input", required=True, help="file or glob: .jsonl, .parquet or .tfrecord")
        batch.add_argument("--output", help="output prefix (Beam writes PREFIX-00000-of-0000N.SUFFIX)")
        batch.add_argument("--input-format", choices=["jsonl", "parquet", "tfrecord"])
        batch.add_argument("--output-format", choices=["jsonl", "parquet", "tfrecord"], default="jsonl")
        batch.add_argument("--output-shards", type=int, default=0, help="output files (0: the runner decides)")
        batch.add_argument("--batch-size", type=int, default=256)
        if name == "embed-batch":
            batch.add_argument("--index-output", type=Path, help="also write a sharded index directory for search")
            batch.add_argument("--shards", type=int, default=8, help="index shards")
            batch.add_argument("--text-field", default="title")
        batch.add_argument("beam_args", nargs=argparse.REMAINDER, help="-- then Beam pipeline flags")
        batch.set_defaults(handler=cmd_batch)

    teacher = commands.add_parser("teacher-label", help="grade unjudged pairs with a teacher model, for a student "
                                  "run to train on (data.extra_train): knowledge distillation")
    teacher.add_argument("--config", required=True, type=Path, help="the student's config: its training split "
                         "calibrates the teacher and anchors mined pairs; its validation and test texts are kept out")
    teacher.add_argument("--teacher", required=True, help="multilingual-e5-small (zero-shot cosine), a checkpoint "
                         "directory, or a run directory (its predicted grades)")
    teacher.add_argument("--pairs", action="append", default=[], metavar="FORMAT:PATH",
                         help="unjudged pairs to grade (their labels are ignored), e.g. atec:data/atec.csv")
    teacher.add_argument("--mine", type=int, default=2, help="nearest texts (char n-gram TF-IDF) paired with each "
                         "training text (0: none)")
    teacher.add_argument("--mine-pool", choices=["all", "products"], default="all",
                         help="all: any near text (question pairs); products: each training query with near "
                         "product texts (query -> product tasks)")
    teacher.add_argument("--length", type=int, default=64, help="tokens per text for a pretrained teacher")
    teacher.add_argument("--output", required=True, type=Path, help="graded pairs, .jsonl")
    teacher.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    teacher.set_defaults(handler=cmd_teacher_label)

    configs = commands.add_parser("configs", help="list the example run configs shipped in the package, or copy one")
    configs.add_argument("name", nargs="?", help="a config to print (or --copy); omit to list them all")
    configs.add_argument("--copy", type=Path, metavar="DIR", help="write NAME.yaml into DIR to edit it")
    configs.set_defaults(handler=cmd_configs)

    weights = commands.add_parser("weights", help="build (or locate) offline pretrained weights as a checkpoint directory")
    weights.add_argument("name", choices=["multilingual-e5-small", "all-minilm-l6-v2"])
    weights.add_argument("--output", type=Path, help="directory to write (default: the cache, $SEMMATCH_CACHE_DIR/weights)")
    weights.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                         help="float32 is exact for the 4-bit weights; float16 halves the directory")
    weights.set_defaults(handler=cmd_weights)

    demo = commands.add_parser("demo", help="the main job: train on the embedded demo, evaluate, export")
    demo.add_argument("--output", type=Path, default=Path("runs/demo"))
    demo.add_argument("--config", type=Path, help="default: the packaged demo config")
    demo.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _export_target_arguments(parser: argparse.ArgumentParser, *, default_name: str) -> None:
    """Where a SavedModel goes: ``--output BASE --name NAME [--version N] [--force]``."""
    parser.add_argument("--output", required=True, type=Path, help="base directory TF Serving watches")
    parser.add_argument("--name", default=default_name)
    parser.add_argument("--version", type=int)
    parser.add_argument("--force", action="store_true", help="replace an existing version")
