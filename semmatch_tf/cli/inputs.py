"""The CLI's own inputs, checked before TensorFlow loads: ``--set``/``--option`` assignments,
data paths, and text-line files (query<TAB>product pairs, or one text per line) whose bad line
or byte is named."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator


def _parse_assignments(items: list[str], flag: str) -> dict:
    import yaml

    from semmatch_tf.training.config_schema import load_yaml, yaml_problem

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


def _check_data_files(config, extra: bool = True) -> None:
    """The config's data files exist and are of the right kind (a file, or a directory for WANDS
    and ESCI): checked before TensorFlow loads and before the run directory is created.
    ``extra=False`` skips ``data.extra_train`` (files ``teacher-label`` is about to write)."""
    from semmatch_tf.data.loaders import check_source
    from semmatch_tf.training.config import resolve_data_path

    data = config.data
    for path in data.extra_train if extra else ():  # graded pairs, e.g. from `semmatch-tf teacher-label`
        check_source("generic", resolve_data_path(path))
    if data.format == "demo":
        return
    for path in (data.path, data.validation_path, data.test_path):
        if path is not None:
            check_source(data.format, resolve_data_path(path))


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


def _iter_pairs(path: Path | None) -> Iterator[list[str]]:
    """query<TAB>product lines of ``path`` (stdin when None), one at a time (a file of any size in
    constant memory); a bad line or byte names its line.

    A file must hold at least one pair; an empty query or product, a NUL byte or UTF-16/32 text is
    refused with its line (stdin with no lines gives no pairs: a filter that matched nothing)."""
    return _iter_rows(path, ("query", "product"))


def _read_texts(path: Path | None) -> list[str]:
    """One text per line of ``path`` (stdin when None), checked as :func:`_iter_pairs` checks pairs."""
    return [row[0] for row in _iter_rows(path, ("text",))]


def _iter_rows(path: Path | None, fields: tuple[str, ...]) -> Iterator[list[str]]:
    """Non-blank lines of ``path`` (stdin when None) split into ``fields`` (tab-separated when more
    than one), read one line at a time; a bad line or byte names its line."""
    name, layout = path or "<stdin>", "<TAB>".join(fields)
    count = 0
    for number, line in _numbered_lines(path, layout):
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
        count += 1
        yield values
    if path is not None and not count:
        raise ValueError(f"{name}: no {layout} lines")


def _numbered_lines(path: Path | None, layout: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` with universal newlines (``\\n``, ``\\r\\n``, ``\\r``), as ``open()`` reads."""
    if path is None:
        yield from enumerate((line.rstrip("\n") for line in sys.stdin), start=1)
        return
    if path.is_dir():
        raise ValueError(f"--input {path}: is a directory, expected a {layout} file")
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise ValueError(f"--input {path}: file not found") from None
    except OSError as error:
        raise ValueError(f"--input {path}: cannot read: {error.strerror or error}") from None
    with handle:
        _check_encoding(path, handle.read(1 << 16))
        handle.seek(0)
        number = 0
        for raw in handle:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}, line {number + 1}: not UTF-8 text (byte {raw[error.start]:#04x})") from None
            for piece in text.removesuffix("\n").removesuffix("\r").replace("\r\n", "\n").split("\r"):
                number += 1
                yield number, piece


def _check_encoding(path: Path, head: bytes) -> None:
    """Refuse UTF-16/32 text (with or without a byte-order mark) from the file's first bytes."""
    from semmatch_tf.data.loaders import WIDE_BOMS

    for bom, encoding in WIDE_BOMS:
        if head.startswith(bom):
            raise ValueError(f"{path}: file is {encoding} (byte-order mark {bom.hex(' ')}), not UTF-8; "
                             f"convert it, e.g. iconv -f {encoding} -t UTF-8")
    if head.count(b"\0") * 4 > len(head):
        raise ValueError(f"{path}: NUL bytes throughout: probably UTF-16 or UTF-32 without a byte-order "
                         "mark; convert it to UTF-8")


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


def _check_export_target(args) -> None:
    """``--version`` positive and ``--name`` one TF Serving accepts, before any model loads."""
    if args.version is not None and args.version < 1:
        raise ValueError(f"--version must be a positive integer, got {args.version}")
    from semmatch_tf.export.versions import check_model_name

    check_model_name(args.name)


PREDICTION_FORMATS = (".jsonl", ".csv", ".parquet")  # predict --output, by suffix


def _check_prediction_output(path: Path | None) -> None:
    """``predict --output``: a known format by its suffix, in an existing directory, checked before
    any model loads."""
    if path is None:
        return
    if path.suffix.lower() not in PREDICTION_FORMATS:
        raise ValueError(f"--output {path}: unknown format {path.suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(PREDICTION_FORMATS)}")
    if path.is_dir():
        raise ValueError(f"--output {path}: is a directory, expected a file")
    if not path.parent.is_dir():
        raise ValueError(f"--output {path}: the directory {path.parent} does not exist")
