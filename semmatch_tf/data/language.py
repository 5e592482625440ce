"""A tiny script-based language guess for data without a language column."""

from __future__ import annotations

import re

_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_SPANISH_MARKS = re.compile(r"[ñ¿¡áéíóú]", re.IGNORECASE)
_SPANISH_WORDS = {"de", "para", "con", "el", "la", "los", "las", "y", "en", "por", "sin", "negro", "rojo",
                  "zapatos", "mujer", "hombre", "niño", "talla"}


def detect_language(text: str) -> str:
    """ISO 639-1 guess: kana -> ja, Han -> zh, Hangul -> ko, Spanish cues -> es, else en.

    Kana is checked before Han because Japanese mixes both; this is a tie-breaker for per-language
    reports, not a language identifier.
    """
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    if _HANGUL.search(text):
        return "ko"
    words = set(re.findall(r"[a-zñáéíóú]+", text.lower()))
    if _SPANISH_MARKS.search(text) or len(words & _SPANISH_WORDS) >= 2:
        return "es"
    return "en"
