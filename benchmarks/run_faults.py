"""Fault injection (issue 14, "Nothing lost, nothing silent"): adversarial cases against the CLI and
the library, each counted as passed, failed or skipped.

    python -m benchmarks.run_faults            # every case (~15 min on 2 cores), publishes records
    python -m benchmarks.run_faults --quick    # a representative subset (< 2 min)
    python -m benchmarks.run_faults --dry      # print the records instead of appending them
    python -m benchmarks.run_faults --only search --match nan   # development: a slice of the cases

A case passes when the toolkit behaves as a serious tool should:

* bad input: exit code 2 (CLI), exactly one stderr line naming the file / row / field / key, no
  traceback, nothing on stdout, no partial output files; a library call raises a one-line
  ``ValueError`` (``DataFormatError``, ``ConfigError``) naming the same;
* a kill -9: the re-run resumes and ends with results equal to those of an unkilled run of the
  same seed (``report.json``, ``history.json`` and the sha256 of every weight: equal, not close);
* exports: never a numeric version directory that is incomplete; the next export works;
* serving: finite outputs of the right shapes for any string, any batch size.

Categories: malformed_inputs, config_fuzz, kill_resume, export, serving_fuzz, search, download,
tiny_fs. Records (benchmark ``reliability``): ``cases``, ``passed``, ``failed``, ``skipped`` per
category and in total, and ``runs_differing_from_unkilled`` for the kill cases.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import http.server
import io
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import zipfile
from pathlib import Path
from typing import Callable, Iterable

# `python benchmarks/run_faults.py` re-runs itself as `python -m benchmarks.run_faults`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_faults", *sys.argv[1:]])

import semmatch_tf  # noqa: E402 (no TensorFlow at import)

from .common import REPO, publish, record  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PYTHON = sys.executable
CATEGORIES = ("malformed_inputs", "config_fuzz", "kill_resume", "export", "serving_fuzz", "search", "download",
              "tiny_fs")


# == plumbing =======================================================================================
@dataclasses.dataclass
class Outcome:
    status: str  # "pass", "fail" or "skip"
    reason: str = ""
    differs: bool = False  # a kill case whose resumed run is not the unkilled one


def passed(reason: str = "") -> Outcome:
    return Outcome("pass", reason)


def failed(reason: str) -> Outcome:
    return Outcome("fail", reason)


def skipped(reason: str) -> Outcome:
    return Outcome("skip", reason)


@dataclasses.dataclass
class Case:
    """One adversarial case: ``fn(context) -> Outcome``.

    ``needs``: fixtures it uses ("run", "bi_run", "export", "index", ...) and "tf" when it imports
    TensorFlow; ``quick``: part of ``--quick``; ``kill``: a kill/resume case compared with an
    unkilled run (``runs_differing_from_unkilled``).
    """

    category: str
    name: str
    fn: Callable[["Context"], Outcome]
    needs: frozenset = frozenset()
    quick: bool = False
    kill: bool = False

    @property
    def cheap(self) -> bool:
        """Needs no trained model, no TensorFlow and no subprocess (what tests/test_faults.py runs)."""
        return not self.needs


@dataclasses.dataclass
class Result:
    case: Case
    outcome: Outcome
    seconds: float


class FixtureError(RuntimeError):
    pass


class Context:
    """Scratch space and lazily built, shared fixtures (a trained run, an export, an index...)."""

    def __init__(self, root: Path, reuse: bool = False) -> None:
        self.root = root
        self.reuse = reuse  # development: keep trained fixtures of an earlier run in the same --keep folder
        self._fixtures: dict[str, object] = {}
        self._counter = 0
        self.selected: list[Case] = []

    def scratch(self, name: str) -> Path:
        self._counter += 1
        path = self.root / "cases" / f"{self._counter:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}"
        path.mkdir(parents=True)
        return path

    def fixture(self, name: str):
        if name not in self._fixtures:
            try:
                self._fixtures[name] = FIXTURES[name](self)
            except FixtureError as error:
                self._fixtures[name] = error
            except Exception as error:  # noqa: BLE001 - reported as the failure of every case using it
                self._fixtures[name] = FixtureError(f"fixture {name} failed: {type(error).__name__}: "
                                                    f"{short(str(error))}")
        value = self._fixtures[name]
        if isinstance(value, FixtureError):
            raise value
        return value


def short(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _CurrentStderr(logging.StreamHandler):
    """A logging handler that writes to whatever ``sys.stderr`` is now (so captured runs see logs)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self, logging.WARNING)  # as the CLI's own handler
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def install_logging() -> Callable[[], None]:
    """Route log records to the current ``sys.stderr`` (as the CLI's handler would); returns the undo."""
    # tf.function's "N out of the last N calls triggered retracing" counts calls across the many
    # commands run in this one process; a real command runs once
    tf_logger, root = logging.getLogger("tensorflow"), logging.getLogger()
    saved = (tf_logger.level, root.level)
    tf_logger.setLevel(logging.ERROR)
    if any(isinstance(h, _CurrentStderr) for h in root.handlers):
        return lambda: None
    handler = _CurrentStderr()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)

    def undo() -> None:
        root.removeHandler(handler)
        tf_logger.setLevel(saved[0])
        root.setLevel(saved[1])
    return undo


@dataclasses.dataclass
class CliResult:
    code: int | None
    out: str
    err: str
    seconds: float


def run_cli(*argv, stdin: str | None = None) -> CliResult:
    """``semmatch-tf ARGV`` in this process with stdout/stderr captured; an uncaught exception is
    printed as the real command would print it (a traceback) and exits 1."""
    from semmatch_tf.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    started = time.perf_counter()
    try:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:  # noqa: BLE001 - what a user would see
                traceback.print_exc()
                code = 1
    finally:
        sys.stdin = saved_stdin
    return CliResult(code, out.getvalue(), err.getvalue(), time.perf_counter() - started)


def child_env(**extra: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), **extra}
    return env


def run_process(argv: list[str], *, timeout: float = 300, stdin: str | None = None, env: dict | None = None,
                limit_memory: int | None = None) -> CliResult:
    """A fresh process (``argv`` after the interpreter); ``limit_memory`` caps its address space."""
    def limits() -> None:
        if limit_memory:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    started = time.perf_counter()
    try:
        done = subprocess.run([PYTHON, *argv], capture_output=True, text=True, timeout=timeout, input=stdin,
                              env=env or child_env(), cwd=REPO, preexec_fn=limits if limit_memory else None,
                              errors="replace")
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        code = None
        out = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        err = ((expired.stderr or b"").decode(errors="replace") if isinstance(expired.stderr, bytes)
               else (expired.stderr or "")) + f"\n[timed out after {timeout} s]"
    return CliResult(code, out, err, time.perf_counter() - started)


def cli_process(*argv, **options) -> CliResult:
    return run_process(["-m", "semmatch_tf.cli", *[str(a) for a in argv]], **options)


def leftovers(path: Path) -> str | None:
    """What a refused command left at ``path`` (which must not exist), or None."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_dir():
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
        return f"{path.name}/ with {files[:6]}" if files else f"empty directory {path.name}/"
    return f"file {path.name} ({path.stat().st_size} bytes)"


def refused(result: CliResult, command: str, *, names: Iterable = (), absent: Iterable[Path] = (),
            max_seconds: float | None = None, code: int = 2, allowed: str | None = None) -> Outcome:
    """Exit ``code``, exactly one stderr line ``semmatch-tf COMMAND: error: ...`` naming ``names``,
    no traceback, nothing on stdout, nothing at the ``absent`` paths, within ``max_seconds``.
    ``allowed``: a regular expression for earlier lines that report a real event (not counted)."""
    lines = [line for line in result.err.splitlines() if line.strip() and not (allowed and re.match(allowed, line))]
    if "Traceback" in result.err:
        return failed(f"traceback: {short(last_line(result.err))}")
    if result.code != code:
        return failed(f"exit {result.code}, expected {code}; stderr: {short(result.err) or '(none)'}")
    if len(lines) != 1:
        return failed(f"{len(lines)} stderr lines, expected 1: {short(' | '.join(lines))}")
    prefix = f"semmatch-tf {command}: error: "
    if not lines[0].startswith(prefix):
        return failed(f"stderr line does not start with {prefix!r}: {short(lines[0])}")
    for name in names:
        if str(name) not in lines[0]:
            return failed(f"message does not name {str(name)!r}: {short(lines[0])}")
    if result.out.strip():
        return failed(f"printed to stdout before refusing: {short(result.out)}")
    for path in absent:
        left = leftovers(path)
        if left:
            return failed(f"partial output left: {left}; message: {short(lines[0])}")
    if max_seconds is not None and result.seconds > max_seconds:
        return failed(f"refused only after {result.seconds:.1f} s (limit {max_seconds} s)")
    return passed(short(lines[0][len(prefix):], 160))


#: A progress bar line (tqdm) on stderr: what a long successful command shows, not an error.
PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+")


def succeeded(result: CliResult, command: str) -> Outcome | None:
    """None when the command exited 0 with no traceback and no stderr, else the failure."""
    if result.code != 0 or "Traceback" in result.err:
        return failed(f"{command} exited {result.code}: {short(last_line(result.err) or result.err)}")
    noise = [line for line in result.err.replace("\r", "\n").splitlines()
             if line.strip() and not PROGRESS.search(line)]
    if noise:
        return failed(f"{command} succeeded but wrote {len(noise)} stderr line(s): {short(noise[0])}")
    return None


def library_refusal(call: Callable[[], object], *, names: Iterable = (), kinds=(ValueError,)) -> Outcome:
    """``call()`` must raise one of ``kinds`` with a one-line message naming ``names``."""
    try:
        value = call()
    except kinds as error:
        message = str(error)
        if "\n" in message:
            return failed(f"{type(error).__name__} message spans {len(message.splitlines())} lines: {short(message)}")
        for name in names:
            if str(name) not in message:
                return failed(f"{type(error).__name__} does not name {str(name)!r}: {short(message)}")
        return passed(short(f"{type(error).__name__}: {message}", 160))
    except Exception as error:  # noqa: BLE001
        return failed(f"raised {type(error).__name__} (not {'/'.join(k.__name__ for k in kinds)}): {short(str(error))}")
    return failed(f"accepted: returned {short(repr(value), 120)}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): sha256_bytes(p.read_bytes()) for p in sorted(directory.rglob("*"))
            if p.is_file()}


# == tiny configs ===================================================================================
#: The kill/resume cross-encoder (and the fixture every model-using case shares): a BiLSTM on 400
#: demo pairs, 3 epochs, deterministic (~15 s on 2 cores).
TINY_CROSS = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 400},
    "text": {"vocab_size": 300, "min_frequency": 1, "query_length": 8, "product_length": 12},
    "model": {"family": "bilstm", "embedding_dim": 8, "lstm_units": 8, "hidden_units": 8, "dropout": 0.2},
    "training": {"epochs": 3, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.005, "schedule": "cosine",
                 "warmup_fraction": 0.1, "weight_decay": 0.0001, "early_stopping_patience": None,
                 "token_dropout": 0.1, "seed": 5, "deterministic": True},
}
TINY_BERT = {  # a tiny BERT from scratch over the run's own vocabulary: the keras-hub path, dropout on
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 300},
    "text": {"vocab_size": 300, "min_frequency": 1, "query_length": 8, "product_length": 12},
    "model": {"family": "bert", "bert": {"source": "scratch", "size": "tiny", "sequence_length": 24, "dropout": 0.1}},
    "training": {"epochs": 3, "batch_size": 32, "learning_rate": 0.001, "early_stopping_patience": None,
                 "seed": 5, "deterministic": True},
}
TINY_BI = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 1200},
    "text": {"vocab_size": 400, "min_frequency": 1, "query_length": 8, "product_length": 12},
    "model": {"family": "bilstm_bi_encoder", "embedding_dim": 8, "lstm_units": 8, "hidden_units": 8, "dropout": 0.1,
              "bi_encoder": {"embedding_size": 8}},
    "training": {"epochs": 3, "batch_size": 16, "learning_rate": 0.005, "early_stopping_patience": None,
                 "seed": 5, "deterministic": True},
}


def write_yaml(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def fingerprint(run_dir: Path) -> dict:
    """What must be identical between a killed-and-resumed run and an unkilled one."""
    import keras

    from semmatch_tf.models import register_keras_classes

    register_keras_classes()  # keras.saving.load_model must know the families' classes
    run_dir = Path(run_dir)
    models = [name for name in ("model.keras", "query_tower.keras", "product_tower.keras") if (run_dir / name).is_file()]
    weights = {}
    for name in models:
        model = keras.saving.load_model(run_dir / name, compile=False)
        weights[name] = sha256_bytes(b"".join(w.tobytes() for w in model.get_weights()))
    report = json.loads((run_dir / "report.json").read_text())
    report.get("training", {}).pop("seconds", None)  # wall time, not a result
    return {"weights": weights, "report": report, "history": json.loads((run_dir / "history.json").read_text()),
            "vocabulary": sha256_bytes((run_dir / "vocabulary.txt").read_bytes())}


def train_process(config_path: Path, run_dir: Path, timeout: float = 400) -> CliResult:
    return cli_process("train", "--config", config_path, "--output", run_dir, timeout=timeout)


def reference_run(context: Context, config: dict, name: str) -> dict:
    """An unkilled run of ``config`` in a fresh process: its directory, config file and fingerprint."""
    folder = context.root / "fixtures" / name
    folder.mkdir(parents=True, exist_ok=True)
    config_path = write_yaml(folder / "config.yaml", config)
    run_dir = folder / "run"
    if context.reuse and (run_dir / "report.json").is_file() and not (run_dir / "backup").exists():
        return {"run": run_dir, "config": config_path, "fingerprint": fingerprint(run_dir)}
    shutil.rmtree(run_dir, ignore_errors=True)
    result = train_process(config_path, run_dir)
    if result.code != 0:
        raise FixtureError(f"fixture {name}: training exited {result.code}: {short(last_line(result.err))}")
    return {"run": run_dir, "config": config_path, "fingerprint": fingerprint(run_dir)}


FIXTURES: dict[str, Callable[[Context], object]] = {
    "cross": lambda c: reference_run(c, TINY_CROSS, "cross"),
    "bi": lambda c: reference_run(c, TINY_BI, "bi"),
    "bert": lambda c: reference_run(c, TINY_BERT, "bert"),
    "run": lambda c: c.fixture("cross")["run"],
    "bi_run": lambda c: c.fixture("bi")["run"],
}


# == 1. malformed inputs ============================================================================
QUERIES = ("red running shoes", "red running shoes", "usb cable", "usb cable", "garden hose", "garden hose")
PRODUCTS = ("Nike Air Zoom running shoe red", "Leather office chair", "USB-C cable 2 m braided",
            "Garden hose reel", "Expandable garden hose 30 m", "Red running shoes for kids")
CLASSES3 = ("exact", "irrelevant", "exact", "partial", "exact", "partial")


@dataclasses.dataclass
class TextFormat:
    """A delimited or JSON-lines loader format: how to write a valid file and where its fields are."""

    format: str
    file_name: str
    kind: str  # "csv", "tsv" or "jsonl"
    columns: tuple[str, ...]
    rows: Callable[[], list[list]]
    query: str  # a text field
    label: str
    header: bool = True
    bad_label: object = "banana"
    out_of_range: object = "9"
    options: dict = dataclasses.field(default_factory=dict)
    classes: int = 3
    fallback_latin1: bool = False

    @property
    def sep(self) -> str:
        return "\t" if self.kind == "tsv" else ","

    def render(self, rows: list[list], *, columns: tuple[str, ...] | None = None, sep: str | None = None,
               newline: str = "\n") -> str:
        columns = columns or self.columns
        if self.kind == "jsonl":
            return "".join(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + newline for row in rows)
        sep = sep or self.sep
        lines = ([sep.join(columns)] if self.header else []) + [sep.join(str(v) for v in row) for row in rows]
        return newline.join(lines) + newline


def _rows(label_values) -> Callable[[], list[list]]:
    return lambda: [[q, p, label] for q, p, label in zip(QUERIES, PRODUCTS, label_values)]


TEXT_FORMATS = [
    TextFormat("home_depot", "train.csv", "csv", ("id", "product_uid", "product_title", "search_term", "relevance"),
               lambda: [[i + 1, 100001 + i, p, q, g] for i, (q, p, g) in
                        enumerate(zip(QUERIES, PRODUCTS, ("3", "1", "2.67", "2", "3", "1.33")))],
               query="search_term", label="relevance", fallback_latin1=True),
    TextFormat("qbqtc", "dev.json", "jsonl", ("id", "query", "title", "label"),
               lambda: [[i, q, p, g] for i, (q, p, g) in enumerate(zip(QUERIES, PRODUCTS, "201212"))],
               query="query", label="label", bad_label="banana", out_of_range="7"),
    TextFormat("lcqmc", "train.tsv", "tsv", ("sentence1", "sentence2", "label"), _rows("101010"),
               query="sentence1", label="label", header=False, out_of_range="2", classes=2),
    TextFormat("bq_corpus", "train.csv", "csv", ("sentence1", "sentence2", "label"), _rows("101010"),
               query="sentence1", label="label", out_of_range="2", classes=2),
    TextFormat("atec", "atec.tsv", "tsv", ("id", "sentence1", "sentence2", "label"),
               lambda: [[i + 1, q, p, g] for i, (q, p, g) in enumerate(zip(QUERIES, PRODUCTS, "101010"))],
               query="sentence1", label="label", header=False, out_of_range="2", classes=2),
    TextFormat("jsts", "valid.json", "jsonl", ("sentence_pair_id", "sentence1", "sentence2", "label"),
               lambda: [[str(i), q, p, g] for i, (q, p, g) in enumerate(zip(QUERIES, PRODUCTS, (4.2, 0.4, 3.0, 1.6,
                                                                                                5.0, 2.2)))],
               query="sentence1", label="label", bad_label="high", out_of_range=7.5, classes=6),
    TextFormat("stsb_multi_mt", "stsb-en-dev.csv", "csv", ("sentence1", "sentence2", "score"),
               _rows(("4.2", "0.4", "3.0", "1.6", "5.0", "2.2")), query="sentence1", label="score", header=False,
               out_of_range="6.5", classes=6),
    TextFormat("generic", "pairs.csv", "csv", ("query", "product", "label"), _rows(CLASSES3), query="query",
               label="label", out_of_range="superb",
               options={"names": ["irrelevant", "partial", "exact"], "language": "en"}),
    TextFormat("generic", "pairs.tsv", "tsv", ("query", "product", "label"), _rows(CLASSES3), query="query",
               label="label", out_of_range="superb",
               options={"names": ["irrelevant", "partial", "exact"], "language": "en"}),
    TextFormat("generic", "pairs.jsonl", "jsonl", ("query", "product", "label"), _rows(CLASSES3), query="query",
               label="label", out_of_range="superb",
               options={"names": ["irrelevant", "partial", "exact"], "language": "en"}),
]


@dataclasses.dataclass
class Bad:
    """One malformed (or, with ``ok``, a valid control) input file."""

    kind: str
    write: Callable[[Path], None]  # writes the input at the given path
    names: tuple = ()  # what the error must name besides the path
    ok: bool = False
    check: Callable[[object], str | None] | None = None  # for ok kinds: the loaded dataset -> problem


def _bytes(data: bytes | str, encoding: str = "utf-8") -> Callable[[Path], None]:
    raw = data.encode(encoding) if isinstance(data, str) else data
    return lambda path: path.write_bytes(raw)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("x\n")


def _missing(path: Path) -> None:
    pass


def _symlink_loop(path: Path) -> None:
    os.symlink(path.name, path)


def _dangling(path: Path) -> None:
    os.symlink(path.with_name("nowhere-" + path.name), path)


GARBAGE = random.Random(14).randbytes(4096) + b"\xff\xfe\x00garbage"
HIGH_GARBAGE = bytes(b | 0x80 for b in random.Random(15).randbytes(4096))
HUGE_LINE = "x" * 8_000_000


def common_file_kinds() -> list[Bad]:
    """Kinds of broken file that are the same for every format (and for predict / index inputs)."""
    return [
        Bad("empty", _bytes(b"")),
        Bad("blank_lines", _bytes("\n  \n\t\n")),
        Bad("binary_garbage", _bytes(GARBAGE)),
        Bad("high_bytes_garbage", _bytes(HIGH_GARBAGE)),
        Bad("directory", _directory),
        Bad("missing", _missing),
        Bad("symlink_loop", _symlink_loop),
        Bad("dangling_symlink", _dangling),
        Bad("huge_single_line", _bytes(HUGE_LINE)),
    ]


def text_kinds(spec: TextFormat) -> list[Bad]:
    rows = spec.rows()
    valid = spec.render(rows)
    label_at = spec.columns.index(spec.label)
    query_at = spec.columns.index(spec.query)

    def with_value(column: int, value) -> str:
        changed = [list(r) for r in rows]
        changed[1][column] = value
        return spec.render(changed)

    def count_is(n: int):
        return lambda dataset: None if len(dataset) == n else f"loaded {len(dataset)} pairs, expected {n}"

    field = f"field {spec.label!r}"
    kinds = [
        Bad("valid", _bytes(valid), ok=True, check=count_is(len(rows))),
        Bad("crlf_line_endings", _bytes(spec.render(rows, newline="\r\n")), ok=True, check=count_is(len(rows))),
        Bad("utf8_bom", _bytes("\ufeff" + valid), ok=True, check=count_is(len(rows))),
        *common_file_kinds(),
        Bad("bad_label", _bytes(with_value(label_at, spec.bad_label)), names=("row 2", field)),
        Bad("label_out_of_range", _bytes(with_value(label_at, spec.out_of_range)), names=("row 2", field)),
        Bad("label_nan", _bytes(with_value(label_at, "nan")), names=("row 2", field)),
        Bad("empty_text", _bytes(with_value(query_at, "")), names=("row 2", f"field {spec.query!r}")),
        Bad("whitespace_text", _bytes(with_value(query_at, "   ")), names=("row 2", f"field {spec.query!r}")),
        Bad("utf16_with_bom", _bytes(valid, "utf-16"), names=("UTF-16",)),
        Bad("utf16_without_bom", _bytes(valid, "utf-16-le"), names=("UTF-16",)),
        Bad("utf32", _bytes(valid, "utf-32"), names=("UTF-32",)),
        Bad("truncated", _bytes(valid.encode()[: len(valid.encode()) - 9])),
    ]
    latin1 = with_value(query_at, "café table")
    if spec.fallback_latin1:
        def decoded(dataset) -> str | None:
            if dataset.frame["query"].iloc[1] != "café table":
                return f"latin-1 text read as {dataset.frame['query'].iloc[1]!r}"
            return None if "latin-1" in json.dumps(dataset.source) else f"source does not record latin-1: {dataset.source}"

        kinds.append(Bad("latin1_fallback", _bytes(latin1, "latin-1"), ok=True, check=decoded))
    else:
        kinds.append(Bad("latin1", _bytes(latin1, "latin-1"), names=("utf-8", "row 3" if spec.header and
                                                                     spec.kind != "jsonl" else "row 2")))
    if spec.kind == "jsonl":
        def line_with(text: str) -> str:
            lines = valid.splitlines(keepends=True)
            lines[1] = text + "\n"
            return "".join(lines)

        record_2 = dict(zip(spec.columns, rows[1]))
        kinds += [
            Bad("not_json_lines", _bytes(",".join(spec.columns) + "\n" + "a,b,c\n"), names=("row 1",)),
            Bad("missing_column", _bytes(spec.render([r[:label_at] + r[label_at + 1:] for r in rows],
                                                     columns=spec.columns[:label_at] + spec.columns[label_at + 1:])),
                names=(field, "missing column")),
            Bad("key_missing_in_one_row", _bytes(line_with(json.dumps({k: v for k, v in record_2.items()
                                                                       if k != spec.label}))), names=("row 2", field)),
            Bad("number_as_text", _bytes(line_with(json.dumps({**record_2, spec.query: 123}))),
                names=("row 2", f"field {spec.query!r}")),
            Bad("list_as_text", _bytes(line_with(json.dumps({**record_2, spec.query: ["a", "b"]}))),
                names=("row 2", f"field {spec.query!r}")),
            Bad("null_text", _bytes(line_with(json.dumps({**record_2, spec.query: None}))),
                names=("row 2", f"field {spec.query!r}")),
            Bad("object_as_label", _bytes(line_with(json.dumps({**record_2, spec.label: {"a": 1}}))),
                names=("row 2", field)),
            Bad("bool_label", _bytes(line_with(json.dumps({**record_2, spec.label: True}))), names=("row 2", field)),
            Bad("line_not_an_object", _bytes(line_with("[1, 2, 3]")), names=("row 2",)),
            Bad("duplicate_key", _bytes(line_with(json.dumps(record_2)[:-1] + f', "{spec.query}": "other"}}')),
                names=("row 2", "duplicate")),
            Bad("deeply_nested", _bytes(line_with("[" * 100_000 + "]" * 100_000)), names=("row 2",)),
            Bad("truncated_mid_object", _bytes(valid[: valid.rindex('"')]), names=(f"row {len(rows)}",)),
        ]
    else:
        other_sep = ";" if spec.sep == "," else ","
        kinds += [
            Bad("wrong_delimiter", _bytes(spec.render(rows, sep=other_sep))),
            Bad("ragged_row", _bytes(with_value(label_at, f"{rows[1][label_at]}{spec.sep}extra"))),
        ]
        if spec.header:
            kinds += [
                Bad("header_only", _bytes(spec.sep.join(spec.columns) + "\n"), names=("no data rows",)),
                Bad("missing_column", _bytes(spec.render([r[:label_at] + r[label_at + 1:] for r in rows],
                                                         columns=spec.columns[:label_at] + spec.columns[label_at + 1:])),
                    names=(field, "missing column")),
                Bad("duplicate_column", _bytes(spec.render([r + [r[query_at]] for r in rows],
                                                           columns=spec.columns + (spec.query,))),
                    names=("duplicate", spec.query)),
            ]
        else:
            kinds += [
                Bad("header_row", _bytes(spec.sep.join(spec.columns) + "\n" + valid), names=("row 1", field)),
                Bad("missing_column", _bytes(spec.render([r[:-1] for r in rows])), names=("row 1",)),
            ]
        if spec.kind == "csv":
            kinds.append(Bad("unterminated_quote", _bytes(with_value(query_at, '"unterminated shoes'))))
    return kinds


def _parquet(path: Path, frame) -> None:
    frame.to_parquet(path, index=False)


def generic_parquet_kinds() -> list[Bad]:
    import pandas as pd

    base = pd.DataFrame({"query": list(QUERIES), "product": list(PRODUCTS), "label": list(CLASSES3)})

    def valid_bytes() -> bytes:
        buffer = io.BytesIO()
        base.to_parquet(buffer, index=False)
        return buffer.getvalue()

    def changed(column: str, value) -> Callable[[Path], None]:
        frame = base.copy().astype(object)
        frame.at[1, column] = value
        return lambda path: _parquet(path, frame)

    data = valid_bytes()
    return [
        Bad("valid", lambda path: path.write_bytes(data), ok=True,
            check=lambda d: None if len(d) == 6 else f"loaded {len(d)} pairs"),
        *[k for k in common_file_kinds() if k.kind not in ("blank_lines", "huge_single_line")],
        Bad("csv_text_as_parquet", _bytes("query,product,label\na,b,exact\n")),
        Bad("truncated", lambda path: path.write_bytes(data[: len(data) // 2])),
        Bad("missing_column", lambda path: _parquet(path, base.drop(columns=["label"])), names=("field 'label'",)),
        Bad("bad_label", changed("label", "banana"), names=("row 2", "field 'label'")),
        Bad("empty_text", changed("query", ""), names=("row 2", "field 'query'")),
        Bad("null_text", changed("query", None), names=("row 2", "field 'query'")),
        Bad("number_as_text", lambda path: _parquet(path, base.assign(query=list(range(6)))),
            names=("row 1", "field 'query'")),
    ]


WANDS_PRODUCTS = "product_id\tproduct_name\tproduct_class\n" + "".join(
    f"{i}\t{p}\tthing\n" for i, p in enumerate(PRODUCTS))
WANDS_QUERIES = "query_id\tquery\tquery_class\n0\tred running shoes\tshoes\n1\tusb cable\tcables\n2\tgarden hose\thoses\n"
WANDS_LABELS = ("id", "query_id", "product_id", "label")
WANDS_ROWS = [[i, i // 2, i, g] for i, g in enumerate(("Exact", "Irrelevant", "Exact", "Partial", "Exact", "Partial"))]


def wands_kinds() -> list[Bad]:
    """A WANDS directory whose label.csv (or one of its other files) is broken."""
    spec = TextFormat("wands", "label.csv", "tsv", WANDS_LABELS, lambda: [list(r) for r in WANDS_ROWS],
                      query="query_id", label="label")
    kinds = []
    for bad in text_kinds(spec):
        if bad.kind in ("empty_text", "whitespace_text", "latin1", "label_out_of_range", "label_nan"):
            continue  # query_id is an id, not text; the label is a class name
        kinds.append(bad)

    def folder(write_label: Callable[[Path], None], products: str | bytes | None = WANDS_PRODUCTS,
               queries: str | None = WANDS_QUERIES) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            path.mkdir()
            write_label(path / "label.csv")
            if products is not None:
                (path / "product.csv").write_bytes(products.encode() if isinstance(products, str) else products)
            if queries is not None:
                (path / "query.csv").write_text(queries, encoding="utf-8")
        return write

    wrapped = [dataclasses.replace(b, write=folder(b.write), names=b.names + ("label.csv",)) for b in kinds]
    valid = spec.render(spec.rows())
    unknown_query = [list(r) for r in WANDS_ROWS]
    unknown_query[1][1] = 99
    return wrapped + [
        Bad("wands_query_file_missing", folder(_bytes(valid), queries=None), names=("query.csv", "not found")),
        Bad("wands_product_file_empty", folder(_bytes(valid), products=""), names=("product.csv", "empty file")),
        Bad("wands_product_file_utf16", folder(_bytes(valid), products=WANDS_PRODUCTS.encode("utf-16")),
            names=("product.csv", "UTF-16")),
        Bad("wands_unknown_query_id", folder(_bytes(spec.render(unknown_query))), names=("label.csv", "row 2", "99")),
        Bad("wands_is_a_file", _bytes(valid), names=("is a file",)),
    ]


def esci_kinds() -> list[Bad]:
    import pandas as pd

    examples = pd.DataFrame({"example_id": range(6), "query": list(QUERIES), "query_id": [0, 0, 1, 1, 2, 2],
                             "product_id": [f"B{i}" for i in range(6)], "product_locale": ["us"] * 6,
                             "esci_label": list("EIESCS"), "small_version": [1] * 6, "split": ["train"] * 6})
    products = pd.DataFrame({"product_id": [f"B{i}" for i in range(6)], "product_locale": ["us"] * 6,
                             "product_title": list(PRODUCTS)})
    examples_name, products_name = ("shopping_queries_dataset_examples.parquet",
                                    "shopping_queries_dataset_products.parquet")

    def folder(examples_frame=examples, products_frame=products, examples_bytes: bytes | None = None) -> Callable:
        def write(path: Path) -> None:
            path.mkdir()
            if examples_bytes is not None:
                (path / examples_name).write_bytes(examples_bytes)
            elif examples_frame is not None:
                _parquet(path / examples_name, examples_frame)
            if products_frame is not None:
                _parquet(path / products_name, products_frame)
        return write

    def with_value(column: str, value):
        frame = examples.copy().astype(object)
        frame.at[1, column] = value
        return frame

    return [
        Bad("valid", folder(), ok=True, check=lambda d: None if len(d) == 6 else f"loaded {len(d)} pairs"),
        Bad("examples_empty_file", folder(examples_bytes=b""), names=(examples_name,)),
        Bad("examples_garbage", folder(examples_bytes=GARBAGE), names=(examples_name,)),
        Bad("examples_csv_text", folder(examples_bytes=b"query,product\na,b\n"), names=(examples_name,)),
        Bad("examples_missing", folder(examples_frame=None), names=(examples_name,)),
        Bad("products_missing", folder(products_frame=None), names=(products_name,)),
        Bad("missing_column", folder(examples.drop(columns=["esci_label"])), names=("field 'esci_label'",)),
        Bad("bad_label", folder(with_value("esci_label", "X")), names=("row 2", "field 'esci_label'")),
        Bad("empty_text", folder(with_value("query", "  ")), names=("row 2", "field 'query'")),
        Bad("null_text", folder(with_value("query", None)), names=("row 2", "field 'query'")),
        Bad("unknown_product", folder(with_value("product_id", "NOPE")), names=("row 2", "NOPE")),
        Bad("no_rows_after_filters", folder(examples.assign(split="test")), names=("no examples",)),
        Bad("esci_is_a_file", _bytes(b"x"), names=("is a file",)),
        Bad("esci_missing", _missing, names=("not found",)),
    ]


def loader_targets() -> list[tuple[str, str, dict, int, list[Bad]]]:
    """(format, file name, options, number of classes, kinds) for every loader format."""
    targets = [(s.format, s.file_name, s.options, s.classes, text_kinds(s)) for s in TEXT_FORMATS]
    options = {"names": ["irrelevant", "partial", "exact"], "language": "en"}
    targets.append(("generic", "pairs.parquet", options, 3, generic_parquet_kinds()))
    targets.append(("wands", "wands", {}, 3, wands_kinds()))
    targets.append(("esci", "esci", {}, 4, esci_kinds()))
    return targets


def _expected_names(path: Path, bad: Bad) -> tuple:
    return (str(path),) + tuple(bad.names)


def _library_case(fmt: str, file_name: str, options: dict, bad: Bad) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        from semmatch_tf.data import load_dataset

        path = context.scratch(f"lib-{fmt}-{bad.kind}") / file_name
        bad.write(path)
        if bad.ok:
            try:
                dataset = load_dataset(fmt, str(path), **options)
            except Exception as error:  # noqa: BLE001
                return failed(f"valid input refused: {type(error).__name__}: {short(str(error))}")
            problem = bad.check(dataset) if bad.check else None
            return failed(problem) if problem else passed(f"{len(dataset)} pairs")
        return library_refusal(lambda: load_dataset(fmt, str(path), **options), names=_expected_names(path, bad))
    return run


def _option_args(options: dict) -> list[str]:
    args = []
    for key, value in options.items():
        args += ["--option", f"{key}={json.dumps(value)}"]
    return args


def _evaluate_case(fmt: str, file_name: str, options: dict, classes: int, bad: Bad) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        model = context.fixture("run")
        folder = context.scratch(f"eval-{fmt}-{bad.kind}")
        path, report = folder / file_name, folder / "report.json"
        bad.write(path)
        result = run_cli("evaluate", "--model", model, "--dataset", fmt, "--path", path, *_option_args(options),
                         "--output", report)
        if not bad.ok:
            return refused(result, "evaluate", names=_expected_names(path, bad), absent=[report])
        if classes != 3:  # the fixture is a 3-class model: a clear refusal, not a crash or a silent report
            return refused(result, "evaluate", names=("3", str(classes), "class"), absent=[report])
        problem = succeeded(result, "evaluate")
        if problem:
            return problem
        pairs = json.loads(result.out)["counts"]["pairs"]
        saved = json.loads(report.read_text())["counts"]["pairs"]
        return passed(f"report of {pairs} pairs") if pairs == saved == 6 else failed(f"report counts {pairs}/{saved}")
    return run


def _train_data_case(fmt: str, file_name: str, options: dict, bad: Bad) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        folder = context.scratch(f"train-{fmt}-{bad.kind}")
        path, output = folder / file_name, folder / "run"
        bad.write(path)
        config = json.loads(json.dumps(TINY_CROSS))
        config["data"] = {"format": fmt, "path": str(path), "options": options, "split": [0.5, 0.25, 0.25]}
        config["training"]["epochs"] = 1
        result = run_cli("train", "--config", write_yaml(folder / "config.yaml", config), "--output", output)
        return refused(result, "train", names=_expected_names(path, bad), absent=[output], max_seconds=30)
    return run


#: predict --input: (kind, file content, names, ok)
def predict_kinds() -> list[Bad]:
    valid = "".join(f"{q}\t{p}\n" for q, p in zip(QUERIES, PRODUCTS))
    return [
        Bad("valid", _bytes(valid), ok=True),
        Bad("crlf_line_endings", _bytes(valid.replace("\n", "\r\n")), ok=True),
        *common_file_kinds(),
        Bad("wrong_delimiter", _bytes(valid.replace("\t", ",")), names=("line 1",)),
        Bad("three_fields", _bytes(valid.replace("\n", "\textra\n", 2).replace("\textra\n", "\n", 1)),
            names=("line 2",)),
        Bad("empty_query", _bytes(valid.replace("usb cable\t", "\t", 1)), names=("line 3", "query")),
        Bad("empty_product", _bytes(valid.replace("\tGarden hose reel", "\t ", 1)), names=("line 4", "product")),
        Bad("latin1", _bytes(valid.replace("usb", "café"), "latin-1"), names=("line 3",)),
        Bad("utf16_with_bom", _bytes(valid, "utf-16"), names=("UTF-16",)),
        Bad("utf16_without_bom", _bytes(valid, "utf-16-le"), names=("UTF-16",)),
        Bad("nul_bytes", _bytes(valid.replace("usb", "u\0sb")), names=("line 3",)),
    ]


def _predict_case(bad: Bad) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        model = context.fixture("run")
        path = context.scratch(f"predict-{bad.kind}") / "pairs.tsv"
        bad.write(path)
        result = run_cli("predict", "--model", model, "--input", path)
        if not bad.ok:
            return refused(result, "predict", names=_expected_names(path, bad))
        problem = succeeded(result, "predict")
        if problem:
            return problem
        records = [json.loads(line) for line in result.out.splitlines()]
        finite = all(isinstance(r["score"], float) and abs(r["score"]) < 1e9 for r in records)
        return passed(f"{len(records)} scored pairs") if len(records) == 6 and finite else \
            failed(f"{len(records)} records: {short(result.out)}")
    return run


def catalogue_kinds(suffix: str) -> list[Bad]:
    import pandas as pd

    ids, titles = [f"p{i}" for i in range(6)], list(PRODUCTS)
    sep = "\t" if suffix == ".tsv" else ","

    def delimited(rows, columns=("product_id", "title")) -> str:
        return "\n".join([sep.join(columns)] + [sep.join(map(str, r)) for r in rows]) + "\n"

    def jsonl(records) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    def render(rows, columns=("product_id", "title")) -> Callable[[Path], None]:
        if suffix == ".parquet":
            frame = pd.DataFrame([dict(zip(columns, r)) for r in rows])
            return lambda path: _parquet(path, frame)
        if suffix == ".jsonl":
            return _bytes(jsonl([dict(zip(columns, r)) for r in rows]))
        return _bytes(delimited(rows, columns))

    good = [list(r) for r in zip(ids, titles)]

    def changed(position: int, value) -> list[list]:
        rows = [list(r) for r in good]
        rows[1][position] = value
        return rows

    kinds = [
        Bad("valid", render(good), ok=True),
        *[k for k in common_file_kinds() if suffix != ".parquet" or k.kind not in ("blank_lines",)],
        Bad("missing_column", render([[i] for i in ids], columns=("product_id",)), names=("title",)),
        Bad("duplicate_ids", render(changed(0, "p0")), names=("p0", "duplicate")),
        Bad("empty_title", render(changed(1, "  ")), names=("row 2", "field 'title'")),
        Bad("empty_id", render(changed(0, "")), names=("row 2", "field 'product_id'")),
    ]
    if suffix != ".parquet":
        text = delimited(good) if suffix != ".jsonl" else jsonl([dict(zip(("product_id", "title"), r)) for r in good])
        kinds += [
            Bad("header_only" if suffix != ".jsonl" else "only_blank_objects",
                _bytes(sep.join(("product_id", "title")) + "\n" if suffix != ".jsonl" else "{}\n")),
            Bad("latin1", _bytes(text.replace("Leather", "Café"), "latin-1"), names=("utf-8",)),
            Bad("utf16_with_bom", _bytes(text, "utf-16"), names=("UTF-16",)),
        ]
    if suffix == ".jsonl":
        kinds += [
            Bad("truncated", _bytes(text[:-9]), names=("row 6",)),
            Bad("number_as_title", render(changed(1, 123)), names=("row 2", "field 'title'")),
            Bad("list_as_title", render(changed(1, ["a"])), names=("row 2", "field 'title'")),
            Bad("null_title", render(changed(1, None)), names=("row 2", "field 'title'")),
            Bad("line_not_an_object", _bytes(jsonl([{"product_id": "p0", "title": "a"}]) + "[1]\n"), names=("row 2",)),
        ]
    if suffix in (".csv", ".tsv"):
        kinds.append(Bad("wrong_delimiter", _bytes(text.replace(sep, ";")), names=("title",)))
    return kinds


def _index_case(suffix: str, bad: Bad) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        folder = context.scratch(f"index-{suffix[1:]}-{bad.kind}")
        path, output = folder / f"catalogue{suffix}", folder / "index"
        bad.write(path)
        result = run_cli("index", "--catalogue", path, "--output", output)
        if not bad.ok:
            return refused(result, "index", names=_expected_names(path, bad), absent=[output])
        problem = succeeded(result, "index")
        if problem:
            return problem
        count = json.loads(result.out)["count"]
        return passed(f"{count} products") if count == 6 else failed(f"indexed {count} products, expected 6")
    return run


def _evaluate_flag_cases() -> list[Case]:
    """evaluate's own arguments: unknown formats, options of the wrong type, a missing --path."""
    def case(name: str, argv: list[str], names: tuple) -> Case:
        def run(context: Context) -> Outcome:
            folder = context.scratch(f"evalflags-{name}")
            path = folder / "pairs.csv"
            path.write_text("query,product,label\n" + "".join(f"{q},{p},exact\n" for q, p in zip(QUERIES, PRODUCTS)))
            argv_ = [a.replace("PATH", str(path)) for a in argv]
            result = run_cli("evaluate", "--model", folder / "no-such-run", *argv_, "--output", folder / "r.json")
            return refused(result, "evaluate", names=names, absent=[folder / "r.json"], max_seconds=5)
        return Case("malformed_inputs", f"evaluate_flags/{name}", run)

    return [
        case("unknown_format", ["--dataset", "nosuchformat", "--path", "PATH"], ("nosuchformat",)),
        case("missing_path", ["--dataset", "generic"], ("--path",)),
        case("option_not_key_value", ["--dataset", "generic", "--path", "PATH", "--option", "names"], ("--option",)),
        case("option_wrong_type", ["--dataset", "generic", "--path", "PATH", "--option", "query=[a, b]"],
             ("query",)),
        case("option_number_for_names", ["--dataset", "generic", "--path", "PATH", "--option", "names=5"],
             ("names",)),
        case("option_yaml_tag", ["--dataset", "generic", "--path", "PATH", "--option",
                                 "query=!!python/object/apply:os.system ['true']"], ("query",)),
        case("negative_limit", ["--dataset", "generic", "--path", "PATH", "--limit", "-3"], ("--limit",)),
        case("zero_limit", ["--dataset", "generic", "--path", "PATH", "--limit", "0"], ("--limit",)),
    ]


def malformed_input_cases() -> list[Case]:
    cases = []
    quick_kinds = {"empty", "bad_label", "utf16_with_bom", "directory", "truncated_mid_object", "valid",
                   "duplicate_column", "missing"}
    for fmt, file_name, options, classes, kinds in loader_targets():
        label = f"{fmt}[{Path(file_name).suffix[1:] or file_name}]"
        for bad in kinds:
            quick = bad.kind in quick_kinds and fmt in ("home_depot", "qbqtc", "wands", "generic")
            cases.append(Case("malformed_inputs", f"load/{label}/{bad.kind}", _library_case(fmt, file_name, options, bad),
                              quick=quick))
            cases.append(Case("malformed_inputs", f"evaluate/{label}/{bad.kind}",
                              _evaluate_case(fmt, file_name, options, classes, bad),
                              needs=frozenset({"run", "tf"}), quick=quick and bad.kind == "bad_label"))
            if not bad.ok:
                cases.append(Case("malformed_inputs", f"train/{label}/{bad.kind}",
                                  _train_data_case(fmt, file_name, options, bad), needs=frozenset({"tf"}),
                                  quick=quick and bad.kind == "empty"))
    for bad in predict_kinds():
        cases.append(Case("malformed_inputs", f"predict/{bad.kind}", _predict_case(bad), needs=frozenset({"run", "tf"}),
                          quick=bad.kind in ("latin1", "valid")))
    for suffix in (".csv", ".tsv", ".jsonl", ".parquet"):
        for bad in catalogue_kinds(suffix):
            cases.append(Case("malformed_inputs", f"index/{suffix[1:]}/{bad.kind}", _index_case(suffix, bad),
                              needs=frozenset({"tf"}) if bad.ok else frozenset(),
                              quick=bad.kind in ("latin1", "empty_title") and suffix in (".csv", ".jsonl")))
    return cases + _evaluate_flag_cases()


# == 2. fuzzed configs ==============================================================================
#: The base every fuzzed config starts from: if a bad value were accepted, this trains in seconds.
FUZZ_BASE = {
    "data": {"format": "demo", "limit": 200, "split": [0.6, 0.2, 0.2]},
    "text": {"vocab_size": 200, "min_frequency": 1, "query_length": 6, "product_length": 8},
    "model": {"family": "bilstm", "embedding_dim": 4, "lstm_units": 4, "hidden_units": 4},
    "training": {"epochs": 1, "batch_size": 16, "early_stopping_patience": None},
}

#: YAML snippets of a wrong value per kind, by the field's type.
WRONG = {
    "int": {"string": '"abc"', "float": "1.5", "bool": "true", "list": "[1]", "mapping": "{a: 1}", "nan": ".nan",
            "inf": ".inf", "negative": "-1", "huge": "1" + "0" * 30},
    "float": {"string": '"abc"', "bool": "true", "list": "[0.1]", "mapping": "{a: 1}", "nan": ".nan", "inf": ".inf",
              "minus_inf": "-.inf", "beyond_double": "9" * 400, "negative": "-0.5"},
    "str": {"int": "123", "list": "[a]", "mapping": "{a: b}", "bool": "true", "timestamp": "2020-01-01",
            "binary_tag": "!!binary aGVsbG8="},
    "enum": {"empty": '""', "unknown": "bogus-choice", "case": "UPPER"},
    "bool": {"int": "1", "string": '"maybe"', "list": "[true]", "float": "0.5"},
    "dict": {"string": '"x"', "list": "[1]", "int": "5"},
    "section": {"int": "5", "string": '"x"', "list": "[1, 2]", "empty_list": "[]", "zero": "0", "false": "false",
                "empty_string": '""'},
}
#: Fields whose "huge" int is a legitimate (if odd) value: they get no "huge" case.
UNBOUNDED_INTS = {"data.limit", "training.epochs", "training.early_stopping_patience", "training.mined_negatives",
                  "training.mined_negative_depth", "model.bi_encoder.hard_negatives", "model.bert.freeze_layers"}
#: Float fields where a negative number is meaningful (a grade threshold may be any number).
SIGNED_FLOATS = {"model.bi_encoder.positive_grade"}
#: Out-of-range values of bounded fields.
OUT_OF_RANGE = {
    "model.dropout": ["1.0", "1.5"], "model.embedding_dropout": ["1.0"], "training.warmup_fraction": ["1.0"],
    "training.momentum": ["1.0"], "training.token_dropout": ["1.0"], "model.bi_encoder.temperature": ["0"],
    "training.learning_rate": ["0"], "training.clipnorm": ["0"], "model.bert.dropout": ["1.0"],
    "text.vocab_size": ["5"], "text.min_frequency": ["0"], "text.query_length": ["0", "4097"],
    "text.product_length": ["0", "100000"], "model.bert.sequence_length": ["3", "513"], "training.batch_size": ["0"],
    "training.epochs": ["0"], "training.steps_per_execution": ["0"], "training.gradient_accumulation_steps": ["1"],
    "model.embedding_dim": ["0", "100000"], "model.lstm_units": ["0", "100000"], "model.hidden_units": ["0"],
    "model.bi_encoder.embedding_size": ["0", "1000000"], "text.length_buckets": ["[0, 8]", "[8, 4]", "[-2]"],
    "data.split": ["[0.5, 0.5]", "[0.5, 0.6, 0.1]", "[-0.1, 0.6, 0.5]", "[0, 0.5, 0.5]", "[.nan, 0.5, 0.5]",
                   "[a, b, c]", "[]"],
    "data.seed": ["4294967296"], "training.seed": ["-1", "4294967296"], "data.limit": ["0"],
    "data.subsample": ["{train: -1}", "{bogus: 5}", "{train: 1.5}", "{train: .nan}"],
    "data.options": ["{bogus: 1}"], "training.class_weights": ["{0: -1}", "{a: 1}", '"heavy"'],
    "model.bert.lora_rank": ["0"], "model.bert.projection": ["0"], "model.bert.freeze_layers": ["-1"],
    "text.vocab_size_huge": [],
}


def config_fields() -> list[tuple[str, str, bool]]:
    """(dotted key, kind, optional) for every field of RunConfig, nested sections included."""
    import typing

    from semmatch_tf import RunConfig

    enums = {"data.format", "model.family", "model.head", "model.pooling", "model.bert.source", "model.bert.size",
             "model.bert.pooling", "model.bi_encoder.loss", "model.bi_encoder.hard_negative_source",
             "training.optimizer", "training.schedule", "training.monitor", "training.precision",
             "training.distribution"}
    fields = []

    def walk(cls, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            key, hint = f"{prefix}{field.name}", hints[field.name]
            if dataclasses.is_dataclass(hint):
                fields.append((key, "section", False))
                walk(hint, key + ".")
                continue
            options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"),
                                                                                                  "UnionType")) else (hint,)
            optional = type(None) in options
            origins = {typing.get_origin(o) or o for o in options} - {type(None)}
            if key in enums:
                kind = "enum"
            elif origins == {bool} or key == "training.jit_compile":
                kind = "bool"
            elif origins == {int}:
                kind = "int"
            elif origins == {float}:
                kind = "float"
            elif origins == {str}:
                kind = "str"
            elif dict in origins:
                kind = "dict"
            else:
                kind = "sequence"
            fields.append((key, kind, optional))

    for section in dataclasses.fields(RunConfig):
        fields.append((section.name, "section", False))
        walk(typing.get_type_hints(RunConfig)[section.name], section.name + ".")
    return fields


def config_text(key: str, snippet: str, base: dict | None = None) -> str:
    """The YAML of ``base`` (FUZZ_BASE) with ``key`` set to the raw YAML ``snippet``."""
    import yaml

    config = json.loads(json.dumps(base or FUZZ_BASE))
    node = config
    *parents, last = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = "__FUZZ__"
    return yaml.safe_dump(config, sort_keys=False).replace("__FUZZ__", snippet.replace("\n", " "))


def _config_case(text: str | bytes, names: tuple, *, set_args: tuple = (), isolate: bool = False,
                 max_seconds: float = 5.0, write: Callable[[Path], None] | None = None) -> Callable[[Context], Outcome]:
    """train --config (text, or ``write``) [--set ...] must be refused at once naming ``names``."""
    def run(context: Context) -> Outcome:
        folder = context.scratch("config")
        path, output = folder / "config.yaml", folder / "run"
        if write is not None:
            write(path)
        else:
            path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        argv = ["train", "--config", path, "--output", output] + [a for s in set_args for a in ("--set", s)]
        if isolate:  # where a wrong acceptance would allocate without bound or hang: a capped child process
            result = cli_process(*argv, timeout=60, limit_memory=3 * 2**30)
        else:
            result = run_cli(*argv)
        resolved = tuple(str(path) if n == "PATH" else n for n in names)
        return refused(result, "train", names=resolved, absent=[output], max_seconds=max_seconds + (10 if isolate else 0))
    return run


BILLION_LAUGHS = "\n".join(
    ["data:", "  format: demo", "  options:", '    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["  path: *a8"]) + "\n"


def config_fuzz_cases() -> list[Case]:
    cases: list[Case] = []
    quick_keys = {"training.learning_rate", "model.dropout", "data.split", "training.monitor", "text.length_buckets"}

    def add(name: str, fn, quick: bool = False, needs: frozenset = frozenset()) -> None:
        cases.append(Case("config_fuzz", name, fn, quick=quick, needs=needs))

    for key, kind, optional in config_fields():
        values = dict(WRONG.get(kind, {}))
        if kind == "enum":
            values.update({f"wrong_type_{k}": v for k, v in WRONG["str"].items() if k in ("int", "list")})
        if kind == "sequence":
            values = {"string": '"x"', "int": "5", "mapping": "{a: 1}"}
        if kind == "int" and key in UNBOUNDED_INTS:
            values.pop("huge")
        if kind == "float" and key in SIGNED_FLOATS:
            values.pop("negative")
        if kind == "float" and key == "training.clipnorm":
            values.pop("negative")
            values["negative"] = "-1"
        if kind == "str":  # free text (paths, prefixes): only wrong types are wrong
            pass
        for label, snippet in values.items():
            add(f"file/{key}/{label}", _config_case(config_text(key, snippet), ("PATH", key)),
                quick=key in quick_keys and label in ("nan", "string", "unknown"))
        for index, snippet in enumerate(OUT_OF_RANGE.get(key, [])):
            add(f"file/{key}/out_of_range_{index}", _config_case(config_text(key, snippet), ("PATH", key)),
                quick=key in quick_keys)
        if not optional and kind != "section":
            add(f"file/{key}/null", _config_case(config_text(key, "null"), ("PATH", key)))
        # the same field through --set: a wrong-typed value
        wrong = "abc" if kind in ("int", "float", "bool", "sequence", "dict", "section") else "[1, 2]"
        if kind == "dict":
            wrong = "5"
        add(f"set/{key}/wrong_type", _config_case(config_text("data.limit", "200"), (key,),
                                                  set_args=(f"{key}={wrong}",)), quick=key == "training.epochs")
        # an unknown key inside every section
        if kind == "section":
            add(f"file/{key}/unknown_key", _config_case(config_text(f"{key}.bogus_key", "1"), ("PATH", f"{key}.bogus_key")))
            add(f"set/{key}/unknown_key", _config_case(config_text("data.limit", "200"), (f"{key}.bogus_key",),
                                                       set_args=(f"{key}.bogus_key=1",)))

    # huge sizes that validate and then allocate without bound: run in a memory-capped child
    for key in ("model.embedding_dim", "model.lstm_units", "model.hidden_units", "model.bi_encoder.embedding_size",
                "text.vocab_size"):
        add(f"file/{key}/allocation_bomb", _config_case(config_text(key, "2000000000"), ("PATH", key), isolate=True),
            needs=frozenset({"subprocess"}))

    whole = {
        "top_level_int": ("42\n", ("PATH", "mapping")),
        "top_level_list": ("- data\n- text\n", ("PATH", "mapping")),
        "top_level_string": ("just words\n", ("PATH", "mapping")),
        "unknown_section": (config_text("bogus", "{a: 1}"), ("PATH", "bogus")),
        "typo_in_key": (config_text("training.epoch", "1"), ("PATH", "training.epoch")),
        "python_object_tag": ("training: !!python/object/apply:os.system ['echo pwned']\n", ("PATH",)),
        "python_name_tag": ("training: {epochs: !!python/name:os.system ''}\n", ("PATH",)),
        "set_tag": (config_text("data.options", "!!set {a, b}"), ("PATH", "data.options")),
        "malformed_flow": ("training: {epochs: [\n", ("PATH", "line")),
        "tab_indentation": ("training:\n\tepochs: 1\n", ("PATH", "line")),
        "duplicate_section": ("training: {epochs: 1}\ntraining: {epochs: 50}\n", ("PATH", "training", "duplicate")),
        "duplicate_key": ("training: {epochs: 1, epochs: 50}\n", ("PATH", "epochs", "duplicate")),
        "deeply_nested": ("training: " + "[" * 20000 + "]" * 20000 + "\n", ("PATH",)),
        "nul_byte": ("training: {epochs: 1}\n\0\n", ("PATH",)),
        "latin1_bytes": ("data: {format: demo}\n# caf\xe9\n".encode("latin-1"), ("PATH", "UTF-8")),
        "utf16_with_bom": (config_text("data.limit", "200").encode("utf-16"), ("PATH",)),
        "utf16_without_bom": (config_text("data.limit", "200").encode("utf-16-le"), ("PATH",)),
        "binary_garbage": (GARBAGE, ("PATH",)),
        "weight_decay_with_adam": (config_text("training.weight_decay", "0.01"), ("PATH", "training.weight_decay")),
        "class_weights_on_regression": (config_text("model.head", "regression").replace(
            "training:\n", "training:\n  class_weights: balanced\n"), ("PATH", "training.class_weights")),
        "token_dropout_on_bi_encoder": (config_text("model.family", "bilstm_bi_encoder").replace(
            "training:\n", "training:\n  token_dropout: 0.1\n"), ("PATH", "training.token_dropout")),
        "monitor_not_logged": (config_text("training.monitor", "val_rmse"), ("PATH", "training.monitor")),
        "lora_with_frozen_layers": (config_text("model.bert", "{lora_rank: 4, freeze_layers: 2}"),
                                    ("PATH", "model.bert.lora_rank")),
        "path_required": (config_text("data.format", "generic"), ("PATH", "data.path")),
        "bert_length_over_512": (config_text("model.family", "bert").replace("query_length: 6", "query_length: 1000"),
                                 ("PATH", "text.query_length")),
        "data_file_missing": (config_text("data", "{format: generic, path: /nonexistent/pairs.csv}"),
                              ("/nonexistent/pairs.csv",)),
        "option_wrong_type": (config_text("data", "{format: generic, path: x.csv, options: {query: [a, b]}}"),
                              ("PATH", "data.options.query")),
        "option_number_for_names": (config_text("data", "{format: generic, path: x.csv, options: {names: 5}}"),
                                    ("PATH", "data.options.names")),
    }
    for name, (text, names) in whole.items():
        add(f"whole/{name}", _config_case(text, names),
            quick=name in ("python_object_tag", "latin1_bytes", "duplicate_key", "deeply_nested"))
    add("whole/billion_laughs", _config_case(BILLION_LAUGHS, ("PATH", "data.path"), isolate=True),
        needs=frozenset({"subprocess"}))
    # valid configs that the data cannot satisfy: refused once the data is read, before training
    add("whole/batch_larger_than_training_split", _config_case(config_text("training.batch_size", "500"),
                                                               ("training.batch_size",)), needs=frozenset({"tf"}))
    add("whole/bi_encoder_batch_larger_than_its_positives", _config_case(
        config_text("model.family", "bilstm_bi_encoder").replace("batch_size: 16", "batch_size: 64"),
        ("training.batch_size",)), needs=frozenset({"tf"}))
    add("whole/directory", _config_case("", ("PATH", "directory"), write=lambda p: p.mkdir()))
    add("whole/missing_file", _config_case("", ("PATH", "not found"), write=lambda p: None))
    add("whole/symlink_loop", _config_case("", ("PATH",), write=_symlink_loop))
    add("whole/dangling_symlink", _config_case("", ("PATH", "not found"), write=_dangling))

    sets = {
        "no_equals": ("training.epochs", "--set"), "empty_key": ("=1", "--set"), "empty_value_null": ("training.epochs=",
                                                                                                      "training.epochs"),
        "double_dot": ("training..epochs=1", "training..epochs"), "leading_dot": (".epochs=1", ".epochs"),
        "trailing_dot": ("training.=1", "training."), "unclosed_list": ("training.epochs=[1", "training.epochs"),
        "python_tag": ("training.epochs=!!python/object/apply:os.system ['true']", "training.epochs"),
        "into_a_number": ("training.epochs.x=2", "training.epochs"), "unknown_section": ("bogus.key=1", "bogus"),
        "section_to_int": ("training=5", "training"), "nested_section_to_list": ("model.bi_encoder=[1]",
                                                                                 "model.bi_encoder"),
        "nan": ("training.learning_rate=.nan", "training.learning_rate"),
        "inf_tag": ("training.epochs=!!float 1e400", "training.epochs"),
        "split_two_values": ("data.split=[0.5,0.5]", "data.split"),
        "unknown_option": ("data.options.querry=q", "data.options"),
    }
    for name, (assignment, key) in sets.items():
        add(f"set/{name}", _config_case(config_text("data.limit", "200"), (key,), set_args=(assignment,)),
            quick=name in ("python_tag", "into_a_number"))
    return cases


# == 3. kill -9 and resume ==========================================================================
def _metadata_epoch(run_dir: Path) -> int:
    best = 0
    for path in Path(run_dir).rglob("training_metadata.json"):
        try:
            best = max(best, int(json.loads(path.read_text())["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return best


def epoch_committed(n: int) -> Callable[[Path, float], bool]:
    return lambda run_dir, elapsed: _metadata_epoch(run_dir) >= n


def file_appears(relative: str) -> Callable[[Path, float], bool]:
    return lambda run_dir, elapsed: any(Path(run_dir).glob(relative))


def seconds_after_start(seconds: float) -> Callable[[Path, float], bool]:
    return lambda run_dir, elapsed: elapsed >= seconds


def kill_when(argv: list[str], watched: Path, trigger: Callable[[Path, float], bool], *, delay: float = 0.0,
              timeout: float = 400) -> tuple[str, int | None, str]:
    """Run ``python ARGV``; SIGKILL its process group ``delay`` s after ``trigger(watched, elapsed)``.
    Returns ("killed" | "finished" | "timeout", exit status, stderr)."""
    stderr = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([PYTHON, *map(str, argv)], stdout=subprocess.DEVNULL, stderr=stderr, env=child_env(),
                               cwd=REPO, start_new_session=True)
    started = time.perf_counter()
    state = "timeout"
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                state = "finished"
                break
            if trigger(watched, time.perf_counter() - started):
                if delay:
                    time.sleep(delay)
                if process.poll() is not None:
                    state = "finished"
                    break
                os.killpg(process.pid, signal.SIGKILL)
                state = "killed"
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        stderr.seek(0)
        text = stderr.read()
        stderr.close()
    return state, process.returncode, text


def compare_with_unkilled(reference: dict, run_dir: Path) -> Outcome:
    mine = fingerprint(run_dir)
    differing = [key for key in ("weights", "report", "history", "vocabulary") if mine[key] != reference[key]]
    left = [name for name in ("backup", "run.lock", "warmup/backup") if (run_dir / name).exists()]
    if differing:
        return Outcome("fail", f"resumed run differs from the unkilled run in {differing}", differs=True)
    if left:
        return failed(f"resumed run is equal but left {left} behind")
    return passed("resumed; weights sha256, report, history and vocabulary equal to the unkilled run")


def _kill_case(fixture: str, points: list[tuple[str, Callable, float]]) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        reference = context.fixture(fixture)
        run_dir = context.scratch(f"kill-{fixture}") / "run"
        argv = ["-m", "semmatch_tf.cli", "train", "--config", reference["config"], "--output", run_dir]
        for name, trigger, delay in points:
            state, code, err = kill_when(argv, run_dir, trigger, delay=delay)
            if state == "finished":
                if code != 0:
                    return failed(f"run before the kill point {name} exited {code}: {short(last_line(err))}")
                return skipped(f"the run finished before the kill point {name}")
            if state == "timeout":
                return failed(f"kill point {name} never reached")
        final = train_process(reference["config"], run_dir)
        if final.code != 0:
            return failed(f"resume exited {final.code}: {short(last_line(final.err))}")
        return compare_with_unkilled(reference["fingerprint"], run_dir)
    return run


def _concurrent_train_case(context: Context) -> Outcome:
    """A second train on a run directory in use is refused with one line; the first ends as unkilled."""
    reference = context.fixture("cross")
    run_dir = context.scratch("concurrent-train") / "run"
    first = subprocess.Popen([PYTHON, "-m", "semmatch_tf.cli", "train", "--config", str(reference["config"]),
                              "--output", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=child_env(), cwd=REPO, text=True)
    try:
        deadline = time.perf_counter() + 120
        while not (run_dir / "run.lock").exists() and first.poll() is None and time.perf_counter() < deadline:
            time.sleep(0.02)
        if not (run_dir / "run.lock").exists():
            return failed("the first train never took run.lock")
        lock_before = (run_dir / "run.lock").read_bytes()
        second = train_process(reference["config"], run_dir)
        outcome = refused(second, "train", names=("run.lock" if "run.lock" in second.err else str(first.pid),))
        if outcome.status != "pass":
            return failed(f"second train: {outcome.reason}")
        if (run_dir / "run.lock").exists() and (run_dir / "run.lock").read_bytes() != lock_before:
            return failed("the refused second train changed run.lock")
        _, err = first.communicate(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    if first.returncode != 0:
        return failed(f"the first train exited {first.returncode}: {short(last_line(err))}")
    compared = compare_with_unkilled(reference["fingerprint"], run_dir)
    return passed(f"second refused ({outcome.reason}); first equal to unkilled") if compared.status == "pass" else compared


def _resume_other_config_case(context: Context) -> Outcome:
    """A killed run resumed with another config is refused (nothing mixed), then resumes with its own."""
    reference = context.fixture("cross")
    folder = context.scratch("resume-other-config")
    run_dir = folder / "run"
    argv = ["-m", "semmatch_tf.cli", "train", "--config", reference["config"], "--output", run_dir]
    state, code, err = kill_when(argv, run_dir, epoch_committed(1))
    if state != "killed":
        return skipped(f"not killed ({state}, exit {code})")
    other = json.loads(json.dumps(TINY_CROSS))
    other["training"]["learning_rate"] = 0.001
    result = train_process(write_yaml(folder / "other.yaml", other), run_dir)
    # the dead run's lock is taken over (and says so) before the config is compared under it
    outcome = refused(result, "train", names=(str(run_dir), "different config"),
                      allowed=r"WARNING semmatch_tf\.training\.run_lock: took over the stale lock")
    if outcome.status != "pass":
        return failed(f"resume with another config: {outcome.reason}")
    final = train_process(reference["config"], run_dir)
    if final.code != 0:
        return failed(f"resume with its own config exited {final.code}: {short(last_line(final.err))}")
    return compare_with_unkilled(reference["fingerprint"], run_dir)


def kill_resume_cases() -> list[Case]:
    cross = [
        ("startup_2s", [("2 s after start", seconds_after_start(2.0), 0.0)]),
        ("vocabulary_written", [("vocabulary.txt written", file_appears("vocabulary.txt"), 0.0)]),
        ("after_epoch_1", [("epoch 1 committed", epoch_committed(1), 0.0)]),
        ("mid_epoch_2", [("during epoch 2", epoch_committed(1), 0.4)]),
        ("after_epoch_2", [("epoch 2 committed", epoch_committed(2), 0.0)]),
        ("after_fit_before_model", [("fit_end marker", file_appears("backup/fit_end.weights.h5"), 0.0)]),
        ("final_writes_model", [("model.keras written", file_appears("model.keras"), 0.0)]),
        ("final_writes_report", [("report.json written", file_appears("report.json"), 0.0)]),
        ("twice_epoch_1_then_final_writes", [("epoch 1 committed", epoch_committed(1), 0.0),
                                             ("model.keras written", file_appears("model.keras"), 0.0)]),
    ]
    bi = [
        ("after_epoch_1", [("epoch 1 committed", epoch_committed(1), 0.0)]),
        ("final_writes_towers", [("query_tower.keras written", file_appears("query_tower.keras"), 0.0)]),
        ("final_writes_report", [("report.json written", file_appears("report.json"), 0.0)]),
    ]
    cases = [Case("kill_resume", f"bilstm/{name}", _kill_case("cross", points), needs=frozenset({"subprocess", "tf"}),
                  quick=name == "after_epoch_1", kill=True) for name, points in cross]
    cases += [Case("kill_resume", f"bi_encoder/{name}", _kill_case("bi", points), needs=frozenset({"subprocess", "tf"}),
                   kill=True) for name, points in bi]
    bert = [
        ("after_epoch_1", [("epoch 1 committed", epoch_committed(1), 0.0)]),
        ("mid_epoch_2", [("during epoch 2", epoch_committed(1), 0.4)]),
        ("final_writes_model", [("model.keras written", file_appears("model.keras"), 0.0)]),
    ]
    cases += [Case("kill_resume", f"bert/{name}", _kill_case("bert", points), needs=frozenset({"subprocess", "tf"}),
                   kill=True) for name, points in bert]
    cases.append(Case("kill_resume", "bilstm/two_trains_one_output", _concurrent_train_case,
                      needs=frozenset({"subprocess", "tf"}), kill=True))
    cases.append(Case("kill_resume", "bilstm/resume_with_another_config", _resume_other_config_case,
                      needs=frozenset({"subprocess", "tf"}), kill=True))
    return cases


# == 4. export ======================================================================================
def incomplete_versions(model_dir: Path) -> list[str]:
    """Numeric version directories that TF Serving would load but that are not whole exports."""
    problems = []
    if not model_dir.is_dir():
        return problems
    for version in sorted(p for p in model_dir.iterdir() if p.name.isdigit()):
        missing = [name for name in ("saved_model.pb", "fingerprint.pb", "variables/variables.index",
                                     "assets.extra/semmatch_metadata.json", "assets.extra/tf_serving_warmup_requests")
                   if not (version / name).is_file()]
        if not list((version / "variables").glob("variables.data-*")):
            missing.append("variables/variables.data-*")
        if missing:
            problems.append(f"{version.name}/ lacks {missing}")
            continue
        try:
            metadata = json.loads((version / "assets.extra" / "semmatch_metadata.json").read_text())
        except ValueError as error:
            problems.append(f"{version.name}/ has unreadable metadata: {error}")
            continue
        if metadata.get("version") != int(version.name):
            problems.append(f"{version.name}/ metadata says version {metadata.get('version')}")
    return problems


def hidden_entries(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) if model_dir.is_dir() else []


def _export_fixture(context: Context) -> Path:
    base = context.root / "fixtures" / "serving"
    shutil.rmtree(base / "fuzz", ignore_errors=True)
    result = run_cli("export", "--model", context.fixture("run"), "--output", base, "--name", "fuzz")
    problem = succeeded(result, "export")
    if problem:
        raise FixtureError(f"fixture export: {problem.reason}")
    return base / "fuzz" / "1"


def _bi_export_fixture(context: Context) -> Path:
    from semmatch_tf.data import load_demo_catalogue
    from semmatch_tf.export import export_bi_encoder
    from semmatch_tf.training import load_bi_encoder

    catalogue = load_demo_catalogue().head(300)
    shutil.rmtree(context.root / "fixtures" / "serving" / "fuzz_bi", ignore_errors=True)
    return export_bi_encoder(load_bi_encoder(context.fixture("bi_run")), context.root / "fixtures" / "serving",
                             name="fuzz_bi", catalogue=(catalogue["product_id"].tolist(), catalogue["title"].tolist()),
                             top_k=5)


FIXTURES["export"] = _export_fixture
FIXTURES["bi_export"] = _bi_export_fixture


def tmp_dir_appears(relative: str = "") -> Callable[[Path, float], bool]:
    def check(model_dir: Path, elapsed: float) -> bool:
        if not model_dir.is_dir():
            return False
        return any((p / relative).exists() if relative else True for p in model_dir.iterdir()
                   if p.name.startswith(".tmp-"))
    return check


def _export_kill_case(trigger: Callable[[Path, float], bool], delay: float) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        run_dir = context.fixture("run")
        base = context.scratch("export-kill") / "serving"
        model_dir = base / "m"
        argv = ["-m", "semmatch_tf.cli", "export", "--model", run_dir, "--output", base, "--name", "m"]
        state, code, err = kill_when(argv, model_dir, trigger, delay=delay, timeout=300)
        broken = incomplete_versions(model_dir)
        if broken:
            return failed(f"after the kill: incomplete numeric version(s) {broken}")
        if state == "timeout":
            return failed("kill point never reached")
        if state == "finished" and code != 0:
            return failed(f"export exited {code}: {short(last_line(err))}")
        before = set(p.name for p in model_dir.iterdir() if p.name.isdigit()) if model_dir.is_dir() else set()
        again = run_cli("export", "--model", run_dir, "--output", base, "--name", "m")
        problem = succeeded(again, "export (after the kill)")
        if problem:
            return problem
        versions = sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())
        broken = incomplete_versions(model_dir)
        if broken:
            return failed(f"the export after the kill left incomplete version(s) {broken}")
        if hidden_entries(model_dir):
            return failed(f"the dead export's temporaries were not cleaned: {hidden_entries(model_dir)}")
        expected = len(before) + 1
        if versions != list(range(1, expected + 1)):
            return failed(f"versions {versions} after the kill and one more export")
        if state == "finished":
            return skipped(f"export finished before the kill point; next export gave version {versions[-1]}")
        return passed(f"killed ({len(before)} version(s) left, all complete); the next export wrote {versions[-1]}")
    return run


def _concurrent_exports_case(explicit_version: bool) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        run_dir = context.fixture("run")
        base = context.scratch("export-concurrent") / "serving"
        argv = [PYTHON, "-m", "semmatch_tf.cli", "export", "--model", str(run_dir), "--output", str(base), "--name", "m"]
        if explicit_version:
            argv += ["--version", "1"]
        processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                                      cwd=REPO) for _ in range(2)]
        outputs = [p.communicate(timeout=400) for p in processes]
        codes = [p.returncode for p in processes]
        broken = incomplete_versions(base / "m")
        if broken:
            return failed(f"incomplete version(s) {broken}")
        versions = sorted(int(p.name) for p in (base / "m").iterdir() if p.name.isdigit())
        if hidden_entries(base / "m"):
            return failed(f"temporaries left: {hidden_entries(base / 'm')}")
        if not explicit_version:
            if codes != [0, 0] or versions != [1, 2]:
                return failed(f"exit codes {codes}, versions {versions}: {short(' | '.join(o[1] for o in outputs))}")
            return passed("two concurrent exports wrote versions 1 and 2, both complete")
        loser = [i for i, c in enumerate(codes) if c != 0]
        if sorted(codes) != [0, 2] or versions != [1]:
            return failed(f"exit codes {codes}, versions {versions}")
        result = CliResult(codes[loser[0]], outputs[loser[0]][0], outputs[loser[0]][1], 0.0)
        outcome = refused(result, "export", names=(str(base / "m" / "1"),))
        return passed(f"one wrote version 1, the other refused: {outcome.reason}") if outcome.status == "pass" else \
            failed(f"the losing export: {outcome.reason}")
    return run


def _export_refusal_case(name: str, extra: list[str], names: tuple, *, prepare=None, base_exists: bool = False) -> Case:
    """export with a bad argument or a broken run directory: one line, nothing written."""
    def run(context: Context) -> Outcome:
        folder = context.scratch(f"export-{name}")
        run_dir = context.fixture("run")
        if prepare is not None:
            run_dir = prepare(context, folder, run_dir)
        base = folder / "serving"
        argv = ["--model", run_dir, "--output", base, *extra]
        argv = [str(a).replace("BASE", str(base)).replace("FOLDER", str(folder)) for a in argv]
        resolved = tuple(n.replace("FOLDER", str(folder)) if isinstance(n, str) else n for n in names)
        return refused(run_cli("export", *argv), "export", names=resolved, absent=[] if base_exists else [base])
    return Case("export", f"refused/{name}", run, needs=frozenset({"run", "tf"}), quick=name == "name_traversal")


def _copy_run(transform: Callable[[Path], None]):
    def prepare(context: Context, folder: Path, run_dir: Path) -> Path:
        copy = folder / "run"
        shutil.copytree(run_dir, copy)
        transform(copy)
        return copy
    return prepare


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _existing_version_case(context: Context) -> Outcome:
    base = context.scratch("export-exists") / "serving"
    run_dir = context.fixture("run")
    first = run_cli("export", "--model", run_dir, "--output", base, "--name", "m", "--version", "3")
    problem = succeeded(first, "export")
    if problem:
        return problem
    before = tree_digest(base / "m" / "3")
    outcome = refused(run_cli("export", "--model", run_dir, "--output", base, "--name", "m", "--version", "3"),
                      "export", names=("--force", str(base / "m" / "3")))
    if outcome.status != "pass":
        return outcome
    if tree_digest(base / "m" / "3") != before:
        return failed("the refused export changed version 3")
    forced = run_cli("export", "--model", run_dir, "--output", base, "--name", "m", "--version", "3", "--force")
    problem = succeeded(forced, "export --force")
    if problem:
        return problem
    broken = incomplete_versions(base / "m")
    return failed(f"after --force: {broken}") if broken or hidden_entries(base / "m") else \
        passed(f"refused without --force ({outcome.reason}); --force replaced it whole")


def _check_export_case(name: str, prepare: Callable[[Context, Path], Path], names: tuple) -> Case:
    def run(context: Context) -> Outcome:
        folder = context.scratch(f"check-export-{name}")
        target = prepare(context, folder)
        result = run_cli("check-export", target)
        if result.code == 1 and "Traceback" not in result.err:  # a reported failure: ok false with problems
            try:
                report = json.loads(result.out)
            except ValueError:
                return failed(f"exit 1 without a JSON report: {short(result.out)}")
            return passed(f"reported not ok: {short('; '.join(report.get('problems', [])), 120)}") \
                if report.get("ok") is False and report.get("problems") else failed(f"exit 1 but report {short(result.out)}")
        return refused(result, "check-export", names=tuple(str(target) if n == "TARGET" else n for n in names))
    return Case("export", f"check_export/{name}", run, needs=frozenset({"export", "tf"}))


def _broken_copy(transform: Callable[[Path], None]):
    def prepare(context: Context, folder: Path) -> Path:
        copy = folder / "1"
        shutil.copytree(context.fixture("export"), copy)
        transform(copy)
        return copy
    return prepare


def export_cases() -> list[Case]:
    needs = frozenset({"run", "subprocess", "tf"})
    cases = [
        Case("export", "kill/when_temporary_created", _export_kill_case(tmp_dir_appears(), 0.0), needs=needs,
             quick=True),
        Case("export", "kill/0.5s_into_writing", _export_kill_case(tmp_dir_appears(), 0.5), needs=needs),
        Case("export", "kill/saved_model_pb_written", _export_kill_case(tmp_dir_appears("saved_model.pb"), 0.0),
             needs=needs),
        Case("export", "kill/variables_written", _export_kill_case(tmp_dir_appears("variables/variables.index"), 0.0),
             needs=needs),
        Case("export", "kill/warmup_written",
             _export_kill_case(tmp_dir_appears("assets.extra/tf_serving_warmup_requests"), 0.0), needs=needs),
        Case("export", "kill/metadata_written_before_rename",
             _export_kill_case(tmp_dir_appears("assets.extra/semmatch_metadata.json"), 0.0), needs=needs),
        Case("export", "kill/after_rename", _export_kill_case(
            lambda d, e: d.is_dir() and any(p.name.isdigit() for p in d.iterdir()), 0.0), needs=needs),
        Case("export", "concurrent/two_exports_without_version", _concurrent_exports_case(False), needs=needs),
        Case("export", "concurrent/two_exports_same_version", _concurrent_exports_case(True), needs=needs),
        Case("export", "existing_version_needs_force", _existing_version_case, needs=frozenset({"run", "tf"})),
    ]
    bad_names = {"name_traversal": "../escape", "name_with_slash": "a/b", "name_empty": "", "name_hidden": ".hidden",
                 "name_dotdot": "..", "name_dot": ".", "name_too_long": "x" * 200, "name_with_space": "a b",
                 "name_non_ascii": "名前", "name_newline": "a\nb", "name_backslash": "a\\b", "name_leading_dash": "-rf",
                 "name_tab": "a\tb"}
    for label, value in bad_names.items():
        cases.append(_export_refusal_case(label, [f"--name={value}"], (repr(value),)))
    cases += [
        _export_refusal_case("version_zero", ["--version", "0"], ("version", "0")),
        _export_refusal_case("version_negative", ["--version=-4"], ("version", "-4")),
        _export_refusal_case("output_is_a_file", [], ("FOLDER",), base_exists=True,
                             prepare=lambda c, folder, run: (folder.joinpath("serving").write_text("x"), run)[1]),
        _export_refusal_case("model_missing", [], ("FOLDER",), prepare=lambda c, folder, run: folder / "nope"),
        _export_refusal_case("model_is_bi_encoder", [], ("bi-encoder",),
                             prepare=lambda c, folder, run: c.fixture("bi_run")),
        _export_refusal_case("model_keras_truncated", [], ("model.keras",),
                             prepare=_copy_run(lambda d: _truncate(d / "model.keras"))),
        _export_refusal_case("model_keras_garbage", [], ("model.keras",),
                             prepare=_copy_run(lambda d: (d / "model.keras").write_bytes(GARBAGE))),
        _export_refusal_case("labels_json_garbage", [], ("labels.json",),
                             prepare=_copy_run(lambda d: (d / "labels.json").write_text("{not json"))),
        _export_refusal_case("labels_json_wrong_shape", [], ("labels.json",),
                             prepare=_copy_run(lambda d: (d / "labels.json").write_text('{"head": "classification"}'))),
        _export_refusal_case("preprocessor_missing", [], ("preprocessor.keras",),
                             prepare=_copy_run(lambda d: (d / "preprocessor.keras").unlink())),
        _export_refusal_case("preprocessor_truncated", [], ("preprocessor.keras",),
                             prepare=_copy_run(lambda d: _truncate(d / "preprocessor.keras"))),
    ]
    cases += [
        _check_export_case("missing_directory", lambda c, folder: folder / "nope", ("TARGET",)),
        _check_export_case("not_an_export", lambda c, folder: (folder / "x").mkdir() or folder / "x", ("TARGET",)),
        _check_export_case("metadata_garbage", _broken_copy(
            lambda d: (d / "assets.extra" / "semmatch_metadata.json").write_text("{oops")), ("TARGET",
                                                                                          "semmatch_metadata.json")),
        _check_export_case("variables_missing", _broken_copy(lambda d: shutil.rmtree(d / "variables")), ("TARGET",)),
    ]
    for case in cases:
        if case.name.startswith("check_export/"):
            case.needs = frozenset({"export", "run", "subprocess", "tf"})
    return cases


# == 5. fuzzed serving inputs =======================================================================
def _random_text(rng: random.Random, planes: Iterable[int], length: int) -> str:
    planes = list(planes)
    chars = []
    while len(chars) < length:
        code = (rng.choice(planes) << 16) | rng.randrange(0x10000)
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates cannot be encoded in UTF-8 (see the invalid-bytes kinds)
        chars.append(chr(code))
    return "".join(chars)


def serving_texts(kind: str, batch: int) -> list:
    """``batch`` inputs of one adversarial kind (str, or bytes for the invalid-UTF-8 kinds)."""
    rng = random.Random(f"{kind}-{batch}")
    if kind.startswith("plane_"):
        plane = int(kind.split("_")[1])
        return [_random_text(rng, [plane], rng.randrange(1, 40)) for _ in range(batch)]
    makers = {
        "all_planes": lambda: _random_text(rng, range(17), rng.randrange(1, 60)),
        "empty": lambda: "",
        "whitespace_only": lambda: rng.choice([" ", "\t\n", "\u3000\u00a0 ", "\u2028\u2029"]),
        "control_characters": lambda: "".join(chr(rng.choice(list(range(0, 32)) + [127] + list(range(128, 160))))
                                              for _ in range(rng.randrange(1, 30))),
        "combining_marks_5000": lambda: "e" + "\u0301\u0308\u0327" * 1700,
        "long_100k_words": lambda: ("red running shoes " * 6000)[:100_000],
        "long_100k_one_token": lambda: "x" * 100_000,
        "long_100k_cjk": lambda: "无线蓝牙耳机" * 16_667,
        "emoji_zwj": lambda: "👩‍👩‍👧‍👦🏳️‍🌈👍🏽🇯🇵" * rng.randrange(1, 20),
        "bidi_overrides": lambda: "\u202eshoes\u202c \u2066red\u2069 \u200f" * 3,
        "noncharacters": lambda: "\ufffe\uffff\U0010ffff\ufdd0 shoes",
        "bom_only": lambda: "\ufeff",
        "nul_inside": lambda: "red\x00shoes\x00",
        "invalid_utf8": lambda: bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 20))),
        "utf8_surrogates": lambda: b"shoe \xed\xa0\x80\xed\xb0\x80",
        "overlong_utf8": lambda: b"\xc0\xaf\xe0\x80\xaf shoes",
    }
    return [makers[kind]() for _ in range(batch)]


SERVING_KINDS = [f"plane_{p}" for p in range(17)] + [
    "all_planes", "empty", "whitespace_only", "control_characters", "combining_marks_5000", "long_100k_words",
    "long_100k_one_token", "long_100k_cjk", "emoji_zwj", "bidi_overrides", "noncharacters", "bom_only",
    "nul_inside", "invalid_utf8", "utf8_surrogates", "overlong_utf8"]
LONG_KINDS = {"long_100k_words", "long_100k_one_token", "long_100k_cjk", "combining_marks_5000"}
SIGNATURES = ("serving_default", "embed_query", "embed_product", "search")


def serving_case_names() -> list[str]:
    names = []
    for kind in SERVING_KINDS:
        batches = (1, 3) if kind in LONG_KINDS else (1, 5000)
        for signature in SIGNATURES:
            for batch in batches:
                if kind.startswith("plane_") and batch == 5000 and signature in ("embed_product", "search"):
                    continue
                names.append(f"{signature}/{kind}/batch_{batch}")
    names += ["serving_default/empty_batch", "serving_default/mismatched_batch", "serving_default/rank_2_input",
              "serving_default/float_input", "serving_default/batch_invariance", "serving_default/deterministic",
              "embed_query/empty_batch", "search/batch_invariance", "serving_default/mixed_5000",
              "embed_query/rank_2_input", "search/rank_2_input", "serving_default/column_vector_input"]
    return names


def _serve_check(name: str, outputs: dict, batch: int, facts: dict) -> str | None:
    """A problem with one signature's outputs, or None."""
    import numpy as np

    if name == "serving_default":
        scores, probabilities = outputs["scores"].numpy(), outputs["probabilities"].numpy()
        labels = [v.decode() for v in outputs["label"].numpy().tolist()]
        if scores.shape != (batch,) or probabilities.shape != (batch, facts["classes"]) or len(labels) != batch:
            return f"shapes {scores.shape}, {probabilities.shape}, {len(labels)} for a batch of {batch}"
        if not (np.isfinite(scores).all() and np.isfinite(probabilities).all()):
            return f"{int((~np.isfinite(scores)).sum())} non-finite scores"
        if batch and (np.abs(probabilities.sum(axis=1) - 1) > 1e-3).any():
            return "probabilities do not sum to 1"
        if set(labels) - set(facts["names"]):
            return f"labels {sorted(set(labels) - set(facts['names']))} not in the scheme"
        low, high = facts["grade_range"]
        if batch and ((scores < low - 1e-4) | (scores > high + 1e-4)).any():
            return f"scores outside the grade range [{low}, {high}]"
        return None
    if name.startswith("embed_"):
        embedding = outputs["embedding"].numpy()
        if embedding.shape != (batch, facts["dims"]):
            return f"embedding shape {embedding.shape} for a batch of {batch}"
        if not np.isfinite(embedding).all():
            return f"{int((~np.isfinite(embedding).all(axis=1)).sum())} rows not finite"
        return None
    ids, scores = outputs["product_ids"].numpy(), outputs["scores"].numpy()
    if ids.shape != (batch, facts["top_k"]) or scores.shape != (batch, facts["top_k"]):
        return f"search shapes {ids.shape}, {scores.shape}"
    if not np.isfinite(scores).all():
        return "non-finite search scores"
    if batch and (np.diff(scores, axis=1) > 1e-6).any():
        return "search scores not best first"
    known = set(facts["ids"])
    if {v.decode() for v in ids.ravel().tolist()} - known:
        return "search returned ids outside the catalogue"
    return None


def serving_child(cross_dir: str, bi_dir: str, names: list[str]) -> None:
    """The serving fuzz (runs in its own process: a crash loses only the remaining cases)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - the exported graphs use its ops

    cross = tf.saved_model.load(cross_dir)
    metadata = json.loads((Path(cross_dir) / "assets.extra" / "semmatch_metadata.json").read_text())
    labels = metadata["labels"]
    facts = {"classes": len(labels["names"]), "names": labels["names"], "grade_range": labels["grade_range"]}
    bi = None
    if bi_dir != "-":  # only the cross-encoder's cases were selected
        bi = tf.saved_model.load(bi_dir)
        bi_meta = json.loads((Path(bi_dir) / "assets.extra" / "semmatch_metadata.json").read_text())
        facts.update(dims=int(bi_meta["signatures"]["embed_query"]["outputs"]["embedding"]["shape"][-1]),
                     top_k=int(bi_meta["top_k"]),
                     ids=json.loads((Path(bi_dir) / "assets.extra" / "catalogue_ids.json").read_text()))

    def call(signature: str, texts: list, partner: list | None = None) -> dict:
        if signature == "serving_default":
            fn = cross.signatures["serving_default"]
            return fn(query=tf.constant(texts, tf.string), product=tf.constant(partner or texts, tf.string))
        fn = bi.signatures[signature]
        key = "query" if signature == "search" else "text"
        return fn(**{key: tf.constant(texts, tf.string)})

    def expect_error(thunk) -> str | None:
        try:
            thunk()
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            return None if error is not None else "?"
        return "accepted"

    for name in names:
        try:
            parts = name.split("/")
            signature = parts[0]
            if len(parts) == 3:
                kind, batch = parts[1], int(parts[2].split("_")[1])
                texts = serving_texts(kind, batch)
                partner = list(reversed(serving_texts(kind, batch))) if signature == "serving_default" else None
                problem = _serve_check(signature, call(signature, texts, partner), batch, facts)
            elif parts[1] == "empty_batch":
                problem = _serve_check(signature, call(signature, [], [] if signature == "serving_default" else None),
                                       0, facts)
            elif parts[1] == "mismatched_batch":
                problem = expect_error(lambda: call("serving_default", ["a", "b", "c"], ["a", "b"]))
            elif parts[1] == "rank_2_input" and signature == "serving_default":
                problem = expect_error(lambda: cross.signatures["serving_default"](
                    query=tf.constant([["a", "b"], ["c", "d"]]), product=tf.constant([["b", "c"], ["d", "e"]])))
            elif parts[1] == "rank_2_input":
                key = "query" if signature == "search" else "text"
                problem = expect_error(lambda: bi.signatures[signature](**{key: tf.constant([["a", "b"], ["c", "d"]])}))
            elif parts[1] == "column_vector_input":  # [B, 1], as a client may send nested lists
                problem = expect_error(lambda: cross.signatures["serving_default"](
                    query=tf.constant([["a"], ["b"]]), product=tf.constant([["c"], ["d"]])))
            elif parts[1] == "float_input":
                problem = expect_error(lambda: cross.signatures["serving_default"](
                    query=tf.constant([1.0]), product=tf.constant([2.0])))
            elif parts[1] == "mixed_5000":
                kinds = [k for k in SERVING_KINDS if k not in LONG_KINDS]
                texts = [serving_texts(kinds[i % len(kinds)], 1)[0] for i in range(5000)]
                problem = _serve_check(signature, call(signature, texts, list(reversed(texts))), 5000, facts)
            elif parts[1] == "batch_invariance":
                texts = serving_texts("all_planes", 500) + ["red running shoes", "", "usb cable"]
                key = "scores"
                whole = call(signature, texts)[key].numpy()
                alone = np.concatenate([call(signature, [t])[key].numpy() for t in texts[-8:]])
                difference = float(np.abs(whole[-8:] - alone).max())
                problem = None if difference < 1e-4 else f"row outputs depend on the batch: max diff {difference:.3g}"
            elif parts[1] == "deterministic":
                texts = serving_texts("all_planes", 200)
                first, second = call(signature, texts)["scores"].numpy(), call(signature, texts)["scores"].numpy()
                problem = None if np.array_equal(first, second) else "two identical calls differ"
            else:
                problem = f"unknown serving case {name}"
            print(json.dumps({"name": name, "problem": problem}), flush=True)
        except Exception as error:  # noqa: BLE001
            print(json.dumps({"name": name, "problem": f"{type(error).__name__}: {short(str(error))}"}), flush=True)


def _serving_results(context: Context) -> dict:
    names = [c.name for c in context.selected if c.category == "serving_fuzz"]
    cross, bi = context.fixture("export"), "-"
    if any(not n.startswith("serving_default/") for n in names):
        bi = context.fixture("bi_export")
        (bi / "assets.extra" / "catalogue_ids.json").write_text(json.dumps(context.fixture("bi_catalogue_ids")))
    folder = context.root / "fixtures"
    (folder / "serving_names.json").write_text(json.dumps(names))
    result = run_process(["-m", "benchmarks.run_faults", "--serving-child", str(cross), str(bi),
                          str(folder / "serving_names.json")], timeout=900)
    results = {}
    for line in result.out.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            results[item["name"]] = item["problem"]
    return {"results": results, "code": result.code, "err": result.err}


def _bi_catalogue_ids(context: Context) -> list[str]:
    from semmatch_tf.data import load_demo_catalogue

    return load_demo_catalogue().head(300)["product_id"].astype(str).tolist()


FIXTURES["serving_results"] = _serving_results
FIXTURES["bi_catalogue_ids"] = _bi_catalogue_ids


def _serving_case(name: str) -> Callable[[Context], Outcome]:
    def run(context: Context) -> Outcome:
        outcome = context.fixture("serving_results")
        if name not in outcome["results"]:
            return failed(f"the serving process died before this case (exit {outcome['code']}): "
                          f"{short(last_line(outcome['err']))}")
        problem = outcome["results"][name]
        return failed(problem) if problem else passed("finite outputs, right shapes")
    return run


def serving_cases() -> list[Case]:
    quick = {"serving_default/all_planes/batch_5000", "serving_default/long_100k_words/batch_1",
             "serving_default/empty/batch_1", "serving_default/invalid_utf8/batch_1", "serving_default/mismatched_batch",
             "serving_default/column_vector_input"}

    def needs(name: str) -> frozenset:
        export = "export" if name.startswith("serving_default/") else "bi_export"
        return frozenset({export, "subprocess", "tf"})
    return [Case("serving_fuzz", name, _serving_case(name), needs=needs(name), quick=name in quick)
            for name in serving_case_names()]


# == 6. search ======================================================================================
def _index_fixture(context: Context) -> Path:
    output = context.root / "fixtures" / "index"
    result = run_cli("index", "--model", context.fixture("bi_run"), "--catalogue", "demo", "--output", output)
    problem = succeeded(result, "index")
    if problem:
        raise FixtureError(f"fixture index: {problem.reason}")
    return output


def _bm25_index_fixture(context: Context) -> Path:
    output = context.root / "fixtures" / "bm25_index"
    result = run_cli("index", "--catalogue", "demo", "--output", output)
    problem = succeeded(result, "index")
    if problem:
        raise FixtureError(f"fixture bm25 index: {problem.reason}")
    return output


FIXTURES["index"] = _index_fixture
FIXTURES["bm25_index"] = _bm25_index_fixture


def _search_case(name: str, argv: list, *, index: str = "index", names: tuple = (), ok: bool = False,
                 corrupt: Callable[[Path], None] | None = None, needs: frozenset = frozenset({"index", "tf"}),
                 quick: bool = False, no_results_ok: bool = False,
                 prepare: Callable[[Path], None] | None = None) -> Case:
    """``search ARGV --index INDEX`` (INDEX, RUN and BI_RUN are substituted): refused with one line,
    or (``ok``) answered; ``corrupt`` breaks a copy of the index first."""
    def run(context: Context) -> Outcome:
        folder = context.scratch(f"search-{name}")
        if prepare is not None:
            prepare(folder)
        target = context.fixture(index)
        if corrupt is not None:
            copy = folder / "index"
            shutil.copytree(target, copy)
            corrupt(copy)
            target = copy
        replace = {"INDEX": str(target), "FOLDER": str(folder)}
        if any("RUN" in str(a) for a in argv):
            replace["BI_RUN"] = str(context.fixture("bi_run"))
            replace["RUN"] = str(context.fixture("run"))

        def sub(value) -> str:
            text = str(value)
            for key in ("BI_RUN", "RUN", "INDEX", "FOLDER"):
                if key in replace:
                    text = text.replace(key, replace[key])
            return text

        args = [sub(a) for a in argv]
        if "--index" not in args:
            args += ["--index", str(target)]
        result = run_cli("search", *args)
        if ok:
            problem = succeeded(result, "search")
            if problem:
                return problem
            rows = [line for line in result.out.splitlines()[2:] if line.strip()]
            if result.out.strip() == "(no results)":
                return passed("no results") if no_results_ok else failed("no results for a readable query")
            return passed(f"{len(rows)} results")
        if no_results_ok and result.code == 0 and result.out.strip() == "(no results)":
            return passed("no results (nothing readable to search for)")
        return refused(result, "search", names=tuple(sub(n) for n in names), max_seconds=15)
    return Case("search", name, run, needs=needs, quick=quick)


def _write(relative: str, data: bytes | str) -> Callable[[Path], None]:
    def apply(index: Path) -> None:
        path = index / relative
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return apply


def _remove(relative: str) -> Callable[[Path], None]:
    def apply(index: Path) -> None:
        path = index / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return apply


def _embeddings(change: Callable) -> Callable[[Path], None]:
    def apply(index: Path) -> None:
        import numpy as np

        path = index / "dense" / "embeddings.npy"
        array = np.load(path)
        np.save(path, change(array))
    return apply


def _nan_row(array):
    array = array.copy()
    array[3] = float("nan")
    return array


def _inf_value(array):
    array = array.copy()
    array[5, 0] = float("inf")
    return array


def _index_meta(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def apply(index: Path) -> None:
        meta = json.loads((index / "index.json").read_text())
        (index / "index.json").write_text(json.dumps(change(meta)))
    return apply


def search_cases() -> list[Case]:
    bm25 = frozenset({"bm25_index"})
    cases = []
    for name, query, names in [("empty_query", "", ("empty query",)), ("whitespace_query", " \t\n ", ("empty query",)),
                               ("query_2001_characters", "a" * 2001, ("2001", "characters")),
                               ("query_100k_characters", "shoes " * 16_667, ("characters",))]:
        cases.append(_search_case(name, [query], index="bm25_index", names=names, needs=bm25,
                                  quick=name == "empty_query"))
        cases.append(_search_case(f"dense/{name}", [query], names=names))
    for name, argv, names in [
        ("k_zero", ["shoes", "-k", "0"], ("k must be a positive",)), ("k_negative", ["shoes", "-k", "-5"], ("-5",)),
        ("candidates_zero_with_rerank", ["shoes", "--rerank", "FOLDER/no-run", "--candidates", "0"], ("candidates",)),
        ("candidates_negative_with_rerank", ["shoes", "--rerank", "FOLDER/no-run", "--candidates", "-1"],
         ("candidates",)),
        ("index_missing", ["shoes", "--index", "FOLDER/nope"], ("FOLDER/nope",)),
        ("index_is_a_file", ["shoes", "--index", "FOLDER/file"], ("FOLDER/file",)),
        ("dense_mode_on_bm25_index", ["shoes", "--mode", "dense"], ("dense",)),
        ("hybrid_mode_on_bm25_index", ["shoes", "--mode", "hybrid"], ("hybrid",)),
        ("rerank_run_missing", ["shoes", "--rerank", "FOLDER/no-run"], ("FOLDER/no-run",)),
    ]:
        prepare = (lambda folder: (folder / "file").write_text("not an index\n")) if name == "index_is_a_file" else None
        cases.append(_search_case(name, argv, index="bm25_index", names=names, needs=bm25, prepare=prepare,
                                  quick=name == "k_negative"))
    for name, argv, names in [
        ("stage_weight_above_one", ["shoes", "--rerank", "RUN", "--stage-weight", "2"], ("stage_weight",)),
        ("stage_weight_negative", ["shoes", "--rerank", "RUN", "--stage-weight=-0.5"], ("stage_weight",)),
        ("stage_weight_nan", ["shoes", "--rerank", "RUN", "--stage-weight", "nan"], ("stage_weight",)),
        ("rerank_with_a_bi_encoder_run", ["shoes", "--rerank", "BI_RUN"], ("bi-encoder",)),
    ]:
        cases.append(_search_case(name, argv, names=names, needs=frozenset({"index", "run", "tf"})))
    # corrupt indexes
    corrupt = [
        ("nan_embeddings", _embeddings(_nan_row), ("embeddings.npy", "not finite")),
        ("inf_embedding", _embeddings(_inf_value), ("embeddings.npy", "not finite")),
        ("embeddings_missing", _remove("dense/embeddings.npy"), ("embeddings.npy",)),
        ("embeddings_garbage", _write("dense/embeddings.npy", GARBAGE), ("embeddings.npy",)),
        ("embeddings_truncated", lambda d: _truncate(d / "dense" / "embeddings.npy"), ("embeddings.npy",)),
        ("embeddings_one_row_short", _embeddings(lambda a: a[:-1]), ("embeddings.npy",)),
        ("embeddings_one_dimensional", _embeddings(lambda a: a[:, 0]), ("embeddings.npy",)),
        ("embeddings_wrong_width", _embeddings(lambda a: a[:, :-1]), ("embeddings.npy",)),
        ("embeddings_pickled_object", _embeddings(lambda a: a.astype(object)), ("embeddings.npy",)),
        ("dense_catalogue_missing", _remove("dense/catalogue.parquet"), ("catalogue.parquet",)),
        ("dense_catalogue_garbage", _write("dense/catalogue.parquet", GARBAGE), ("catalogue.parquet",)),
        ("dense_meta_garbage", _write("dense/meta.json", "{nope"), ("meta.json",)),
        ("dense_directory_missing", _remove("dense"), ("dense",)),
        ("index_json_missing", _remove("index.json"), ("index.json",)),
        ("index_json_garbage", _write("index.json", "{oops"), ("index.json",)),
        ("index_json_not_an_object", _write("index.json", "[1, 2]"), ("index.json",)),
        ("index_json_without_parts", _index_meta(lambda m: {k: v for k, v in m.items() if k != "parts"}),
         ("index.json", "parts")),
        ("index_json_unknown_part", _index_meta(lambda m: {**m, "parts": ["dense", "bogus"]}), ("index.json", "bogus")),
        ("index_json_binary", _write("index.json", GARBAGE), ("index.json",)),
        ("model_run_moved", _index_meta(lambda m: {**m, "model_run_dir": "/nonexistent/run"}), ("/nonexistent/run",)),
        ("bm25_part_missing", _remove("bm25"), ("bm25",)),
        ("bm25_meta_garbage", _write("bm25/meta.json", "{nope"), ("meta.json",)),
        ("bm25_catalogue_garbage", _write("bm25/catalogue.parquet", GARBAGE), ("catalogue.parquet",)),
    ]
    for name, change, names in corrupt:
        dense = name.startswith(("embeddings", "nan_", "inf_", "dense", "model_run"))
        if dense:
            cases.append(_search_case(f"corrupt/{name}", ["shoes"], names=names, corrupt=change))
        else:  # index.json and BM25 files: the BM25-only index (no trained model needed)
            cases.append(_search_case(f"corrupt/{name}", ["shoes"], index="bm25_index", names=names, corrupt=change,
                                      needs=bm25, quick=name == "index_json_garbage"))
    # answered, or answered with nothing (never with confidence about nothing)
    cases += [
        _search_case("valid/bm25", ["scented candle"], index="bm25_index", ok=True, needs=bm25),
        _search_case("valid/dense", ["scented candle"], ok=True),
        _search_case("valid/hybrid", ["scented candle", "--mode", "hybrid"], ok=True),
        _search_case("valid/rerank_stage_weight", ["scented candle", "--mode", "hybrid", "--rerank", "RUN",
                                                   "--stage-weight", "0.5", "--candidates", "20"], ok=True,
                     needs=frozenset({"index", "run", "tf"})),
        _search_case("valid/k_larger_than_catalogue", ["candle", "-k", "1000000"], index="bm25_index", ok=True,
                     needs=bm25),
        _search_case("valid/candidates_zero_without_rerank", ["candle", "--candidates", "0"], index="bm25_index",
                     ok=True, needs=bm25),
        _search_case("unreadable/emoji_only_dense", ["👟🔥🎉"], ok=True, no_results_ok=True),
        _search_case("unreadable/ethiopic_dense", ["ሰላም ለዓለም"], ok=True, no_results_ok=True),
        _search_case("unreadable/zero_width_space", ["\u200b\u200b"], index="bm25_index", ok=True, no_results_ok=True,
                     needs=bm25),
        _search_case("unreadable/punctuation_only", ["?!…--"], index="bm25_index", ok=True, no_results_ok=True,
                     needs=bm25),
    ]
    return cases


# == 7. downloads ===================================================================================
def _served(folder: Path, name: str, data: bytes) -> str:
    upstream = folder / "upstream"
    upstream.mkdir(exist_ok=True)
    (upstream / name).write_bytes(data)
    return (upstream / name).as_uri()


def _zip_bytes(folder: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    path = folder / f"build-{len(list(folder.iterdir()))}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for info, data in members:
            bundle.writestr(info, data)
    return path.read_bytes()


def _tar_bytes(folder: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            bundle.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _outside_untouched(folder: Path, victim: Path, digest: str | None) -> str | None:
    """A problem if anything was written outside the cache: the victim changed or escape files exist."""
    if digest is not None and (not victim.exists() or sha256_bytes(victim.read_bytes()) != digest):
        return f"{victim} was changed through the cache"
    escaped = [p.name for p in folder.rglob("*") if "escape" in p.name and "cache" not in p.parts and "upstream" not in p.parts
               and not p.name.endswith((".zip", ".tar.gz"))]
    escaped += [str(p) for p in (Path("/tmp/escape-abs.txt"), Path("/tmp/escape-tar-abs.txt")) if p.exists()]
    return f"files written outside the cache: {escaped}" if escaped else None


def _cache_litter(cache: Path) -> list[str]:
    """Temporaries a failed download or extraction must not leave behind."""
    if not cache.exists():
        return []
    return sorted(p.name for p in cache.iterdir() if p.name.endswith(".part") or
                  (p.name.startswith(".") and not p.name.endswith(".sha256")))


def _archive_case(name: str, build: Callable[[Path], bytes], archive_name: str, *, refuse: bool,
                  expect: dict[str, bytes] | None = None) -> Case:
    """Extract an archive served from file://: refused with a ValueError (nothing outside the cache,
    no staging folder, no extraction folder) or (not ``refuse``) extracted to exactly ``expect``."""
    def run(context: Context) -> Outcome:
        from semmatch_tf.data import download

        folder = context.scratch(f"download-{name}")
        victim = folder / "victim.txt"
        victim.write_text("precious\n")
        digest = sha256_bytes(victim.read_bytes())
        url = _served(folder, archive_name, build(folder))
        cache = folder / "cache"
        if refuse:
            outcome = library_refusal(lambda: download(url, None, cache, extract=True), names=(archive_name,))
            if outcome.status != "pass":
                return outcome
            if (cache / f"{archive_name}.d").exists():
                return failed("an extraction folder was left behind")
        else:
            try:
                destination = download(url, None, cache, extract=True)
            except Exception as error:  # noqa: BLE001
                return failed(f"a harmless archive was refused: {type(error).__name__}: {short(str(error))}")
            got = {str(p.relative_to(destination)): p.read_bytes() for p in destination.rglob("*")
                   if p.is_file() and not p.name.startswith(".source")}
            links = [str(p) for p in destination.rglob("*") if p.is_symlink()]
            if links:
                return failed(f"symlinks extracted: {links}")
            if expect is not None and got != expect:
                return failed(f"extracted {sorted(got)}, expected {sorted(expect)}")
            outcome = passed(f"extracted {sorted(got)} inside the cache")
        problem = _outside_untouched(folder, victim, digest)
        if problem:
            return failed(problem)
        litter = _cache_litter(cache)
        return failed(f"temporaries left in the cache: {litter}") if litter else outcome
    return Case("download", f"archive/{name}", run, quick=name in ("zip_traversal", "tar_symlink_outside"))


def _file_case(name: str, run_case: Callable[[Path], Outcome], quick: bool = False) -> Case:
    def run(context: Context) -> Outcome:
        return run_case(context.scratch(f"download-{name}"))
    return Case("download", f"file/{name}", run, quick=quick)


def _planted(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    url = _served(folder, "label.csv", b"real,data\n")
    cache = folder / "cache"
    cache.mkdir()
    (cache / "label.csv").write_bytes(b"planted\n")
    path = download(url, None, cache)
    return passed("planted file replaced by the upstream one") if path.read_bytes() == b"real,data\n" else \
        failed(f"the planted file was used: {path.read_bytes()!r}")


def _changed_after(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    url = _served(folder, "label.csv", b"real,data\n")
    path = download(url, None, folder / "cache")
    path.write_bytes(b"tampered\n")
    again = download(url, None, folder / "cache")
    return passed("a changed cache file is fetched again") if again.read_bytes() == b"real,data\n" else \
        failed("a changed cache file was used")


def _known_hash_mismatch(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    url = _served(folder, "dev.json", b"{}\n")
    outcome = library_refusal(lambda: download(url, "0" * 64, folder / "cache"), names=("checksum", url))
    if outcome.status == "pass" and ((folder / "cache" / "dev.json").exists() or _cache_litter(folder / "cache")):
        return failed(f"a file that failed its checksum was kept: {sorted(p.name for p in (folder / 'cache').iterdir())}")
    return outcome


def _planted_symlink_target(folder: Path) -> Outcome:
    """cache/label.csv is a symlink to a file outside: the download replaces the link, not the file."""
    from semmatch_tf.data import download

    victim = folder / "victim.txt"
    victim.write_text("precious\n")
    url = _served(folder, "label.csv", b"real,data\n")
    cache = folder / "cache"
    cache.mkdir()
    os.symlink(victim, cache / "label.csv")
    path = download(url, None, cache)
    if victim.read_text() != "precious\n":
        return failed("the download wrote through a planted symlink")
    return passed("the planted link was replaced") if not path.is_symlink() and path.read_bytes() == b"real,data\n" \
        else failed("the planted link is still there")


def _planted_symlink_record(folder: Path) -> Outcome:
    """cache/.label.csv.sha256 is a symlink to a file outside: recording the hash must not write there."""
    from semmatch_tf.data import download

    victim = folder / "victim.txt"
    victim.write_text("precious\n")
    url = _served(folder, "label.csv", b"real,data\n")
    cache = folder / "cache"
    cache.mkdir()
    os.symlink(victim, cache / ".label.csv.sha256")
    download(url, None, cache)
    return passed("the record was written in the cache") if victim.read_text() == "precious\n" else \
        failed("recording the sha256 wrote through a planted symlink")


def _missing_url(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    url = (folder / "upstream" / "nope.csv").as_uri()
    outcome = library_refusal(lambda: download(url, None, folder / "cache"), names=(url,), kinds=(OSError,))
    litter = _cache_litter(folder / "cache")
    return failed(f"temporaries left: {litter}") if outcome.status == "pass" and litter else outcome


def _destination_is_a_file(folder: Path) -> Outcome:
    """A plain file sits where the extraction folder goes: replaced, or a clear error."""
    from semmatch_tf.data import download

    archive = _zip_bytes(folder, [("data.txt", b"fresh\n")])
    url = _served(folder, "set.zip", archive)
    cache = folder / "cache"
    cache.mkdir()
    (cache / "set.zip.d").write_text("planted\n")
    try:
        destination = download(url, None, cache, extract=True)
    except ValueError as error:
        return passed(f"refused: {short(str(error))}")
    except Exception as error:  # noqa: BLE001
        return failed(f"{type(error).__name__}: {short(str(error))}")
    return passed("rebuilt") if (destination / "data.txt").read_bytes() == b"fresh\n" else failed("stale content")


def _stale_extraction(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    cache = folder / "cache"
    (cache / "set.zip.d").mkdir(parents=True)
    (cache / "set.zip.d" / "data.txt").write_text("stale\n")
    (cache / "set.zip.d" / "extra.txt").write_text("left over\n")
    url = _served(folder, "set.zip", _zip_bytes(folder, [("data.txt", b"fresh\n")]))
    destination = download(url, None, cache, extract=True)
    names = sorted(p.name for p in destination.iterdir() if not p.name.startswith("."))
    if (destination / "data.txt").read_bytes() != b"fresh\n" or names != ["data.txt"]:
        return failed(f"stale extraction reused: {names}")
    return passed("stale folder rebuilt from the archive")


def _changed_archive(folder: Path) -> Outcome:
    """The upstream archive changes (new hash recorded by hand-deleting the cache file): fresh extraction."""
    from semmatch_tf.data import download

    cache = folder / "cache"
    url = _served(folder, "set.zip", _zip_bytes(folder, [("data.txt", b"one\n")]))
    download(url, None, cache, extract=True)
    (cache / "set.zip").unlink()
    (cache / ".set.zip.sha256").unlink()
    url = _served(folder, "set.zip", _zip_bytes(folder, [("data.txt", b"two\n")]))
    destination = download(url, None, cache, extract=True)
    return passed("re-extracted") if (destination / "data.txt").read_bytes() == b"two\n" else \
        failed("the old extraction was reused for a new archive")


def _not_an_archive(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    url = _served(folder, "data.zip", GARBAGE)
    return library_refusal(lambda: download(url, None, folder / "cache", extract=True), names=("data.zip",))


def _truncated_zip(folder: Path) -> Outcome:
    from semmatch_tf.data import download

    data = _zip_bytes(folder, [("data.txt", b"x" * 10_000)])
    url = _served(folder, "cut.zip", data[: len(data) - 30])
    return library_refusal(lambda: download(url, None, folder / "cache", extract=True), names=("cut.zip",))


def _corrupt_zip_member(folder: Path) -> Outcome:
    """A zip whose member data is damaged (CRC mismatch): refused, no extraction folder."""
    from semmatch_tf.data import download

    data = bytearray(_zip_bytes(folder, [("data.txt", b"hello world, " * 200)]))
    data[60] ^= 0xFF
    url = _served(folder, "bad.zip", bytes(data))
    outcome = library_refusal(lambda: download(url, None, folder / "cache", extract=True), names=("bad.zip",))
    if outcome.status == "pass" and (folder / "cache" / "bad.zip.d").exists():
        return failed("an extraction folder of a damaged archive was left")
    return outcome


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/missing"):
            self.send_error(404)
        elif self.path.endswith("/short"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"only a little")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        elif self.path.endswith("/slow"):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            time.sleep(3)
        else:
            data = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


@contextlib.contextmanager
def local_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _http_case(path: str, name: str) -> Callable[[Path], Outcome]:
    def run(folder: Path) -> Outcome:
        from semmatch_tf.data import download

        with local_server() as root:
            url = f"{root}/{path}"
            outcome = library_refusal(lambda: download(url, None, folder / "cache", filename=name, timeout=1.0),
                                      names=(url,), kinds=(OSError,))
        left = sorted(p.name for p in (folder / "cache").iterdir()) if (folder / "cache").exists() else []
        if outcome.status == "pass" and left:
            return failed(f"a failed download left {left} in the cache")
        return outcome
    return run


def download_cases() -> list[Case]:
    cases = [
        _file_case("planted_file_without_record", _planted, quick=True),
        _file_case("changed_after_download", _changed_after),
        _file_case("known_hash_mismatch", _known_hash_mismatch),
        _file_case("planted_symlink_at_target", _planted_symlink_target),
        _file_case("planted_symlink_at_hash_record", _planted_symlink_record),
        _file_case("missing_url", _missing_url),
        _file_case("extraction_folder_is_a_file", _destination_is_a_file),
        _file_case("stale_extraction_folder", _stale_extraction, quick=True),
        _file_case("new_archive_same_name", _changed_archive),
        _file_case("not_an_archive", _not_an_archive),
        _file_case("truncated_zip", _truncated_zip),
        _file_case("damaged_zip_member", _corrupt_zip_member),
        _file_case("http_404", _http_case("missing", "a.csv")),
        _file_case("http_connection_cut_mid_body", _http_case("short", "b.csv")),
        _file_case("http_stalled_past_timeout", _http_case("slow", "c.csv")),
    ]
    for name in ("../escape.csv", "sub/dir.csv", ".hidden", "..", ".", "a\\b.csv", "a\0b", "/etc/escape"):
        def traversal(folder: Path, name=name) -> Outcome:
            from semmatch_tf.data import download

            url = _served(folder, "x.csv", b"x\n")
            outcome = library_refusal(lambda: download(url, None, folder / "cache", filename=name),
                                      names=("plain file name",))
            problem = _outside_untouched(folder, folder / "none", None)
            return failed(problem) if problem else outcome
        cases.append(_file_case(f"file_name_{name.encode('unicode_escape').decode() or 'empty'}", traversal,
                                quick=name == "../escape.csv"))
    url_names = {"url_with_dotdot": "..%2F..%2Fescape.csv", "url_ending_in_slash": ""}
    for label, tail in url_names.items():
        def url_case(folder: Path, tail=tail) -> Outcome:
            from semmatch_tf.data import download

            _served(folder, "x.csv", b"x\n")
            url = (folder / "upstream").as_uri() + "/" + tail
            try:
                path = download(url, None, folder / "cache")
            except (ValueError, OSError) as error:
                return passed(f"{type(error).__name__}: {short(str(error), 120)}")
            problem = _outside_untouched(folder, folder / "none", None)
            if problem:
                return failed(problem)
            return passed(f"stayed in the cache as {path.name}") if path.parent == folder / "cache" else \
                failed(f"written to {path}")
        cases.append(_file_case(label, url_case))

    def zip_info(name: str, *, symlink: bool = False) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (0o120777 << 16)
        return info

    harmless = {"a.txt": b"a\n", "sub/b.txt": b"b\n"}
    archives = [
        ("zip_plain", lambda f: _zip_bytes(f, list(harmless.items())), "plain.zip", False, harmless),
        ("zip_traversal", lambda f: _zip_bytes(f, [("../../escape.txt", b"x"), ("a.txt", b"a\n")]), "trav.zip", None, None),
        ("zip_absolute_path", lambda f: _zip_bytes(f, [("/tmp/escape-abs.txt", b"x")]), "abs.zip", None, None),
        ("zip_symlink_member", lambda f: _zip_bytes(f, [(zip_info("link", symlink=True), b"../../victim.txt")]),
         "link.zip", None, None),
        ("zip_bomb", lambda f: _zip_bytes(f, [("zeros.bin", b"\0" * (30 * 2**20))]), "bomb.zip", True, None),
        ("zip_many_members_bomb", lambda f: _zip_bytes(f, [(f"m{i}.bin", b"\0" * 200_000) for i in range(150)]),
         "many.zip", True, None),
        ("zip_backslash_traversal", lambda f: _zip_bytes(f, [("..\\..\\escape-bs.txt", b"x")]), "bs.zip", None, None),
        ("tar_plain", lambda f: _tar_bytes(f, [(_tar_member(k), v) for k, v in harmless.items()]), "plain.tar.gz",
         False, harmless),
        ("tar_traversal", lambda f: _tar_bytes(f, [(_tar_member("../../escape.txt"), b"x")]), "trav.tar.gz", True, None),
        ("tar_absolute_path", lambda f: _tar_bytes(f, [(_tar_member("/tmp/escape-tar-abs.txt"), b"x")]), "abs.tar.gz",
         None, None),
        ("tar_symlink_outside", lambda f: _tar_bytes(f, [(_tar_member("link", tarfile.SYMTYPE, "../../victim.txt"),
                                                          None)]), "sym.tar.gz", True, None),
        ("tar_symlink_then_write_through", lambda f: _tar_bytes(f, [
            (_tar_member("dir", tarfile.SYMTYPE, "../.."), None), (_tar_member("dir/escape.txt"), b"x")]),
         "through.tar.gz", True, None),
        ("tar_absolute_symlink", lambda f: _tar_bytes(f, [(_tar_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)]),
         "abssym.tar.gz", True, None),
        ("tar_hardlink_outside", lambda f: _tar_bytes(f, [(_tar_member("hard", tarfile.LNKTYPE, "../../victim.txt"),
                                                           None)]), "hard.tar.gz", True, None),
        ("tar_device_file", lambda f: _tar_bytes(f, [(_tar_member("dev", tarfile.CHRTYPE), None)]), "dev.tar.gz", True,
         None),
        ("tar_bomb", lambda f: _tar_bytes(f, [(_tar_member("zeros.bin"), b"\0" * (30 * 2**20))]), "bomb.tar.gz", True,
         None),
    ]
    for name, build, archive_name, refuse, expect in archives:
        if refuse is None:  # zipfile sanitises these names: extracted harmlessly inside the cache, or refused
            def either(context: Context, build=build, archive_name=archive_name, name=name) -> Outcome:
                refusing = _archive_case(name, build, archive_name, refuse=True).fn(context)
                if refusing.status == "pass":
                    return refusing
                kept = _archive_case(name, build, archive_name, refuse=False).fn(context)
                return kept if kept.status == "pass" else failed(f"{refusing.reason}; {kept.reason}")
            cases.append(Case("download", f"archive/{name}", either, quick=name == "zip_traversal"))
        else:
            cases.append(_archive_case(name, build, archive_name, refuse=refuse, expect=expect))
    return cases


# == 8. a tiny file system ==========================================================================
@contextlib.contextmanager
def tiny_filesystem(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` (root only); raises OSError when it cannot mount."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        raise OSError(f"mount -t tmpfs failed: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def half_written(root: Path) -> list[str]:
    """Files a clean failure must not leave: temporaries, unreadable JSON, broken .keras zips."""
    problems = []
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        name = path.name
        if name.startswith(".") and ("tmp" in name or name.endswith(".part")) or name.endswith((".tmp", ".part")):
            problems.append(f"temporary {path.relative_to(root)}")
        elif name.endswith(".json") and path.stat().st_size:
            try:
                json.loads(path.read_text())
            except ValueError:
                problems.append(f"truncated {path.relative_to(root)}")
        elif name.endswith(".keras") and not zipfile.is_zipfile(path):
            problems.append(f"truncated {path.relative_to(root)}")
        elif path.stat().st_size == 0 and name not in ("run.lock",):
            problems.append(f"empty {path.relative_to(root)}")
    for path in root.rglob("*"):
        if path.is_dir() and (path.name.startswith(".tmp-") or ".tmp" in path.name):
            problems.append(f"temporary directory {path.relative_to(root)}")
    return problems


def _full_disk_case(name: str, size: str, command: Callable[[Context, Path], list], *,
                    clean: Callable[[Path], list[str]] = half_written, fill: bool = False) -> Case:
    """Run a command (fresh process) writing into a tmpfs of ``size``: it must fail with one clear
    line (no traceback) and leave no half-written file."""
    def run(context: Context) -> Outcome:
        mount = context.scratch(f"tinyfs-{name}") / "mnt"
        try:
            with tiny_filesystem(mount, size):
                if fill:
                    with contextlib.suppress(OSError):
                        (mount / "filler").write_bytes(b"\0" * (64 * 2**20))
                argv = command(context, mount)
                result = cli_process(*argv, timeout=400)
                lines = [line for line in result.err.splitlines() if line.strip()]
                if result.code == 0:
                    return skipped(f"the command fitted into {size}: nothing to observe")
                if "Traceback" in result.err:
                    return failed(f"traceback: {short(last_line(result.err))}")
                if len(lines) != 1:
                    return failed(f"exit {result.code} with {len(lines)} stderr lines: {short(' | '.join(lines[-3:]))}")
                if "space" not in lines[0].lower():
                    return failed(f"the error does not say the disk is full: {short(lines[0])}")
                problems = clean(mount)
                if problems:
                    return failed(f"one line ({short(lines[0], 100)}) but left {problems[:4]}")
                return passed(short(lines[0], 160))
        except OSError as error:
            return skipped(f"cannot mount a tmpfs here: {error}")
    return Case("tiny_fs", name, run, needs=frozenset({"run", "subprocess", "tf"}), quick=name == "export_into_256k")


def _no_numeric_versions(root: Path) -> list[str]:
    problems = half_written(root)
    for model_dir in (p for p in root.iterdir() if p.is_dir()):
        problems += [f"version {v}" for v in incomplete_versions(model_dir)]
        problems += [f"hidden {h}" for h in hidden_entries(model_dir)]
    return problems


def tiny_fs_cases() -> list[Case]:
    def train_into(context: Context, mount: Path) -> list:
        return ["train", "--config", context.fixture("cross")["config"], "--output", mount / "run"]

    def export_into(context: Context, mount: Path) -> list:
        return ["export", "--model", context.fixture("run"), "--output", mount / "serving", "--name", "m"]

    def index_into(context: Context, mount: Path) -> list:
        return ["index", "--catalogue", "demo", "--output", mount / "index"]

    def evaluate_into(context: Context, mount: Path) -> list:
        return ["evaluate", "--model", context.fixture("run"), "--dataset", "demo", "--output", mount / "report.json"]

    return [  # sizes chosen to run out at different writes (the whole run takes ~450 KiB, an export ~860 KiB)
        _full_disk_case("train_into_64k", "64k", train_into),
        _full_disk_case("train_into_256k", "256k", train_into),
        _full_disk_case("train_into_400k", "400k", train_into),
        _full_disk_case("export_into_256k", "256k", export_into, clean=_no_numeric_versions),
        _full_disk_case("export_into_700k", "700k", export_into, clean=_no_numeric_versions),
        _full_disk_case("index_into_32k", "32k", index_into),
        _full_disk_case("index_into_80k", "80k", index_into),
        _full_disk_case("evaluate_report_into_a_full_disk", "64k", evaluate_into, fill=True),
    ]


# == running and reporting ==========================================================================
BUILDERS = {"malformed_inputs": malformed_input_cases, "config_fuzz": config_fuzz_cases,
            "kill_resume": kill_resume_cases, "export": export_cases, "serving_fuzz": serving_cases,
            "search": search_cases, "download": download_cases, "tiny_fs": tiny_fs_cases}
#: Fixtures the fast test may use: built without TensorFlow or a subprocess.
CHEAP_FIXTURES = {"bm25_index"}


def all_cases() -> list[Case]:
    cases = [case for category in CATEGORIES for case in BUILDERS[category]()]
    names = [f"{c.category}/{c.name}" for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate case names: {duplicates[:5]}")
    return cases


def select(cases: list[Case], *, quick: bool = False, only: Iterable[str] = (), match: str | None = None,
           cheap: bool = False) -> list[Case]:
    only = set(only)
    chosen = [c for c in cases if (not quick or c.quick) and (not only or c.category in only)
              and (match is None or re.search(match, f"{c.category}/{c.name}"))]
    if cheap:
        chosen = [c for c in chosen if c.needs <= CHEAP_FIXTURES]
    return chosen


def run_case(case: Case, context: Context) -> Result:
    started = time.perf_counter()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # library warnings of a case; CLI runs capture their own
            outcome = case.fn(context)
    except FixtureError as error:
        outcome = failed(str(error))
    except Exception as error:  # noqa: BLE001 - a harness or toolkit exception is a failed case, with where
        where = traceback.extract_tb(error.__traceback__)[-1]
        outcome = failed(f"case raised {type(error).__name__}: {short(str(error), 160)} "
                         f"({Path(where.filename).name}:{where.lineno})")
    return Result(case, outcome, time.perf_counter() - started)


def run_all(cases: list[Case], root: Path, *, progress: bool = True, reuse: bool = False) -> list[Result]:
    context = Context(root, reuse)
    context.selected = cases
    undo = install_logging()
    try:
        if any("tf" in c.needs for c in cases):  # imported once up front, so no case's time includes it
            import_tensorflow_quietly()
        results = []
        for number, case in enumerate(cases, start=1):
            result = run_case(case, context)
            results.append(result)
            if progress and (result.outcome.status == "fail" or result.seconds > 5 or number % 50 == 0):
                print(f"[{number}/{len(cases)}] {result.outcome.status.upper():4} {case.category}/{case.name} "
                      f"({result.seconds:.1f} s) {short(result.outcome.reason, 140)}", flush=True)
    finally:
        undo()
    return results


def import_tensorflow_quietly() -> None:
    """``import tensorflow`` as the CLI imports it (:func:`semmatch_tf.import_tensorflow`: TensorFlow's
    C++ start-up lines kept off descriptor 2), unless ``TF_CPP_MIN_LOG_LEVEL`` asks to see them."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        import tensorflow  # noqa: F401
        return
    semmatch_tf.import_tensorflow()


def summary(results: list[Result]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        for key in (result.case.category, "total"):
            row = counts.setdefault(key, {"cases": 0, "passed": 0, "failed": 0, "skipped": 0})
            row["cases"] += 1
            row[{"pass": "passed", "fail": "failed", "skip": "skipped"}[result.outcome.status]] += 1
    return counts


def records_of(results: list[Result], counts: dict) -> list[dict]:
    records = []
    for dataset, row in counts.items():
        for metric in ("cases", "passed", "failed", "skipped"):
            records.append(record("reliability", dataset, "-", "semmatch-tf", metric, row[metric]))
    kills = [r for r in results if r.case.kill]
    if kills:
        records.append(record("reliability", "kill_resume", "-", "semmatch-tf", "runs_differing_from_unkilled",
                              sum(r.outcome.differs for r in kills)))
    return records


def print_report(results: list[Result], counts: dict, seconds: float) -> None:
    print(f"\n{'category':<18} {'cases':>6} {'passed':>7} {'failed':>7} {'skipped':>8} {'seconds':>8}")
    for category in [*CATEGORIES, "total"]:
        if category in counts:
            row = counts[category]
            spent = sum(r.seconds for r in results if category in (r.case.category, "total"))
            print(f"{category:<18} {row['cases']:>6} {row['passed']:>7} {row['failed']:>7} {row['skipped']:>8} "
                  f"{spent:>8.1f}")
    kills = [r for r in results if r.case.kill]
    if kills:
        print(f"kill cases whose resumed run differs from the unkilled one: {sum(r.outcome.differs for r in kills)}"
              f" of {len(kills)}")
    for status, title in (("fail", "Failures"), ("skip", "Skipped")):
        chosen = [r for r in results if r.outcome.status == status]
        if chosen:
            print(f"\n{title} ({len(chosen)}):")
            width = max(len(f"{r.case.category}/{r.case.name}") for r in chosen)
            for r in chosen:
                print(f"  {f'{r.case.category}/{r.case.name}':<{width}}  {r.outcome.reason}")
    print(f"\nwall time {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a representative subset (< 2 minutes)")
    parser.add_argument("--dry", action="store_true", help="print the records instead of appending them")
    parser.add_argument("--only", action="append", default=[], choices=CATEGORIES, help="only these categories")
    parser.add_argument("--match", help="only cases whose category/name matches this regular expression")
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--show-passes", action="store_true", help="also print every passed case with its reason")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    parser.add_argument("--reuse-fixtures", action="store_true",
                        help="with --keep: reuse the trained reference runs of an earlier run there")
    parser.add_argument("--serving-child", nargs=3, metavar=("CROSS_DIR", "BI_DIR", "NAMES_JSON"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serving_child:
        cross, bi, names = args.serving_child
        serving_child(cross, bi, json.loads(Path(names).read_text()))
        return 0
    cases = select(all_cases(), quick=args.quick, only=args.only, match=args.match)
    if args.list:
        for case in cases:
            print(f"{case.category}/{case.name}  needs={sorted(case.needs)}{'  quick' if case.quick else ''}")
        print(f"{len(cases)} cases")
        return 0
    started = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(args.keep / "cases", ignore_errors=True)
        results = run_all(cases, args.keep, reuse=args.reuse_fixtures)
    else:
        with tempfile.TemporaryDirectory(prefix="semmatch-faults-") as root:
            results = run_all(cases, Path(root))
    seconds = time.perf_counter() - started
    counts = summary(results)
    if args.show_passes:
        for r in results:
            if r.outcome.status == "pass":
                print(f"  pass {r.case.category}/{r.case.name}: {r.outcome.reason}")
    print_report(results, counts, seconds)
    partial = args.quick or args.only or args.match
    if partial and not args.dry:
        print("(a subset: records not published; use --dry to see them)")
    else:
        publish(records_of(results, counts), dry=args.dry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
