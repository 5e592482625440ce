"""Token pieces back to the text the user typed: character spans, words, CJK per character.

A tokenizer normalises before it cuts (NFKC, case folding, accent stripping) and marks pieces
(WordPiece ``##`` continuations, SentencePiece ``▁`` word starts), so its pieces are not substrings
of the original text. Both sides are brought to one comparable form here: every original character
is normalised on its own (remembering where each normalised character came from), and so is every
piece's surface; pieces are then found left to right. A piece that cannot be found (``[UNK]``)
takes the next word of the text. Pieces are merged into words (a ``##`` piece or a SentencePiece
piece without ``▁`` continues the previous word, unless a space separates them); Chinese, Japanese
and Korean characters are words of their own, and a piece covering several of them shares its
attribution equally among them, so the sums stay complete.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Sequence

UNKNOWN_PIECES = frozenset({"[UNK]", "<unk>"})
CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xAC00, 0xD7AF),
              (0x1100, 0x11FF), (0x3130, 0x318F), (0xFF66, 0xFF9F), (0x20000, 0x2FA1F))
LATIN_MARKS = re.compile("[\u0300-\u036f]")


def is_cjk(character: str) -> bool:
    """Han, Hiragana, Katakana or Hangul: scripts written without spaces (one word per character)."""
    code = ord(character)
    return any(low <= code <= high for low, high in CJK_RANGES) or character in "ー々"


def comparable(text: str) -> str:
    """NFKC, case-folded, Latin accents dropped: the form pieces and text are compared in."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return unicodedata.normalize("NFC", LATIN_MARKS.sub("", unicodedata.normalize("NFD", text)))


@dataclasses.dataclass
class Piece:
    """One token of a text: its vocabulary string, where it lies in the text (None when it could not
    be placed) and its attribution."""

    token: str
    start: int | None
    end: int | None
    attribution: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Word:
    """A word of the original text (a CJK character is one) with the attribution of its pieces."""

    text: str
    start: int
    end: int
    attribution: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def surface(token: str) -> str:
    """What a piece spells: without WordPiece's ``##`` or SentencePiece's ``▁`` marks."""
    return comparable(token.removeprefix("##").replace("\u2581", ""))


def place_pieces(text: str, tokens: Sequence[str], attributions: Sequence[float]) -> list[Piece]:
    """Character spans of ``tokens`` (a tokenizer's pieces of ``text``, in order) in ``text``.

    Examples:
        >>> [(p.token, p.start, p.end) for p in place_pieces("Café drills", ["cafe", "dr", "##ills"], [0, 0, 0])]
        [('cafe', 0, 4), ('dr', 5, 7), ('##ills', 7, 11)]
    """
    normal, origin = _normalised_with_origin(text)
    pieces, cursor = [], 0
    for token, attribution in zip(tokens, attributions):
        while cursor < len(normal) and normal[cursor].isspace():
            cursor += 1
        spelled = surface(token)
        if token in UNKNOWN_PIECES:
            found, length = cursor, _unknown_length(normal, cursor)
        elif not spelled:
            pieces.append(Piece(token, None, None, float(attribution)))
            continue
        else:
            found, length = normal.find(spelled, cursor), len(spelled)
        if found < 0 or length == 0:
            pieces.append(Piece(token, None, None, float(attribution)))
            continue
        start, end = origin[found], origin[found + length - 1] + 1
        pieces.append(Piece(token, start, end, float(attribution)))
        cursor = found + length
    return pieces


def merge_words(text: str, pieces: Sequence[Piece], style: str = "wordpiece") -> list[Word]:
    """Words of ``text`` from placed pieces; an unplaced piece's attribution goes to the next word
    (SentencePiece's lone ``▁``), or to the previous one at the end of the text. ``style``:
    "wordpiece" or "sentencepiece", how the pieces mark word continuations.

    Examples:
        >>> pieces = place_pieces("苹果 drills", ["▁", "苹果", "▁dr", "ills"], [0.1, 0.4, 0.3, 0.2])
        >>> [(w.text, round(w.attribution, 2)) for w in merge_words("苹果 drills", pieces, "sentencepiece")]
        [('苹', 0.25), ('果', 0.25), ('drills', 0.5)]
    """
    words: list[Word] = []
    carried = 0.0
    previous: Piece | None = None
    for piece in pieces:
        if piece.start is None:
            carried += piece.attribution
            continue
        characters = range(piece.start, piece.end)
        if any(is_cjk(text[i]) for i in characters):
            share = (piece.attribution + carried) / len(characters)
            words.extend(Word(text[i], i, i + 1, share) for i in characters)
        elif previous is not None and words and _continues(text, previous, piece, style):
            last = words[-1]
            words[-1] = Word(text[last.start:piece.end], last.start, piece.end,
                             last.attribution + piece.attribution + carried)
        else:
            words.append(Word(text[piece.start:piece.end], piece.start, piece.end, piece.attribution + carried))
        carried, previous = 0.0, piece
    if carried and words:
        words[-1].attribution += carried
    return words


def segments(text: str, words: Sequence[Word]) -> list[dict]:
    """The whole text as consecutive segments: each word with its attribution, the text between
    words (spaces, unplaced characters) with ``attribution`` None. What a page highlights."""
    out, cursor = [], 0
    for word in sorted(words, key=lambda w: w.start):
        if word.start > cursor:
            out.append({"text": text[cursor:word.start], "attribution": None})
        out.append({"text": text[word.start:word.end], "attribution": word.attribution})
        cursor = max(cursor, word.end)
    if cursor < len(text):
        out.append({"text": text[cursor:], "attribution": None})
    return out


def _continues(text: str, previous: Piece, piece: Piece, style: str) -> bool:
    """Whether ``piece`` continues the word of ``previous``: adjacent (no space between), not CJK,
    and marked as a continuation (WordPiece ``##``; SentencePiece: no ``▁`` word start)."""
    if piece.start != previous.end or is_cjk(text[previous.end - 1]):
        return False
    if style == "sentencepiece":
        return not piece.token.startswith("\u2581")
    return piece.token.startswith("##")


def _normalised_with_origin(text: str) -> tuple[str, list[int]]:
    """``comparable`` text character by character, with each output character's source index."""
    normal, origin = [], []
    for index, character in enumerate(text):
        if unicodedata.category(character) in ("Cc", "Cf"):
            character = " "
        for folded in comparable(character):
            normal.append(folded)
            origin.append(index)
    return "".join(normal), origin


def _unknown_length(normal: str, cursor: int) -> int:
    """Length of the word an ``[UNK]`` stands for: one CJK or punctuation character, else the run
    up to the next space, punctuation or CJK character."""
    if cursor >= len(normal):
        return 0
    if is_cjk(normal[cursor]) or _is_punctuation(normal[cursor]):
        return 1
    end = cursor
    while end < len(normal) and not (normal[end].isspace() or is_cjk(normal[end]) or _is_punctuation(normal[end])):
        end += 1
    return end - cursor


def _is_punctuation(character: str) -> bool:
    return unicodedata.category(character)[0] in "PS"
