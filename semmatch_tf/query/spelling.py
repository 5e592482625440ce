"""Spelling correction learned from the shop's own text (symmetric-delete lookup by symspellpy).

The dictionary is every Latin word of the catalogue's titles with its title count; training queries
may add weight to words the titles already have (never new words: queries are where the typos are,
and "flourescent" is typed more often than some real words). A query word is left alone when it is
a catalogue word or a regular inflection of one ("thermostats", "charming" when "charm" is one; not
"boxs", "driveing", "leadders", which English spells otherwise), a unit word the unit rules know
("millimeter"), holds a digit (model numbers, sizes: the whole token is kept), is shorter than
``min_length``, is a protected term (brands) or is not Latin script (Chinese, Japanese and other
scripts pass through: there is no pinyin or character-confusion model here). An English word the
titles never write (symspellpy's own 82,765-word frequency list) is a *real-word* error only when a
catalogue word one edit away outweighs it: its own English frequency, scaled to the catalogue by the
candidate's, stands as a rival ("ceder" is 200 times rarer than "cedar" and becomes it; "padding" is
not the catalogue's "pudding"; "pray" is as common as "spray" and stays). Otherwise the corrector
considers

* symspellpy's candidates within ``max_edit_distance`` (Damerau-Levenshtein), and
* splitting the word into two catalogue words that the titles also write side by side ("deckover"
  -> "deck over", "kitchenfaucet" -> "kitchen faucet"; "drywall" stays as it is when the catalogue
  has it, and "coversion" is not "covers ion": a confident distance-1 correction comes first),

A catalogue word seen in at most ``rare_count`` titles is treated as a possible typo *in a title*
("ceder", "nickle" occur in a few Home Depot titles): it may still be corrected, at distance 1, to
a word at least ``rare_ratio`` times as frequent.

Candidates are weighed as a noisy-channel speller weighs them: how often the titles use the word
and its plurals ("conditioner" 200 titles, so "condtioners" is "conditioners" though that plural
is in 5), times how likely a typist turns it into the query's word (:mod:`.error_model`: swapped
neighbours, doubled letters, neighbouring keys, vowels are likely; a wrong first letter is not,
so "lense" is "lens", not "dense"), times ``CONTEXT_ODDS`` when the titles write the candidate
beside the word's neighbour in the query ("door dtop" -> "door stop"). The corrector applies the
best candidate only when it is confident: ``confidence`` is its share of all the candidates'
weights (the channel already makes two edits far less likely than one), and must reach
``min_confidence`` with at least ``min_count`` catalogue titles behind the correction. A plural
typed ("curtiins") gets the plural of the singular the titles write ("curtains").

symspellpy (MIT, pure Python) precomputes the deletes of every dictionary word once, so a lookup
is a handful of dictionary probes: well under a millisecond for a query (benchmarks/run_query.py
measures the p99).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Iterable, Mapping

from semmatch_tf.query.error_model import edit_probability
from semmatch_tf.query.morphology import (INFLECTIONS, agree_in_number, is_unit_word, needs_doubling,
                                          regular_inflection)
from semmatch_tf.text.units import fold

WORD = re.compile(r"[a-z]+")
#: Query tokens: runs of Latin letters and digits; only all-letter tokens are ever corrected.
LATIN_TOKEN = re.compile(r"[A-Za-z0-9\u00c0-\u024f]+")
SPLIT_UNITS = frozenset({"ft", "in", "mm", "cm", "oz", "lb"})
SPLIT_MIN_COUNT = 4  # each part of a split needs this many times min_count titles
MAX_CANDIDATES = 12  # the most frequent candidates weighed per word (keeps a lookup well under 1 ms)
CONTEXT_ODDS = 10.0  # a candidate the titles write beside the query word's neighbour is this much likelier
ENGLISH_WORDS_FILE = "frequency_dictionary_en_82_765.txt"


def english_frequencies(min_count: int = 0) -> dict[str, int]:
    """The words of symspellpy's English frequency list (Google Books n-grams x SCOWL), with their counts."""
    from importlib import resources

    frequencies = {}
    text = resources.files("symspellpy").joinpath(ENGLISH_WORDS_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        word, _, count = line.partition(" ")
        if word and int(count or 0) >= min_count:
            frequencies[word] = int(count or 0)
    return frequencies


@dataclasses.dataclass(frozen=True)
class Correction:
    """One word's correction: the word, its replacement, how sure, and why (``edit`` or ``split``)."""

    word: str
    replacement: str
    confidence: float
    kind: str
    distance: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SpellingConfig:
    """Settings of :class:`SpellingCorrector` (validated).

    Args:
        max_edit_distance: largest Damerau-Levenshtein distance considered (1 or 2).
        min_length: words shorter than this are never corrected ("gal", "pvc", "led").
        min_count: catalogue titles the replacement must appear in (each word of a split).
        min_confidence: the share a correction needs among its rivals (see the module docstring).
        distance2_factor: confidence multiplier of a distance-2 correction (1: none; 0.8 left no
            two-edit correction above the 0.9 threshold, and the dev sample's recall gained
            0.653 -> 0.714 at precision 0.941 -> 0.946 without it).
        min_length_distance2: words shorter than this are only corrected at distance 1.
        query_weight: weight of a training query's word count added to a catalogue word's count.
        protect_english: never correct a word of the English word list (see the module docstring).
        rare_count / rare_ratio: a catalogue word in at most ``rare_count`` titles may be corrected to
            a word ``rare_ratio`` times as frequent (0: catalogue words are never corrected).
        unseen_weight: the weight (in catalogue titles x typing odds) of "the word is right and the
            titles lack it", added to the rivals of every correction: raise it for fewer, surer
            corrections (0 by default: on the dev sample it bought precision only with recall).
        correct_real_words: an English word the titles never write ("ceder", "sower", "duel") may
            be corrected one edit away, its own English frequency standing as a rival (see
            :meth:`SpellingCorrector._own_weight`); False: every English word is kept.
    """

    max_edit_distance: int = 2
    min_length: int = 4
    min_count: int = 3
    min_confidence: float = 0.9
    distance2_factor: float = 1.0
    min_length_distance2: int = 6
    query_weight: float = 1.0
    protect_english: bool = True
    rare_count: int = 2
    rare_ratio: float = 50.0
    unseen_weight: float = 0.0
    correct_real_words: bool = True

    def __post_init__(self) -> None:
        if self.max_edit_distance not in (1, 2):
            raise ValueError(f"spelling.max_edit_distance must be 1 or 2, got {self.max_edit_distance!r}")
        for name in ("min_length", "min_count", "min_length_distance2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"spelling.{name} must be a positive integer, got {value!r}")
        for name in ("min_confidence", "distance2_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"spelling.{name} must be in [0, 1], got {value!r}")
        if isinstance(self.rare_count, bool) or not isinstance(self.rare_count, int) or self.rare_count < 0:
            raise ValueError(f"spelling.rare_count must be an integer >= 0, got {self.rare_count!r}")
        if isinstance(self.rare_ratio, bool) or not isinstance(self.rare_ratio, (int, float)) or self.rare_ratio < 1:
            raise ValueError(f"spelling.rare_ratio must be >= 1, got {self.rare_ratio!r}")
        for name in ("query_weight", "unseen_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"spelling.{name} must be >= 0, got {value!r}")


def title_bigrams(texts: Iterable[str]) -> set[str]:
    """Adjacent word pairs of the texts ("deck over"): the splits the catalogue itself writes."""
    pairs: set[str] = set()
    for text in texts:
        words = WORD.findall(fold(str(text)))
        pairs.update(f"{a} {b}" for a, b in zip(words, words[1:]))
    return pairs


def word_counts(texts: Iterable[str]) -> Counter:
    """In how many texts each Latin word occurs (folded: lower case, accents stripped)."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(set(WORD.findall(fold(str(text)))))
    return counts


class SpellingCorrector:
    """Correct query words against a catalogue vocabulary; see the module docstring.

    Args:
        counts: word -> catalogue title count (the dictionary).
        protected: words never changed and never proposed as a split (e.g. brand words).
        config: a :class:`SpellingConfig`.

    Examples:
        >>> corrector = SpellingCorrector({"cedar": 40, "fence": 90, "toilet": 60, "deck": 30, "over": 50})
        >>> corrector.correct("ceadar fence")
        'cedar fence'
        >>> corrector.correct("deckover")
        'deck over'
        >>> corrector.correct("toliet 2x4")
        'toilet 2x4'
    """

    def __init__(self, counts: Mapping[str, int], *, protected: Iterable[str] = (),
                 config: SpellingConfig | None = None, bigrams: Iterable[str] | None = None) -> None:
        from symspellpy import SymSpell

        self.config = config or SpellingConfig()
        self.counts = {str(w): int(c) for w, c in counts.items() if int(c) > 0}
        self.protected = frozenset(w.lower() for w in protected)
        #: "left right" pairs the titles write side by side (None: any split of known words is allowed)
        self.bigrams = frozenset(bigrams) if bigrams is not None else None
        #: the same pairs by word family ("freezer refrigerator" puts "refrigerators" in context too)
        self._family_bigrams = None if bigrams is None else frozenset(
            " ".join(map(self._family, pair.split(" ", 1))) for pair in self.bigrams)
        #: English word -> frequency (Google Books counts); these words are protected or weighed
        self._english = english_frequencies() if self.config.protect_english else {}
        self._symspell = SymSpell(max_dictionary_edit_distance=self.config.max_edit_distance, prefix_length=7)
        self._family_counts: Counter = Counter()  # singular -> titles of the singular and its plurals
        for word, count in self.counts.items():
            if len(word) >= 2:
                self._symspell.create_dictionary_entry(word, count)
            self._family_counts[self._family(word)] += count

    @classmethod
    def from_texts(cls, titles: Iterable[str], queries: Iterable[str] = (), *, protected: Iterable[str] = (),
                   config: SpellingConfig | None = None) -> "SpellingCorrector":
        """A corrector whose dictionary is the titles' words, weighted up by the queries' use of them."""
        config = config or SpellingConfig()
        titles = list(titles)
        counts = word_counts(titles)
        for word, count in word_counts(queries).items():
            if word in counts:
                counts[word] += int(round(config.query_weight * count))
        return cls(counts, protected=protected, config=config, bigrams=title_bigrams(titles))

    def _family(self, word: str) -> str:
        """The catalogue singular of a plural ("lenses" -> "lens", "batteries" -> "battery",
        "screws" -> "screw"), else the word itself: the key that counts a word with its plurals."""
        if len(word) < 4 or word.endswith("ss"):
            return word
        for suffix, replacement in (("ies", "y"), ("es", ""), ("s", "")):
            if word.endswith(suffix) and word[: -len(suffix)] + replacement in self.counts:
                return word[: -len(suffix)] + replacement
        return word

    def _inflection(self, word: str) -> bool:
        """A regular inflection of a catalogue word ("thermostats", "charming" for "charm", "batting" for
        "bat"); misspelt ones ("boxs", "driveing", "leadders") are not (see :func:`regular_inflection`)."""
        for suffix, replacement in INFLECTIONS:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stem = word[: len(word) - len(suffix)]
                if stem + replacement in self.counts and regular_inflection(stem, suffix, replacement):
                    return True
                doubled = len(stem) > 3 and stem[-1] == stem[-2] and suffix in ("ing", "ed", "er", "ers")
                if doubled and stem[:-1] in self.counts and needs_doubling(stem[:-1]):
                    return True
        return False

    def suggest(self, word: str, before: str = "", after: str = "") -> Correction | None:
        """The confident correction of one folded word, or None (known, protected or unsure).

        ``before`` / ``after``: the neighbouring query words (folded), the context of the choice.
        """
        config = self.config
        if len(word) < config.min_length or not WORD.fullmatch(word):
            return None
        if word in self.counts:  # a catalogue word: kept, unless it is a rare title typo ("ceder")
            if word in self.protected or word in self._english or self._inflection(word):
                return None
            return self._rare(word) if self.counts[word] <= config.rare_count else None
        if word in self.protected or self._inflection(word) or is_unit_word(word):
            return None
        if word in self._english:
            return self._edit(word, before, after, real_word=True) if config.correct_real_words else None
        edit = self._edit(word, before, after)
        if edit is not None and edit.distance == 1:
            return edit
        return self._split(word) or edit

    def _edit(self, word: str, before: str = "", after: str = "", real_word: bool = False) -> Correction | None:
        """The confident correction of an unknown word, if any: the candidate most likely meant.

        Each candidate within reach (symspellpy, Damerau-Levenshtein) is weighed by how often the
        catalogue uses it, how likely a typist turns it into ``word`` (:mod:`.error_model`), and
        whether the titles write it beside the word's neighbour in the query; ``confidence`` is the
        best candidate's share of all their weights. ``real_word``: ``word`` is English though the
        titles lack it, so "it is meant as typed" is a rival too, and only one edit is considered.
        """
        from symspellpy import Verbosity

        config = self.config
        distance_limit = config.max_edit_distance if len(word) >= config.min_length_distance2 and not real_word else 1
        candidates = self._symspell.lookup(word, Verbosity.ALL, max_edit_distance=distance_limit)
        # every one-edit candidate before the two-edit ones, the most used first within each
        candidates = sorted(candidates, key=lambda s: (s.distance, -s.count, s.term))[:MAX_CANDIDATES]
        if not candidates:
            return None
        weighed = [(self._weight(word, s.term, s.count, before, after), s) for s in candidates]
        families: dict[str, float] = {}  # "handle" and "handles" for "handlet" are one answer, not rivals
        for weight, suggestion in weighed:
            families[self._family(suggestion.term)] = families.get(self._family(suggestion.term), 0.0) + weight
        family = max(families, key=lambda name: (families[name], name))
        _, best = max((pair for pair in weighed if self._family(pair[1].term) == family),
                      key=lambda pair: (pair[0], pair[1].count, pair[1].term))
        total = sum(families.values()) + config.unseen_weight  # + "a real word the titles lack"
        if real_word:
            total += self._own_weight(word, candidates)
        confidence = families[family] / total * (config.distance2_factor if best.distance == 2 else 1.0)
        if best.count < config.min_count or confidence < config.min_confidence:
            return None
        kind = "context" if self._in_context(best.term, before, after) else "edit"
        return Correction(word, agree_in_number(word, best.term), round(confidence, 4), kind, int(best.distance))

    def _own_weight(self, word: str, candidates) -> float:
        """The weight of "an English word the titles lack was meant as typed", on the candidates' scale:
        a candidate's catalogue count scaled by how much more (or less) English uses ``word`` than it
        ("ceder" is 200 times rarer than "cedar"; "pray" about as common as "spray"), the largest such
        estimate; infinite when no candidate is an English word (brands: "akita" is not "makita")."""
        own = self._english[word]
        estimates = [self._family_counts[self._family(s.term)] * own / self._english[s.term]
                     for s in candidates if self._english.get(s.term)]
        return max(estimates, default=float("inf"))

    def _weight(self, word: str, candidate: str, count: int, before: str, after: str) -> float:
        """Catalogue count x channel probability x context odds of ``candidate`` meant as ``word``.

        The count is the word's family's (singular and plurals): titles say "air conditioner" 200
        times and "conditioners" 5, but a shopper typing "condtioners" means the plural as surely.
        """
        context = CONTEXT_ODDS if self._in_context(candidate, before, after) else 1.0
        return self._family_counts[self._family(candidate)] * edit_probability(word, candidate) * context

    def _in_context(self, candidate: str, before: str, after: str) -> bool:
        """The titles write ``candidate`` (or its singular or plural) next to the query word's
        neighbour ("freezer refrigerator" for "freezer refrdgerators")."""
        if self._family_bigrams is None:
            return False
        word, pairs = self._family(candidate), self._family_bigrams
        return bool((before and f"{self._family(before)} {word}" in pairs) or (after and f"{word} {self._family(after)}" in pairs))

    def _rare(self, word: str) -> Correction | None:
        """A distance-1 correction of a rare catalogue word to a far more frequent one, if any."""
        from symspellpy import Verbosity

        own = self.counts[word]
        rivals = [s for s in self._symspell.lookup(word, Verbosity.ALL, max_edit_distance=1) if s.term != word]
        if not rivals:
            return None
        best = max(rivals, key=lambda s: (s.count, s.term))
        confidence = best.count / sum(s.count for s in rivals)
        if best.count < max(self.config.min_count, self.config.rare_ratio * own) or confidence < self.config.min_confidence:
            return None
        return Correction(word, best.term, round(confidence, 4), "rare", int(best.distance))

    def _split(self, word: str) -> Correction | None:
        """The most frequent split of ``word`` into two catalogue words of >= 3 letters, if any."""
        best, best_score = None, 0
        for cut in range(2, len(word) - 1):  # both parts >= 3 letters, or a unit word ("4 ftawning")
            left, right = word[:cut], word[cut:]
            if (len(left) < 3 and left not in SPLIT_UNITS) or (len(right) < 3 and right not in SPLIT_UNITS):
                continue
            score = min(self.counts.get(left, 0), self.counts.get(right, 0))
            if self.bigrams is not None and f"{left} {right}" not in self.bigrams and left not in SPLIT_UNITS:
                continue  # a unit after a number needs no title to write it ("4 ftawning" -> "4 ft awning")
            if score >= SPLIT_MIN_COUNT * self.config.min_count and score > best_score:
                best, best_score = f"{left} {right}", score
        return Correction(word, best, 1.0, "split", 1) if best else None

    def corrections(self, query: str) -> list[Correction]:
        """The corrections of the Latin words of ``query``, in order."""
        found = []
        tokens = [fold(t) for t in LATIN_TOKEN.findall(query)]
        for position, token in enumerate(tokens):
            if not token.isalpha():
                continue  # model numbers, sizes: kept whole
            before = tokens[position - 1] if position > 0 else ""
            after = tokens[position + 1] if position + 1 < len(tokens) else ""
            correction = self.suggest(token, before, after)
            if correction is not None:
                found.append(correction)
        return found

    def correct(self, query: str) -> str:
        """``query`` with its confidently misspelled words replaced (everything else unchanged)."""
        return apply_corrections(query, self.corrections(query))


def apply_corrections(query: str, corrections: list[Correction]) -> str:
    """Replace each corrected word in ``query`` (case-insensitive, whole words only)."""
    replacements = {c.word: c.replacement for c in corrections}
    if not replacements:
        return query

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if not token.isalpha() or fold(token) not in replacements:
            return token
        new = replacements[fold(token)]
        return new.upper() if token.isupper() and len(token) > 1 else new.title() if token.istitle() else new

    return LATIN_TOKEN.sub(replace, query)
