"""Surface edits of one text; each takes a probability and a ``random.Random`` (no global state)."""

from __future__ import annotations

import random

#: Neighbouring keys on a QWERTY keyboard: a typo replaces a letter by one of them.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
KEYBOARD = {key: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row))
            + "".join(other[i] for other in _ROWS if other is not row and i < len(other))
            for row in _ROWS for i, key in enumerate(row)}


def swap_words(text: str, probability: float, rng: random.Random) -> str:
    """Swap each word with the next one with ``probability`` (a bag of words stays the same).

    Examples:
        >>> swap_words("a b", 1.0, random.Random(0))
        'b a'
    """
    words = text.split()
    i = 0
    while i < len(words) - 1:
        if rng.random() < probability:
            words[i], words[i + 1] = words[i + 1], words[i]
            i += 1
        i += 1
    return " ".join(words)


def drop_words(text: str, probability: float, rng: random.Random, keep: frozenset = frozenset()) -> str:
    """Drop each word with ``probability``, never the last remaining word nor words in ``keep``.

    Examples:
        >>> drop_words("one", 1.0, random.Random(0))
        'one'
    """
    words = text.split()
    kept = [w for w in words if w.lower() in keep or rng.random() >= probability]
    return " ".join(kept) if kept else (words[0] if words else text)


def keyboard_typo(text: str, probability: float, rng: random.Random) -> str:
    """Per word of 4+ letters, with ``probability``: one letter replaced by a keyboard neighbour,
    dropped, or two adjacent letters transposed (the typos search logs are full of).

    Examples:
        >>> keyboard_typo("ab", 1.0, random.Random(0))
        'ab'
    """
    words = text.split()
    for index, word in enumerate(words):
        if len(word) < 4 or not word.isalpha() or rng.random() >= probability:
            continue
        at = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(3)
        if kind == 2 and word[at] == word[at + 1]:
            kind = 1  # transposing "mm" would change nothing
        if kind == 0 and word[at].lower() in KEYBOARD:
            word = word[:at] + rng.choice(KEYBOARD[word[at].lower()]) + word[at + 1:]
        elif kind == 1:
            word = word[:at] + word[at + 1:]
        else:
            word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
        words[index] = word
    return " ".join(words)


def replace_neighbours(text: str, probability: float, rng: random.Random, neighbours,
                       keep: frozenset = frozenset()) -> str:
    """Replace words (not in ``keep``) by one of their ``neighbours.of(word)`` with ``probability``."""
    words = text.split()
    for index, word in enumerate(words):
        if word.lower() in keep or rng.random() >= probability:
            continue
        options = neighbours.of(word.lower())
        if options:
            words[index] = rng.choice(options)
    return " ".join(words)


def reorder_fields(title: str, probability: float, rng: random.Random, separators=(",", " - ", " | ")) -> str:
    """With ``probability``, shuffle the fields of a title split at its first separator kind found
    (``"Drill, 18V, Cordless"`` -> ``"18V, Cordless, Drill"``); titles of one field are unchanged."""
    if rng.random() >= probability:
        return title
    for separator in separators:
        fields = [f.strip() for f in title.split(separator) if f.strip()]
        if len(fields) > 1:
            rng.shuffle(fields)
            return f"{separator.strip()} ".join(fields) if separator == "," else separator.join(fields)
    return title
