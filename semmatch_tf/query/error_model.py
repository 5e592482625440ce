"""How likely a typist turns one word into another: the channel of a noisy-channel speller.

Edit distance counts every change alike, but typists do not: they swap neighbours ("toliet"),
double or drop a doubled letter ("perrenial"), hit the key next to the right one ("dtop" for
"stop"), write a vowel for a vowel ("venner") or a letter that sounds alike ("kage"), and rarely
get the first letter wrong. :func:`edit_probability` is the probability of the most likely
alignment of the two words under those habits (a weighted Damerau-Levenshtein, optimal string
alignment), so "lense" is far more likely "lens" (a dropped final e) than "dense" (a wrong first
letter), though both are one edit away. The weights are relative odds, set by these habits, not
fitted (as in Kernighan, Church and Gale's channel, with classes instead of per-letter counts).

Examples:

>>> edit_probability("lense", "lens") > 10 * edit_probability("lense", "dense")
True
>>> edit_probability("toliet", "toilet") > edit_probability("toliet", "toile")
True
>>> edit_probability("cedar", "cedar")
1.0
"""

from __future__ import annotations

import math

KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
VOWELS = frozenset("aeiouy")
SOUND_ALIKE = frozenset(frozenset(pair) for pair in ("ck", "cs", "sz", "kq", "iy", "fv", "gj", "dt", "bp", "mn", "ae"))

# Relative odds of one edit, by its kind (a correct letter has odds 1).
SWAP = 0.2            # neighbours transposed: "toliet"
DOUBLING = 0.2        # a letter doubled or a double written once: "perrenial", "acces"
VOWEL = 0.15          # a vowel for another vowel: "venner"
NEAR_KEY = 0.1        # a neighbouring key or a letter that sounds alike: "dtop", "kage"
DROPPED_VOWEL = 0.1   # a vowel left out: "condtioner"
DROPPED = 0.04        # another letter left out
EXTRA_NEAR = 0.06     # an extra letter next to a key it neighbours: "flopr"
EXTRA = 0.02          # another extra letter
OTHER = 0.015         # any other substitution
FIRST_LETTER = 0.3    # any edit at the first letter is this much rarer


def _key_neighbours() -> dict[str, frozenset[str]]:
    """Letters next to each letter on a QWERTY keyboard (same row either side, the two keys touching
    it in the rows above and below)."""
    position = {ch: (row, col) for row, keys in enumerate(KEYBOARD_ROWS) for col, ch in enumerate(keys)}
    neighbours = {}
    for ch, (row, col) in position.items():
        near = set()
        for other, (row2, col2) in position.items():
            if other == ch:
                continue
            if row2 == row and abs(col2 - col) == 1:
                near.add(other)
            elif row2 == row - 1 and col2 in (col, col + 1):
                near.add(other)
            elif row2 == row + 1 and col2 in (col - 1, col):
                near.add(other)
        neighbours[ch] = frozenset(near)
    return neighbours


NEIGHBOURS = _key_neighbours()


def _substitution_odds(typed: str, meant: str) -> float:
    if typed in VOWELS and meant in VOWELS:
        return VOWEL
    if typed in NEIGHBOURS.get(meant, ()) or frozenset((typed, meant)) in SOUND_ALIKE:
        return NEAR_KEY
    return OTHER


LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: -log odds of typing a letter for another (the DP adds costs instead of multiplying odds)
SUBSTITUTION_COST = {(a, b): -math.log(_substitution_odds(a, b)) for a in LETTERS for b in LETTERS if a != b}
FIRST_COST = -math.log(FIRST_LETTER)
SWAP_COST, DOUBLING_COST = -math.log(SWAP), -math.log(DOUBLING)
DROPPED_VOWEL_COST, DROPPED_COST = -math.log(DROPPED_VOWEL), -math.log(DROPPED)
EXTRA_NEAR_COST, EXTRA_COST = -math.log(EXTRA_NEAR), -math.log(EXTRA)
OTHER_COST = -math.log(OTHER)
BAND = 2  # candidates are at most two edits away: alignments stray at most two cells off the diagonal


def edit_probability(typed: str, meant: str) -> float:
    """Relative probability that someone meaning ``meant`` typed ``typed`` (1.0 when equal)."""
    if typed == meant:
        return 1.0
    n, m = len(typed), len(meant)
    if abs(n - m) > BAND:
        return 0.0
    infinity = float("inf")
    # cost[i][j]: the cheapest way to type typed[:i] when meaning meant[:j] (cells near the diagonal)
    cost = [[infinity] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        row = cost[i]
        for j in range(max(0, i - BAND), min(m, i + BAND) + 1):
            here = row[j]
            if here == infinity:
                continue
            first = FIRST_COST if j == 0 else 0.0
            if i < n and j < m:  # the right letter, or a wrong one
                step = 0.0 if typed[i] == meant[j] else SUBSTITUTION_COST.get((typed[i], meant[j]), OTHER_COST) + first
                if here + step < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1] = here + step
            if j < m:  # meant[j] left out
                letter = meant[j]
                step = (DOUBLING_COST if (j > 0 and letter == meant[j - 1]) or (j + 1 < m and letter == meant[j + 1])
                        else DROPPED_VOWEL_COST if letter in VOWELS else DROPPED_COST) + first
                if here + step < row[j + 1]:
                    row[j + 1] = here + step
            if i < n:  # typed[i] is extra
                letter, before, after = typed[i], typed[i - 1] if i else "", typed[i + 1] if i + 1 < n else ""
                near = NEIGHBOURS.get(letter, ())
                step = (DOUBLING_COST if letter in (before, after) else
                        EXTRA_NEAR_COST if before in near or after in near else EXTRA_COST) + first
                if here + step < cost[i + 1][j]:
                    cost[i + 1][j] = here + step
            if i + 1 < n and j + 1 < m and typed[i] == meant[j + 1] and typed[i + 1] == meant[j] \
                    and typed[i] != typed[i + 1]:  # neighbours swapped
                if here + SWAP_COST + first < cost[i + 2][j + 2]:
                    cost[i + 2][j + 2] = here + SWAP_COST + first
    return math.exp(-cost[n][m])
