"""Loaders for public query–product judgement sets and any CSV/TSV/JSONL/Parquet of pairs.

Every loader returns a :class:`PairDataset` in the canonical schema. Bad input never yields partial
data: an empty or header-only file, a UTF-16/32 file, a missing column, an unknown label, an empty
text or id, a JSON number or list where text belongs, undecodable bytes or a malformed line raise
:class:`DataFormatError` naming the file, the 1-based data row, the field and (when not UTF-8) the
encoding. All text files go through one reader (``read_text``); ``PairDataset.source`` records
each file read and its encoding.

Formats (``load_dataset(format, path, **options)``):

=============  ==========================================================================
home_depot     Kaggle Home Depot search relevance: CSV (UTF-8, else latin-1), mean grade 1.0-3.0
qbqtc          CLUE QBQTC: JSON lines, labels "0"/"1"/"2" (Chinese web search)
lcqmc          LCQMC: TSV without header (sentence1, sentence2, label 0/1)
bq_corpus      BQ corpus: CSV with a UTF-8 BOM, header sentence1,sentence2,label
atec           ATEC 2018: TSV without header (id, s1, s2, label), BOMs on line 1, CRLF
jsts           JGLUE JSTS: JSON lines, float label 0-5 (Japanese)
stsb_multi_mt  STSb Multi MT: CSV without header (sentence1, sentence2, score 0-5), language from
               the file name (stsb-zh-dev.csv) or the ``language`` option
wands          Wayfair WANDS: directory with product.csv, query.csv, label.csv (tab-separated)
esci           Amazon Shopping Queries (ESCI): directory with the examples + products Parquet
generic        any CSV/TSV/JSONL/Parquet with a column mapping
=============  ==========================================================================
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from semmatch_tf.data.errors import DataFormatError
from semmatch_tf.data.language import detect_language
from semmatch_tf.data.readers import WIDE_BOMS  # noqa: F401 (re-exported: the CLI's own reader uses it)
from semmatch_tf.data.readers import (class_column, describe_value, id_column, number_column, pair_dataset,
                                      read_delimited, read_jsonl, read_parquet, require_columns, text_column)
from semmatch_tf.data.schema import LabelScheme, PairDataset, text_key
from semmatch_tf.data.demo import load_demo

GRADED_3 = LabelScheme(("irrelevant", "partial", "exact"), (1.0, 2.0, 3.0), (1.0, 3.0))
QBQTC_LABELS = LabelScheme(("poor", "somewhat", "high"), (0.0, 1.0, 2.0), (0.0, 2.0))
BINARY = LabelScheme(("different", "same"), (0.0, 1.0), (0.0, 1.0))
JSTS_LABELS = LabelScheme(tuple(str(i) for i in range(6)), tuple(float(i) for i in range(6)), (0.0, 5.0))
WANDS_LABELS = LabelScheme(("irrelevant", "partial", "exact"), (0.0, 1.0, 2.0), (0.0, 2.0))
#: ESCI gains from the Shopping Queries paper (Reddy et al., 2022): E 1.0, S 0.1, C 0.01, I 0.
ESCI_LABELS = LabelScheme(("irrelevant", "complement", "substitute", "exact"), (0.0, 0.01, 0.1, 1.0), (0.0, 1.0))
ESCI_CODES = {"I": 0, "C": 1, "S": 2, "E": 3}
ESCI_LOCALE_LANGUAGE = {"us": "en", "es": "es", "jp": "ja"}

log = logging.getLogger(__name__)


# -- public sets -------------------------------------------------------------------------------------
def load_home_depot(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """Home Depot (search_term -> product_title; relevance = raters' mean grade 1.0-3.0).

    Kaggle's file is latin-1; a re-saved UTF-8 copy is read as UTF-8 (latin-1 is only the
    fallback when the bytes are not valid UTF-8). ``source`` records which was used.
    """
    path = Path(path)
    frame = read_delimited(path, sep=",", header=True, fallback="latin-1", limit=limit)
    require_columns(frame, ("product_uid", "product_title", "search_term", "relevance"), path)
    grades = number_column(frame, "relevance", path, 1.0, 3.0)
    queries = text_column(frame, "search_term", path)
    return pair_dataset("home_depot", GRADED_3, [frame], query=queries, product=text_column(frame, "product_title", path),
                    label=GRADED_3.class_of_grade(grades), grade=grades, language="en",
                    product_id=id_column(frame, "product_uid", path), query_id=_query_ids(queries))


def _query_ids(queries: Sequence[str]) -> list[str]:
    """Stable ids for query strings: equal :func:`~semmatch_tf.data.schema.text_key`, equal id (the
    sets give no query ids)."""
    codes, _ = pd.factorize(pd.Series([text_key(q) for q in queries]))
    return [f"q{c}" for c in codes]


def load_qbqtc(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """QBQTC (query -> web page title, labels "0"/"1"/"2")."""
    path = Path(path)
    frame = read_jsonl(path, limit)
    require_columns(frame, ("query", "title", "label"), path)
    labels = class_column(frame, "label", path, {"0": 0, "1": 1, "2": 2})
    queries = text_column(frame, "query", path)
    return pair_dataset("qbqtc", QBQTC_LABELS, [frame], query=queries, product=text_column(frame, "title", path), label=labels,
                    grade=labels.astype(float), language="zh", query_id=_query_ids(queries))


def _sentence_pairs(name: str, path: Path, frame: pd.DataFrame, language: str, row_offset: int = 1) -> PairDataset:
    require_columns(frame, ("sentence1", "sentence2", "label"), path)
    labels = class_column(frame, "label", path, {"0": 0, "1": 1}, row_offset)
    first = text_column(frame, "sentence1", path, row_offset)
    return pair_dataset(name, BINARY, [frame], query=first, product=text_column(frame, "sentence2", path, row_offset),
                    label=labels, grade=labels.astype(float), language=language, query_id=_query_ids(first))


def load_lcqmc(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """LCQMC (question paraphrase; TSV sentence1, sentence2, label)."""
    path = Path(path)
    frame = read_delimited(path, sep="\t", header=False, names=("sentence1", "sentence2", "label"), limit=limit)
    return _sentence_pairs("lcqmc", path, frame, "zh")


def load_bq_corpus(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """BQ corpus (bank question equivalence; CSV with BOM and header)."""
    path = Path(path)
    return _sentence_pairs("bq_corpus", path, read_delimited(path, sep=",", header=True, limit=limit), "zh")


def load_atec(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """ATEC (fintech question similarity; TSV id, s1, s2, label; BOMs on line 1; CRLF)."""
    path = Path(path)
    frame = read_delimited(path, sep="\t", header=False, names=("id", "sentence1", "sentence2", "label"), limit=limit)
    return _sentence_pairs("atec", path, frame, "zh")


def load_jsts(path: str | Path, *, limit: int | None = None) -> PairDataset:
    """JGLUE JSTS (Japanese STS; float similarity 0-5 kept as the grade, class = rounded)."""
    path = Path(path)
    frame = read_jsonl(path, limit)
    require_columns(frame, ("sentence1", "sentence2", "label"), path)
    grades = number_column(frame, "label", path, 0.0, 5.0)
    first = text_column(frame, "sentence1", path)
    return pair_dataset("jsts", JSTS_LABELS, [frame], query=first, product=text_column(frame, "sentence2", path),
                    label=JSTS_LABELS.class_of_grade(grades), grade=grades, language="ja",
                    query_id=_query_ids(first))


def load_stsb_multi_mt(path: str | Path, *, limit: int | None = None, language: str | None = None) -> PairDataset:
    """STSb Multi MT (sentence similarity 0-5, English and machine translations; rows aligned
    across languages, so row ``i`` of every language file is the same pair)."""
    path = Path(path)
    if language is None:
        parts = path.stem.split("-")
        if len(parts) < 2 or parts[0] != "stsb":
            raise DataFormatError(path, "cannot tell the language from the file name (expected stsb-LANG-SPLIT.csv); "
                                        "pass the option language=LANG")
        language = parts[1]
    frame = read_delimited(path, sep=",", header=False, names=("sentence1", "sentence2", "score"), limit=limit)
    grades = number_column(frame, "score", path, 0.0, 5.0)
    first = text_column(frame, "sentence1", path)
    return pair_dataset("stsb_multi_mt", JSTS_LABELS, [frame], query=first, product=text_column(frame, "sentence2", path),
                    label=JSTS_LABELS.class_of_grade(grades), grade=grades, language=language,
                    query_id=_query_ids(first))


def load_wands(path: str | Path, *, limit: int | None = None, product_fields: Sequence[str] = ("product_name",)) -> PairDataset:
    """WANDS (Wayfair): ``product.csv``, ``query.csv``, ``label.csv`` (all tab-separated) in ``path``.

    ``product_fields`` chooses the product text (joined with " | "), e.g. add "product_class".
    """
    folder = Path(path)
    labels = read_delimited(folder / "label.csv", sep="\t", header=True, limit=limit)
    require_columns(labels, ("query_id", "product_id", "label"), folder / "label.csv")
    queries = read_delimited(folder / "query.csv", sep="\t", header=True)
    require_columns(queries, ("query_id", "query"), folder / "query.csv")
    products = read_delimited(folder / "product.csv", sep="\t", header=True)
    require_columns(products, ("product_id", *product_fields), folder / "product.csv")
    classes = class_column(labels, "label", folder / "label.csv", {"Irrelevant": 0, "Partial": 1, "Exact": 2})
    query_text = _lookup(labels, "query_id", queries.set_index("query_id")["query"], folder / "label.csv")
    product_text = products[list(product_fields)].agg(" | ".join, axis=1)
    product_text.index = products["product_id"]
    titles = _lookup(labels, "product_id", product_text, folder / "label.csv")
    frame = pd.DataFrame({"query": query_text, "product": titles})
    return pair_dataset("wands", WANDS_LABELS, [labels, queries, products],
                    query=text_column(frame, "query", folder / "query.csv"),
                    product=text_column(frame, "product", folder / "product.csv"), label=classes,
                    grade=classes.astype(float), language="en", query_id=id_column(labels, "query_id", folder / "label.csv"),
                    product_id=id_column(labels, "product_id", folder / "label.csv"))


def _lookup(frame: pd.DataFrame, key: str, table: pd.Series, path: Path) -> list[str]:
    """Resolve ids through ``table``; an id with no entry names its row."""
    table = table[~table.index.duplicated()]
    values = frame[key].map(table)
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataFormatError(path, f"{key} {frame[key].iloc[row]!r} has no entry", row=row + 1, field=key)
    return values.astype(str).tolist()


def load_esci(path: str | Path, *, limit: int | None = None, locales: Sequence[str] = ("us", "es", "jp"),
              split: str | None = "train", small_version: bool = True) -> PairDataset:
    """Amazon Shopping Queries (ESCI): examples + products Parquet in ``path``.

    ``small_version`` keeps the Task 1 (reduced) set; ``split`` is "train", "test" or None for both.
    """
    folder = Path(path)
    examples_path = folder / "shopping_queries_dataset_examples.parquet"
    products_path = folder / "shopping_queries_dataset_products.parquet"
    examples = read_parquet(examples_path)
    require_columns(examples, ("query", "query_id", "product_id", "product_locale", "esci_label",
                                "small_version", "split"), examples_path)
    keep = examples["product_locale"].isin(list(locales))
    if small_version:
        keep &= examples["small_version"].astype(int) == 1
    if split is not None:
        keep &= examples["split"] == split
    examples = examples[keep].reset_index(drop=True)
    if examples.empty:
        raise DataFormatError(examples_path, f"no examples for locales {list(locales)}, split {split!r}, "
                                             f"small_version {small_version}")
    if limit is not None:
        examples = examples.head(limit)
    products = read_parquet(products_path)
    require_columns(products, ("product_id", "product_locale", "product_title"), products_path)
    merged = examples.merge(products[["product_id", "product_locale", "product_title"]],
                            on=["product_id", "product_locale"], how="left")
    missing = merged["product_title"].isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataFormatError(products_path, f"no product {merged['product_id'].iloc[row]!r} in locale "
                                             f"{merged['product_locale'].iloc[row]!r}", row=row + 1, field="product_id")
    classes = class_column(merged, "esci_label", examples_path, ESCI_CODES)
    return pair_dataset("esci", ESCI_LABELS, [examples, products], query=text_column(merged, "query", examples_path),
                    product=text_column(merged, "product_title", products_path), label=classes,
                    grade=np.asarray(ESCI_LABELS.grades)[classes],
                    language=merged["product_locale"].map(ESCI_LOCALE_LANGUAGE).tolist(),
                    query_id=id_column(merged, "query_id", examples_path),
                    product_id=id_column(merged, "product_id", examples_path))


def load_generic(path: str | Path, *, query: str = "query", product: str = "product", label: str = "label",
                 query_id: str | None = None, product_id: str | None = None, language: str | None = None,
                 names: Sequence[str] | None = None, grade_range: Sequence[float] | None = None,
                 grades: Sequence[float] | None = None, sep: str | None = None, limit: int | None = None,
                 encoding: str = "utf-8") -> PairDataset:
    """Any CSV/TSV/JSONL/Parquet of pairs with a column mapping.

    Labels are either class *names* (``names``, ordered worst to best; grades 0..k-1 unless
    ``grades`` is given) or numeric *grades* in ``grade_range`` (classes = the integer grades of the
    range). ``language`` is a column name, a fixed code ("en"), or None to detect it per row.
    """
    path = Path(path)
    frame = _read_any(path, sep, limit, encoding)
    require_columns(frame, [c for c in (query, product, label, query_id, product_id) if c], path)
    queries = text_column(frame, query, path)
    if names is not None:
        scheme = LabelScheme(tuple(names), tuple(grades or range(len(names))),
                             (float(min(grades or [0])), float(max(grades or [len(names) - 1]))))
        classes = class_column(frame, label, path, {str(n): i for i, n in enumerate(names)})
        grade_values = np.asarray(scheme.grades)[classes]
    else:
        low, high = (float(grade_range[0]), float(grade_range[1])) if grade_range else (0.0, 1.0)
        steps = np.arange(np.ceil(low), np.floor(high) + 1)
        scheme = LabelScheme(tuple(f"{g:g}" for g in steps), tuple(float(g) for g in steps), (low, high))
        grade_values = number_column(frame, label, path, low, high)
        classes = scheme.class_of_grade(grade_values)
    products = text_column(frame, product, path)
    if language is not None and language in frame.columns:
        languages = text_column(frame, language, path)
    elif language is not None:
        languages = language
    else:
        languages = [detect_language(f"{q} {p}") for q, p in zip(queries, products)]
    return pair_dataset(path.stem, scheme, [frame], query=queries, product=products, label=classes, grade=grade_values,
                    language=languages, query_id=id_column(frame, query_id, path) if query_id else _query_ids(queries),
                    product_id=id_column(frame, product_id, path) if product_id else None)


def _read_any(path: Path, sep: str | None, limit: int | None, encoding: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = read_parquet(path)
        return frame.head(limit) if limit else frame
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path, limit)
    if sep is None:
        sep = "\t" if suffix in (".tsv", ".txt") else ","
    return read_delimited(path, sep=sep, header=True, encoding=encoding, limit=limit)


LOADERS: dict[str, Callable[..., PairDataset]] = {
    "home_depot": load_home_depot, "qbqtc": load_qbqtc, "lcqmc": load_lcqmc, "bq_corpus": load_bq_corpus,
    "atec": load_atec, "jsts": load_jsts, "stsb_multi_mt": load_stsb_multi_mt, "wands": load_wands, "esci": load_esci, "generic": load_generic,
}
FORMATS = tuple(sorted(LOADERS))
#: Formats whose path is a directory of several files (every other format reads one file).
DIRECTORY_FORMATS = {"wands": "product.csv, query.csv and label.csv",
                     "esci": "shopping_queries_dataset_examples.parquet and shopping_queries_dataset_products.parquet"}


def _known_format(format: str) -> None:
    if format != "demo" and format not in LOADERS:
        raise ValueError(f"unknown dataset format {format!r}; choose one of {list(FORMATS) + ['demo']}")


def loader_options(format: str) -> tuple[str, ...]:
    """The keyword options a format's loader accepts (``limit`` for every format)."""
    _known_format(format)
    if format == "demo":
        return ("limit",)
    parameters = inspect.signature(LOADERS[format]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def check_options(format: str, options: dict) -> None:
    """Refuse options the format's loader does not take, naming the ones it does, and values of
    the wrong type (a list where a column name belongs would fail deep inside pandas)."""
    accepted = loader_options(format)
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset format {format!r}; it accepts {list(accepted)}")
    for name, problem in option_problems(format, options).items():
        raise ValueError(f"option {name} for dataset format {format!r}: {problem}")


def option_problems(format: str, options: dict) -> dict[str, str]:
    """``{option: what is wrong with its value}`` for the known options of ``format`` (types from
    the loader's signature; for ``generic`` also the label options' consistency)."""
    if format in LOADERS:
        annotations = {name: parameter.annotation for name, parameter in
                       inspect.signature(LOADERS[format]).parameters.items() if isinstance(parameter.annotation, str)}
    else:
        annotations = {"limit": "int | None"}
    problems = {}
    for name, value in options.items():
        problem = _option_value_problem(annotations[name], value) if name in annotations else None
        if problem:
            problems[name] = problem
    if format == "generic" and not problems:
        names, grades, grade_range = options.get("names"), options.get("grades"), options.get("grade_range")
        if names is not None and (not names or len(set(names)) != len(names)):
            problems["names"] = f"must be distinct class names, worst first, got {describe_value(names)}"
        elif grades is not None and (names is None or len(grades) != len(names)):
            problems["grades"] = "needs names, one grade per class name"
        if grade_range is not None and (len(grade_range) != 2 or not grade_range[0] < grade_range[1]):
            problems["grade_range"] = f"must be [low, high] with low < high, got {describe_value(grade_range)}"
    if options.get("limit") is not None and "limit" not in problems and options["limit"] < 1:
        problems["limit"] = f"must be a positive number of rows, got {options['limit']}"
    return problems


def _option_value_problem(annotation: str, value) -> str | None:
    """None when ``value`` fits a loader annotation such as ``str | None`` or ``Sequence[float]``."""
    for alternative in (a.strip() for a in annotation.split("|")):
        if alternative == "None" and value is None:
            return None
        if alternative == "str" and isinstance(value, str):
            return None
        if alternative == "bool" and isinstance(value, bool):
            return None
        if alternative == "int" and isinstance(value, int) and not isinstance(value, bool):
            return None
        if alternative.startswith("Sequence[") and isinstance(value, (list, tuple)):
            inner = alternative[len("Sequence["):-1]
            if inner == "str" and all(isinstance(v, str) for v in value):
                return None
            if inner == "float" and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                                        for v in value):
                return None
    wanted = annotation.replace("Sequence[str]", "a list of strings").replace("Sequence[float]", "a list of numbers")
    return f"expected {wanted.replace(' | None', ' or null')}, got {describe_value(value)}"


def check_source(format: str, path: str | Path) -> None:
    """Refuse a path of the wrong kind before reading: a directory for a one-file format, a file
    for a directory format (WANDS, ESCI), or nothing at all."""
    _known_format(format)
    path = Path(path)
    if format == "demo":
        return
    if not path.exists():
        if path.is_symlink():
            raise DataFormatError(path, "is a symbolic link to nothing (dangling, or a loop)")
        raise DataFormatError(path, f"{'directory' if format in DIRECTORY_FORMATS else 'file'} not found")
    if format in DIRECTORY_FORMATS and not path.is_dir():
        raise DataFormatError(path, f"is a file; format {format!r} reads a directory with {DIRECTORY_FORMATS[format]}")
    if format not in DIRECTORY_FORMATS and path.is_dir():
        raise DataFormatError(path, f"is a directory; format {format!r} reads one data file")


def load_dataset(format: str, path: str | Path, **options) -> PairDataset:
    """Load judged pairs of a named format.

    Args:
        format: a name of the table in the module docstring (``home_depot``, ``lcqmc``, ...,
            ``generic``), or ``demo`` for the embedded demo set (``path`` is then ignored).
        path: the data file (a directory for ``wands`` and ``esci``).
        **options: the format's options, such as ``limit`` (read the first N pairs) or the
            column mapping of ``generic``; an option the format does not take is refused.

    Returns:
        A :class:`PairDataset` in the canonical schema; bad input raises :class:`DataFormatError`
        naming the file, row and field.

    Examples:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
        >>> _ = path.write_text("红色连衣裙\\t红色长裙\\t1\\n蓝色牛仔裤\\tUSB 数据线\\t0\\n", encoding="utf-8")
        >>> data = load_dataset("lcqmc", path)
        >>> len(data), data.labels.names
        (2, ('different', 'same'))
    """
    check_options(format, options)
    if format == "demo":
        data = load_demo()
        return data.head(options["limit"]) if options.get("limit") else data
    check_source(format, path)
    options = {k: v for k, v in options.items() if not (k == "limit" and v is None)}
    return LOADERS[format](path, **options)
