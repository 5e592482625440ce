"""Attributes of a query or a title: brand, product type, colour, material, size, quantity.

Brands and product types come from a gazetteer learned from the catalogue itself
(:meth:`Gazetteer.learn`): Home Depot titles start with the brand ("Simpson Strong-Tie 12-Gauge
Angle", "BEHR Premium Textured DeckOver ...") and end with the product type, so

* a *brand* is a title prefix of 1-3 words that starts at least ``min_titles`` titles, extended by a
  word while the longer prefix keeps 80% of them ("Home" -> "Home Decorators" -> "Home Decorators
  Collection"; "BEHR" stays "BEHR" because "BEHR Premium" starts only 60% of its titles), and that
  mostly occurs at the start of titles (not a colour, size or common word); a ``brand`` column of
  the catalogue, when it has one, is added as it is;
* a *product type* is a title's last one or two words before a comma, a parenthesis, " with ",
  " in " or " for " ("... Towel Bar in Chrome" -> "towel bar"), counted over the catalogue.

Colours (with finishes such as "brushed nickel"), materials, sizes (a number with one of
:data:`semmatch_tf.text.units.UNITS`, after unit normalisation, and ``W x H`` dimensions) and
quantities ("4-pack", "pack of 12", "(2-Pack)") are rules. :func:`agreement` compares a query's
attributes with a title's: agreements and contradictions per attribute, the match features of
``benchmarks/run_query.py`` and the boosts of the search path.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections import Counter
from typing import Iterable, Sequence

from semmatch_tf.text.units import UNITS, fold, normalize_units

COLOURS = ("white", "black", "brown", "gray", "grey", "red", "blue", "green", "yellow", "orange", "purple", "pink",
           "beige", "tan", "ivory", "almond", "bisque", "silver", "gold", "bronze", "chrome", "brushed nickel",
           "satin nickel", "polished nickel", "nickel", "oil rubbed bronze", "oil-rubbed bronze", "antique brass",
           "polished brass", "copper", "navy", "charcoal", "cream", "natural", "espresso", "cherry", "mahogany",
           "walnut", "clear", "biscuit", "slate", "taupe", "teal", "aqua", "burgundy", "khaki", "champagne",
           "matte black", "stainless", "bone", "linen", "sand", "chestnut", "cognac")
MATERIALS = ("wood", "wooden", "cedar", "oak", "pine", "maple", "birch", "teak", "bamboo", "hardwood", "plywood", "mdf",
             "steel", "stainless steel", "galvanized", "aluminum", "aluminium", "copper", "brass", "iron", "cast iron",
             "wrought iron", "metal", "vinyl", "pvc", "cpvc", "pex", "abs", "plastic", "resin", "polypropylene",
             "polyethylene", "fiberglass", "ceramic", "porcelain", "glass", "granite", "marble", "quartz", "concrete",
             "cement", "stone", "travertine", "rubber", "nylon", "polyester", "cotton", "wool", "leather", "composite",
             "acrylic", "wicker", "zinc", "titanium", "carbide", "lithium-ion", "asphalt", "gypsum", "foam", "cork",
             "laminate", "terracotta", "canvas", "jute", "sisal")
#: A colour word that is also a material or finish (copper, cherry...) counts as a colour only when
#: no material reading is wanted; here it is reported under both.
SYNONYMS = {"grey": "gray", "aluminium": "aluminum", "wooden": "wood", "oil-rubbed bronze": "oil rubbed bronze"}
_QUANTITY = re.compile(r"\(?\b([0-9]+)\s*-?\s*(?:pack|pk|count|ct|piece|pc|pcs)\b|\b(?:pack|case|box|set|bag) of ([0-9]+)\b")
_SIZE = re.compile(r"\b([0-9]+(?:\.[0-9]+)?(?:[ -][0-9]+/[0-9]+|/[0-9]+)?) (" + "|".join(UNITS) + r")\b")
_DIMENSION = re.compile(r"\b([0-9]+(?:\.[0-9]+)?) x ([0-9]+(?:\.[0-9]+)?)(?: x ([0-9]+(?:\.[0-9]+)?))?\b")
_KEY = re.compile(r"[^0-9a-z\u00c0-\u024f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+")
_TYPE_CUT = re.compile(r"\s*(?:,|\(| with | for | - | w/ |(?<![0-9]) in )")
#: Words that start titles without being brands, or end title heads without being product types.
STOPWORDS = frozenset("the a an and or of for with in on to by new only discontinued sample pack set kit "
                      "assorted various custom standard premium".split())
_TRAILING_CODE = re.compile(r"(?:\s+[a-z]*[0-9][a-z0-9-]*)+$")
ATTRIBUTES = ("brand", "type", "colour", "material", "size", "quantity")


def key(text: str) -> str:
    """The matching form of a phrase: folded, punctuation and hyphens as single spaces."""
    return " ".join(_KEY.sub(" ", fold(html.unescape(text))).split())


def _phrases(words: Iterable[str]) -> dict[str, str]:
    return {key(w): SYNONYMS.get(w, w) for w in words}


COLOUR_KEYS, MATERIAL_KEYS = _phrases(COLOURS), _phrases(MATERIALS)


@dataclasses.dataclass
class Gazetteer:
    """Brand and product-type phrases (matching keys -> display form), learned from a catalogue."""

    brands: dict[str, str]
    types: dict[str, int]

    @classmethod
    def learn(cls, titles: Sequence[str], brands: Iterable[str] = (), *, min_titles: int = 3,
              keep_share: float = 0.8, start_share: float = 0.5, min_type_titles: int = 3) -> "Gazetteer":
        """Learn brands from title prefixes and types from title endings (module docstring).

        Examples:
            >>> titles = ["Simpson Strong-Tie 12-Gauge Angle", "Simpson Strong-Tie Joist Hanger",
            ...           "Simpson Strong-Tie 2x4 Angle", "BEHR Premium Deck Stain", "BEHR 1-gal. Paint",
            ...           "BEHR Premium Plus Paint"]
            >>> gazetteer = Gazetteer.learn(titles, min_type_titles=2)
            >>> sorted(gazetteer.brands.values()), gazetteer.types["angle"]
            (['BEHR', 'Simpson Strong-Tie'], 2)
        """
        prefixes: Counter = Counter()
        everywhere: Counter = Counter()
        split = [str(t).split() for t in titles]
        for words in split:
            for n in range(1, min(3, len(words)) + 1):
                prefixes[key(" ".join(words[:n]))] += 1
        found: dict[str, str] = {}
        display: dict[str, str] = {}
        for words in split:
            if not words or not words[0][:1].isalpha():
                continue
            n = 1
            while n < min(3, len(words)) and prefixes[key(" ".join(words[:n + 1]))] >= keep_share * prefixes[key(" ".join(words[:n]))]:
                n += 1
            phrase = key(" ".join(words[:n]))
            if prefixes[phrase] >= min_titles and phrase not in COLOUR_KEYS and phrase not in MATERIAL_KEYS \
                    and phrase.split()[0] not in STOPWORDS:
                found[phrase] = prefixes[phrase]
                display.setdefault(phrase, " ".join(words[:n]).strip(",.;:"))
        keyed_titles = [" " + key(t) + " " for t in titles]
        for phrase in found:
            everywhere[phrase] = 0
        for text in keyed_titles:  # how often each candidate occurs anywhere (start_share filter)
            for phrase in _candidates_in(text, found):
                everywhere[phrase] += 1
        brand_map = {p: display[p] for p, count in found.items() if count >= start_share * max(1, everywhere[p])
                     and not any(ch.isdigit() for ch in p)}
        for brand in brands:
            if str(brand).strip():
                brand_map[key(str(brand))] = str(brand).strip()
        types: Counter = Counter()
        for title in titles:
            for phrase in _title_type_phrases(str(title)):
                types[phrase] += 1
        return cls(brand_map, {t: c for t, c in types.items() if c >= min_type_titles})

    def to_dict(self) -> dict:
        return {"brands": self.brands, "types": self.types}

    @classmethod
    def from_dict(cls, data: dict) -> "Gazetteer":
        return cls({str(k): str(v) for k, v in data["brands"].items()}, {str(k): int(v) for k, v in data["types"].items()})


def _candidates_in(padded_key: str, phrases: dict) -> list[str]:
    words = padded_key.split()
    found = []
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            phrase = " ".join(words[i:i + n])
            if phrase in phrases:
                found.append(phrase)
    return found


def _title_type_phrases(title: str) -> list[str]:
    """The last one and two words of a title's head (before ", ", "(", " with ", " in ", " for ")."""
    text = normalize_units(title)
    head = _TYPE_CUT.split(" " + text)[0].strip() or text
    words = [w for w in key(_TRAILING_CODE.sub("", head)).split()
             if w.isalpha() and len(w) > 1 and w not in UNITS and w not in STOPWORDS and w not in COLOUR_KEYS]
    phrases = []
    if words:
        phrases.append(words[-1])
    if len(words) >= 2:
        phrases.append(" ".join(words[-2:]))
    return phrases


def _find(text_key: str, phrases: dict) -> list[str]:
    """Phrases of ``phrases`` in ``text_key`` (longest first, non-overlapping), in order of appearance."""
    words = text_key.split()
    taken = [False] * len(words)
    found: list[tuple[int, str]] = []
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            if any(taken[i:i + n]):
                continue
            phrase = " ".join(words[i:i + n])
            if phrase in phrases:
                found.append((i, phrase))
                for j in range(i, i + n):
                    taken[j] = True
    return [p for _, p in sorted(found)]


class AttributeExtractor:
    """Extract :data:`ATTRIBUTES` from queries and titles with a :class:`Gazetteer` and unit rules.

    Examples:
        >>> extractor = AttributeExtractor(Gazetteer({"behr": "BEHR"}, {"deck stain": 9, "stain": 12}))
        >>> extractor.extract("behr 5 gallon white solid deck stain 2-pack")
        {'brand': 'BEHR', 'type': 'deck stain', 'colour': ['white'], 'material': [], 'size': ['5 gal'], 'quantity': 2}
    """

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer

    def extract(self, text: str, *, title: bool = False) -> dict:
        """The attributes of a query (``title=False``: its type is its last type phrase) or a title."""
        normalised = normalize_units(text)
        text_key = key(normalised)
        brands = _find(text_key, self.gazetteer.brands)
        leading = [b for b in brands if title and text_key.startswith(b + " ")]
        brand = self.gazetteer.brands[leading[0] if leading else max(brands, key=lambda b: len(b.split()))] \
            if brands else None
        colours = [COLOUR_KEYS[p] for p in _find(text_key, COLOUR_KEYS)]
        materials = [MATERIAL_KEYS[p] for p in _find(text_key, MATERIAL_KEYS)]
        return {"brand": brand, "type": self._type(text, text_key, brands, title), "colour": _unique(colours),
                "material": _unique(materials), "size": _sizes(normalised), "quantity": _quantity(normalised)}

    def _type(self, text: str, text_key: str, brands: list[str], title: bool) -> str | None:
        types = self.gazetteer.types
        if title:
            for phrase in reversed(_title_type_phrases(text)):
                if phrase in types:
                    return phrase
            return None
        head = _TYPE_CUT.split(" " + normalize_units(text))[0].strip() or text_key
        words = [w for w in key(head).split() if w.isalpha()]
        brand_words = {w for b in brands for w in b.split()}
        for end in range(len(words), 0, -1):
            for n in (2, 1):
                if end - n < 0:
                    continue
                phrase = _known_type(" ".join(words[end - n:end]), types)
                if phrase and not set(phrase.split()) & brand_words and phrase not in COLOUR_KEYS \
                        and phrase not in MATERIAL_KEYS and phrase not in UNITS:
                    return phrase
        return None


def _known_type(phrase: str, types: dict) -> str | None:
    """``phrase`` or its singular ("sinks" -> "sink", "boxes" -> "box") when it is a known type."""
    for candidate in (phrase, phrase[:-1] if phrase.endswith("s") else None,
                      phrase[:-2] if phrase.endswith("es") else None):
        if candidate and candidate in types:
            return candidate
    return None


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _sizes(normalised: str) -> list[str]:
    sizes = [f"{number.replace('-', ' ')} {unit}" for number, unit in _SIZE.findall(normalised)]
    sizes += [" x ".join(p for p in match if p) for match in _DIMENSION.findall(normalised)]
    return _unique(sizes)


def _quantity(normalised: str) -> int | None:
    match = _QUANTITY.search(normalised)
    if not match:
        return None
    value = int(match.group(1) or match.group(2))
    return value if 0 < value < 100_000 else None


def agreement(query: dict, title: dict) -> dict[str, int]:
    """Per attribute the query has: 1 in ``<name>_agree`` when the title says the same, 1 in
    ``<name>_contradict`` when the title says something else, 0 and 0 when the title is silent.

    Examples:
        >>> agreement({"brand": "BEHR", "colour": ["white"], "size": ["5 gal"]},
        ...           {"brand": "Glidden", "colour": ["white", "gray"], "size": ["1 gal"]})["brand_contradict"]
        1
    """
    features = {}
    for name in ATTRIBUTES:
        wanted, offered = query.get(name), title.get(name)
        agree = contradict = 0
        if wanted not in (None, [], "") and offered not in (None, [], ""):
            if name == "size":
                agree, contradict = _size_agreement(wanted, offered)
            elif isinstance(wanted, list):
                agree = int(bool(set(wanted) & set(offered)))
                contradict = int(not agree)
            elif name == "type":
                agree = int(wanted == offered or wanted.split()[-1] == offered.split()[-1])
                contradict = int(not agree)
            else:
                agree = int(key(str(wanted)) == key(str(offered)))
                contradict = int(not agree)
        features[f"{name}_agree"], features[f"{name}_contradict"] = agree, contradict
    return features


def _size_agreement(wanted: list[str], offered: list[str]) -> tuple[int, int]:
    """A query size agrees when the title has it; contradicts when the title has only other values
    in the same unit (dimensions: the same numbers in any order)."""
    def unit(size: str) -> str:
        return "x" if " x " in size else size.rsplit(" ", 1)[-1]

    def value(size: str) -> frozenset | str:
        return frozenset(size.split(" x ")) if " x " in size else size

    agree = contradict = 0
    offered_values = {value(s) for s in offered}
    for size in wanted:
        if value(size) in offered_values:
            agree = 1
        elif any(unit(s) == unit(size) for s in offered):
            contradict = 1
    return agree, int(contradict and not agree)
