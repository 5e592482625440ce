"""English word forms the spelling corrector must not take for typos, and the forms it writes.

A regular inflection of a catalogue word is a real word ("thermostats", "charming"), but English
spells some inflections otherwise, so "boxs", "driveing" and "leadders" are typos of "boxes",
"driving" and "ladders" rather than inflections of box / drive / lead. A
word the unit rules know ("millimeter") is kept for them. A typed plural keeps its number when the
corrector replaces it ("curtiins" -> "curtains").

Examples:

>>> regular_inflection("box", "s", ""), regular_inflection("box", "es", "")
(False, True)
>>> agree_in_number("batterys", "battery"), is_unit_word("millimeter")
('batteries', True)
"""

from __future__ import annotations

import functools
import re

from semmatch_tf.text.units import normalize_units

INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"),
               ("er", ""), ("er", "e"), ("ers", ""), ("ly", ""))


@functools.lru_cache(maxsize=4096)
def is_unit_word(word: str) -> bool:
    """A spelling the unit rules know ("millimeter", "gallons", "horsepower"): kept for them to write
    one way, never taken for a typo of a catalogue word ("multimeter")."""
    return normalize_units(f"1 {word}") != f"1 {word}"


def _vowel_groups(word: str) -> int:
    return len(re.findall(r"[aeiouy]+", word))


def needs_doubling(stem: str) -> bool:
    """A one-syllable stem ending consonant-vowel-consonant ("rot", "ven", "tap"), which doubles its
    last letter before -ing / -ed / -er ("rotting", "tapping")."""
    return (len(stem) >= 3 and _vowel_groups(stem) == 1 and stem[-1] not in "aeiouwxy"
            and stem[-2] in "aeiou" and stem[-3] not in "aeiou")


def regular_inflection(stem: str, suffix: str, replacement: str) -> bool:
    """Whether English spells ``stem + replacement`` inflected with ``suffix`` as ``stem + suffix``:
    "boxs" (box takes -es), "driveing" (drive drops its e), "roter" (rot doubles its t) are not."""
    if suffix == "s":
        return not (stem.endswith(("s", "x", "z", "ch", "sh")) or (stem.endswith("y") and stem[-2:-1] not in tuple("aeiou")))
    if suffix in ("ing", "ed", "er", "ers") and not replacement:
        if stem.endswith("e") and not stem.endswith(("ee", "ye", "oe")):
            return False  # drive + ing is "driving"
        return not needs_doubling(stem)
    return True


def agree_in_number(typed: str, replacement: str) -> str:
    """``replacement`` in the plural when ``typed`` ends in the plural's s and the singular does not
    ("curtiins" -> "curtains", not "curtain", though the titles write only "curtain"; "batterys" ->
    "batteries")."""
    if not typed.endswith("s") or replacement.endswith("s") or " " in replacement:
        return replacement
    return english_plural(replacement)


def english_plural(noun: str) -> str:
    """The regular English plural: "boxes", "batteries", "curtains"."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"
