"""Query understanding learned from one catalogue: correct, normalise, extract attributes, find senses.

:class:`QueryUnderstanding` bundles a :class:`~semmatch_tf.query.spelling.SpellingCorrector` (the
catalogue's vocabulary, weighted by training queries), the unit normaliser of
:mod:`semmatch_tf.text.units` and an :class:`~semmatch_tf.query.attributes.AttributeExtractor`
(brands and product types learned from the titles). It is built once from a catalogue, saved as one
JSON file beside a search index (``semmatch-tf index --query-understanding``) and used by
:class:`semmatch_tf.retrieval.Searcher` before retrieval: BM25 sees the corrected, unit-normalised
text (against unit-normalised titles), the dense encoder and the re-ranker the corrected text, the
query's attributes boost agreeing products and push down contradicting ones, and ambiguous queries
get their senses (:mod:`semmatch_tf.query.senses`) and a diversified top 10.

What each language gets: spelling correction and attributes for Latin-script words (the catalogue's
own vocabulary, so Spanish titles give Spanish words); unit normalisation for ASCII digits with
Latin unit words; Chinese, Japanese, Korean and other scripts pass through unchanged (no pinyin or
character-confusion correction), and their queries still get senses from the results.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from semmatch_tf.atomic import write_directory_atomically
from semmatch_tf.query.attributes import ATTRIBUTES, AttributeExtractor, Gazetteer, agreement, key
from semmatch_tf.query.spelling import (Correction, SpellingConfig, SpellingCorrector, apply_corrections, title_bigrams,
                                        word_counts)
from semmatch_tf.text.units import normalize_units

FORMAT_VERSION = 1
FILE = "query_understanding.json"
MAX_QUERY_CHARACTERS = 2000
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@dataclasses.dataclass(frozen=True)
class QueryConfig:
    """Settings of :class:`QueryUnderstanding` (validated; ``from_dict`` refuses unknown keys).

    Args:
        spelling: the corrector's :class:`~semmatch_tf.query.spelling.SpellingConfig`.
        correct: apply spelling corrections (False: only report none).
        normalise_units: BM25 sees unit-normalised text (titles are indexed the same way).
        brand_min_titles / type_min_titles: titles a brand prefix / a product type needs.
        agree_boost / contradict_penalty: added to / taken from a candidate's per-query min-max
            normalised first-stage score for each attribute in ``boost_attributes`` that agrees /
            contradicts (0 and 0: no boosts).
        boost_attributes: the attributes that boost.
        sense_depth / sense_min_share: results that vote for senses, and the share a sense needs.
        diversify: re-order an ambiguous query's top results by sense.
    """

    spelling: SpellingConfig = dataclasses.field(default_factory=SpellingConfig)
    correct: bool = True
    normalise_units: bool = True
    brand_min_titles: int = 3
    type_min_titles: int = 3
    agree_boost: float = 0.2  # the weights benchmarks/run_query.py chose on Home Depot validation queries
    contradict_penalty: float = 0.0
    boost_attributes: tuple[str, ...] = ("brand", "type", "colour", "material", "size")
    sense_depth: int = 30
    sense_min_share: float = 0.2
    diversify: bool = True

    def __post_init__(self) -> None:
        for name in ("correct", "normalise_units", "diversify"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"query.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("brand_min_titles", "type_min_titles", "sense_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"query.{name} must be a positive integer, got {value!r}")
        for name in ("agree_boost", "contradict_penalty", "sense_min_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"query.{name} must be in [0, 1], got {value!r}")
        unknown = [a for a in self.boost_attributes if a not in ATTRIBUTES]
        if unknown:
            raise ValueError(f"query.boost_attributes: unknown attribute(s) {unknown}; known: {list(ATTRIBUTES)}")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["boost_attributes"] = list(self.boost_attributes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "QueryConfig":
        if not isinstance(data, dict):
            raise ValueError(f"query config must be a mapping, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"query config: unknown key(s) {unknown}; known: {sorted(fields)}")
        values = dict(data)
        spelling = values.get("spelling", {})
        if isinstance(spelling, dict):
            known = {f.name for f in dataclasses.fields(SpellingConfig)}
            if set(spelling) - known:
                raise ValueError(f"query config: unknown spelling key(s) {sorted(set(spelling) - known)}")
            values["spelling"] = SpellingConfig(**spelling)
        if "boost_attributes" in values:
            values["boost_attributes"] = tuple(values["boost_attributes"])
        return cls(**values)


@dataclasses.dataclass
class Understood:
    """One query, understood: the text each stage searches with and what was found in it."""

    original: str
    corrected: str
    corrections: list[Correction]
    search_text: str
    attributes: dict
    notes: list[str]

    @property
    def did_you_mean(self) -> str | None:
        return self.corrected if self.corrections else None

    def to_dict(self, senses: list[dict] | None = None) -> dict:
        """The JSON-able form (``original, corrected, did_you_mean, attributes, senses`` and more)."""
        return {"original": self.original, "corrected": self.corrected, "did_you_mean": self.did_you_mean,
                "search_text": self.search_text, "corrections": [c.to_dict() for c in self.corrections],
                "attributes": self.attributes, "senses": list(senses or []),
                "ambiguous": len(senses or []) >= 2, "notes": list(self.notes)}


def check_query(query, limit: int = MAX_QUERY_CHARACTERS) -> str:
    """A query as a stripped string; empty, non-text or longer than ``limit`` is a ValueError."""
    if not isinstance(query, str):
        raise ValueError(f"query: expected a string, got {type(query).__name__}")
    text = query.strip()
    if not text:
        raise ValueError("query: empty (nothing to understand)")
    if len(text) > limit:
        raise ValueError(f"query: {len(text)} characters, more than {limit}")
    return text


class QueryUnderstanding:
    """Correct, normalise and read attributes from queries, with what one catalogue knows.

    Build with :meth:`build`; :meth:`analyse` returns an :class:`Understood`, :meth:`understand`
    its JSON-able dict, :meth:`boosts` the attribute boosts of candidate titles.

    Examples:
        >>> import pandas as pd
        >>> catalogue = pd.DataFrame({"product_id": ["1", "2", "3", "4"], "title": [
        ...     "Everbilt 1/2 in. Galvanized Toilet Bolt", "Everbilt Cedar Fence Picket 6 ft.",
        ...     "Glacier Bay Toilet Seat in White", "Glacier Bay Cedar Toilet Seat"]})
        >>> qu = QueryUnderstanding.build(catalogue, config=QueryConfig(spelling=SpellingConfig(min_count=1),
        ...                               brand_min_titles=2, type_min_titles=1))
        >>> found = qu.understand("glacier bay toliet seat 6'")
        >>> found["did_you_mean"], found["search_text"], found["attributes"]["brand"], found["attributes"]["size"]
        ("glacier bay toilet seat 6'", 'glacier bay toilet seat 6 ft', 'Glacier Bay', ['6 ft'])
    """

    def __init__(self, corrector: SpellingCorrector, extractor: AttributeExtractor,
                 config: QueryConfig | None = None) -> None:
        self.corrector, self.extractor = corrector, extractor
        self.config = config or QueryConfig()
        self._title_cache: dict[str, dict] = {}

    @classmethod
    def build(cls, catalogue: pd.DataFrame, queries: Iterable[str] = (), *,
              config: QueryConfig | None = None) -> "QueryUnderstanding":
        """Learn from a catalogue (``title``; ``brand`` used when present) and training queries."""
        config = config or QueryConfig()
        titles = catalogue["title"].astype(str).tolist()
        brands = catalogue["brand"].dropna().astype(str).tolist() if "brand" in catalogue.columns else []
        gazetteer = Gazetteer.learn(titles, brands, min_titles=config.brand_min_titles,
                                    min_type_titles=config.type_min_titles)
        counts = word_counts(titles)
        for word, count in word_counts(list(queries)).items():
            if word in counts:
                counts[word] += int(round(config.spelling.query_weight * count))
        protected = {w for phrase in gazetteer.brands for w in phrase.split()}
        corrector = SpellingCorrector(counts, protected=protected, config=config.spelling, bigrams=title_bigrams(titles))
        return cls(corrector, AttributeExtractor(gazetteer), config)

    # -- one query -----------------------------------------------------------------------------------
    def analyse(self, query: str) -> Understood:
        """Understand one query (see :class:`Understood`); bad input is a one-line ValueError."""
        original = check_query(query)
        notes = []
        if not _LATIN.search(original):
            notes.append("no Latin-script words: spelling is left as typed (correction covers Latin script only)"
                         if _CJK.search(original) or any(c.isalpha() for c in original)
                         else "no letters: nothing to correct")
        corrections = self.corrector.corrections(original) if self.config.correct else []
        corrected = apply_corrections(original, corrections)
        search_text = normalize_units(corrected) if self.config.normalise_units else corrected
        return Understood(original, corrected, corrections, search_text, self.extractor.extract(corrected), notes)

    def understand(self, query: str) -> dict:
        """:meth:`analyse` as a JSON-able dict (senses come from the results: see ``Searcher.understand``)."""
        return self.analyse(query).to_dict()

    # -- titles --------------------------------------------------------------------------------------
    def normalise_title(self, title: str) -> str:
        """A title as BM25 indexes it when units are normalised (the same rules as queries)."""
        return normalize_units(title) if self.config.normalise_units else str(title)

    def title_attributes(self, title: str) -> dict:
        """A title's attributes (kept: search scores the same titles for many queries)."""
        found = self._title_cache.get(title)
        if found is None:
            if len(self._title_cache) > 200_000:
                self._title_cache.clear()
            found = self._title_cache[title] = self.extractor.extract(title, title=True)
        return found

    def agreement_features(self, attributes: dict, titles: Sequence[str]) -> pd.DataFrame:
        """Per title, :func:`~semmatch_tf.query.attributes.agreement` with the query's attributes."""
        return pd.DataFrame([agreement(attributes, self.title_attributes(t)) for t in titles],
                            columns=[f"{a}_{kind}" for a in ATTRIBUTES for kind in ("agree", "contradict")])

    def boosts(self, attributes: dict, titles: Sequence[str]) -> np.ndarray:
        """``agree_boost`` x agreeing minus ``contradict_penalty`` x contradicting boosted attributes."""
        if not titles:
            return np.zeros(0)
        features = self.agreement_features(attributes, titles)
        agree = features[[f"{a}_agree" for a in self.config.boost_attributes]].sum(axis=1).to_numpy(np.float64)
        contradict = features[[f"{a}_contradict" for a in self.config.boost_attributes]].sum(axis=1).to_numpy(np.float64)
        return self.config.agree_boost * agree - self.config.contradict_penalty * contradict

    # -- persistence ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "config": self.config.to_dict(), "counts": self.corrector.counts,
                "protected": sorted(self.corrector.protected), "gazetteer": self.extractor.gazetteer.to_dict(),
                "bigrams": sorted(self.corrector.bigrams) if self.corrector.bigrams is not None else None}

    def save(self, directory: str | Path) -> Path:
        """Write ``directory/query_understanding.json`` (atomically: a temporary sibling, renamed)."""
        data = json.dumps(self.to_dict(), ensure_ascii=False)
        return write_directory_atomically(Path(directory), lambda tmp: (tmp / FILE).write_text(data, encoding="utf-8"))

    @classmethod
    def load(cls, directory: str | Path) -> "QueryUnderstanding":
        """Read a :meth:`save` directory; a missing or corrupt file is a one-line error naming it."""
        path = Path(directory) / FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; rebuild the index with --query-understanding")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version') if isinstance(data, dict) else None!r}")
            config = QueryConfig.from_dict(data["config"])
            counts = {str(w): int(c) for w, c in data["counts"].items()}
            gazetteer = Gazetteer.from_dict(data["gazetteer"])
            protected = [str(w) for w in data["protected"]]
            bigrams = data.get("bigrams")
            bigrams = None if bigrams is None else [str(b) for b in bigrams]
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a readable query-understanding file ({type(error).__name__}: "
                             f"{str(error)[:200]}); rebuild the index") from None
        return cls(SpellingCorrector(counts, protected=protected, config=config.spelling, bigrams=bigrams),
                   AttributeExtractor(gazetteer), config)


def format_understanding(info: dict | None) -> str:
    """The lines a search prints above its results: did you mean, attributes, senses (or nothing).

    Examples:
        >>> print(format_understanding({"did_you_mean": "cedar fence", "attributes": {"type": "fence", "size": ["6 ft"]},
        ...                             "senses": [], "ambiguous": False, "notes": []}))
        did you mean: cedar fence
        attributes: type=fence; size=6 ft
    """
    if not info:
        return ""
    lines = []
    if info.get("did_you_mean"):
        lines.append(f"did you mean: {info['did_you_mean']}")
    attributes = {k: v for k, v in (info.get("attributes") or {}).items() if v not in (None, [], "")}
    if attributes:
        lines.append("attributes: " + "; ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}"
                                                for k, v in attributes.items()))
    if info.get("ambiguous"):
        lines.append("senses: " + ", ".join(f"{s['sense']} {s['share']:.0%}" for s in info["senses"]))
    lines += [f"note: {n}" for n in info.get("notes", []) if not n.startswith("no query understanding")]
    return "\n".join(lines)


__all__ = ["QueryConfig", "QueryUnderstanding", "Understood", "check_query", "format_understanding", "key"]
