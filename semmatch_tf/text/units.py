"""Units and numbers written one way: ``12"``, ``12 in.``, ``12-inch`` and ``12 inches`` all become ``12 in``.

Home Depot queries and titles write every unit several ways (``ft`` / ``foot`` / ``feet`` / ``'``,
``gal.`` / ``gallon``, ``18-Volt`` / ``18v``), dimensions as ``2x4`` or ``2 in. x 4 in.`` and
thousands as ``50,000``. Lexical search only matches identical tokens, so both sides are rewritten
by the same ordered list of regular-expression rules (:data:`UNIT_RULES`), after the toolkit's usual
normalisation (NFKC, case folding, Latin accents stripped).

The rules use only syntax that RE2 (TensorFlow's ``tf.strings.regex_replace``) and Python's ``re``
read alike (no look-arounds, ASCII classes), so :func:`normalize_units_graph` runs them inside a
TensorFlow graph (``tf.data`` or an exported SavedModel) and :func:`normalize_units` runs the same
rules in Python for the search path, where a query costs microseconds; a test checks the two agree
on real Home Depot strings. A rule that must apply to overlapping matches (``2x4x8``) is listed twice and writes a marker
(``×``) it does not match itself, turned into ``x`` at the end.
Text in other scripts passes through unchanged (only ASCII digits and Latin unit words are touched).
"""

from __future__ import annotations

import re
import unicodedata

_NUMBER = r"([0-9])\s*-?\s*"
_END = r"([^a-z0-9]|$)"  # a unit word ends at a non-letter (RE2 has no look-ahead)

#: (pattern, replacement) applied in order to lower-cased text. Longer spellings come first.
UNIT_RULES: tuple[tuple[str, str], ...] = (
    (r"([0-9]),([0-9][0-9][0-9])([^0-9]|$)", r"\1\2\3"),                      # 50,000 -> 50000
    (r"([0-9]),([0-9][0-9][0-9])([^0-9]|$)", r"\1\2\3"),                      # 1,000,000
    (r"([0-9])\s*(?:''|\"|”)", r"\1 in "),                                   # 12" -> 12 in
    (r"([0-9])\s*(?:'|’)([^s]|$)", r"\1 ft \2"),                              # 6' -> 6 ft (not 80's)
    # 2x4, 2 by 4 -> 2 × 4 (a marker the rule does not match, so a second pass finds 2x4x8's "4x8")
    (r"([0-9])\s*(?:x|\*|by)\s*([0-9])", r"\1 × \2"),
    (r"([0-9])\s*(?:x|\*|by)\s*([0-9])", r"\1 × \2"),
    (r"([a-z])([0-9]+(?:\.[0-9]+)? × [0-9])", r"\1 \2"),                     # mirror18x20 -> mirror 18 x 20
    (_NUMBER + r"(?:sq\.?\s*ft\.?|sq\.?\s*feet|square\s*feet|square\s*foot|sqft)" + _END, r"\1 sqft\2"),
    (_NUMBER + r"(?:cu\.?\s*ft\.?|cu\.?\s*feet|cubic\s*feet|cubic\s*foot|cuft)" + _END, r"\1 cuft\2"),
    (_NUMBER + r"(?:inches|inch|in\.|in)" + _END, r"\1 in\2"),
    (_NUMBER + r"(?:feet|foot|ft\.|ft)" + _END, r"\1 ft\2"),
    (_NUMBER + r"(?:gallons|gallon|gal\.|gal)" + _END, r"\1 gal\2"),
    (_NUMBER + r"(?:volts|volt|v)" + _END, r"\1 volt\2"),
    (_NUMBER + r"(?:watts|watt|w)" + _END, r"\1 watt\2"),
    (_NUMBER + r"(?:amps|amp|amperes)" + _END, r"\1 amp\2"),
    (_NUMBER + r"(?:pounds|pound|lbs\.|lbs|lb\.|lb)" + _END, r"\1 lb\2"),
    (_NUMBER + r"(?:fl\.?\s*oz\.?|ounces|ounce|oz\.|oz)" + _END, r"\1 oz\2"),
    (_NUMBER + r"(?:millimeters|millimeter|millimetres|mm)" + _END, r"\1 mm\2"),
    (_NUMBER + r"(?:centimeters|centimeter|centimetres|cm)" + _END, r"\1 cm\2"),
    (_NUMBER + r"(?:quarts|quart|qt\.|qt)" + _END, r"\1 qt\2"),
    (_NUMBER + r"(?:gauge|ga\.|ga)" + _END, r"\1 gauge\2"),
    (_NUMBER + r"(?:degrees|degree|deg\.|deg|°)" + _END, r"\1 deg\2"),
    (_NUMBER + r"(?:horsepower|hp)" + _END, r"\1 hp\2"),
    (_NUMBER + r"(?:kilograms|kilogram|kg)" + _END, r"\1 kg\2"),
    (_NUMBER + r"(?:grams|gram)" + _END, r"\1 g\2"),
    (r"([0-9][0-9])\s*g" + _END, r"\1 g\2"),                                  # 200g; not a phone's 5G
    (_NUMBER + r"(?:milliliters|milliliter|millilitres|ml)" + _END, r"\1 ml\2"),
    (_NUMBER + r"(?:liters|liter|litres|litre)" + _END, r"\1 l\2"),
    (r" × ", " x "),
    (r"\b(in|ft|mm|cm) ?x ?([0-9])", r"\1 x \2"),                             # 3 ft x3 ft -> 3 ft x 3 ft
    (r"\s+", " "),
    (r"^ | $", ""),
)

#: The canonical unit words the rules produce (attribute extraction reads sizes by these).
UNITS = ("sqft", "cuft", "in", "ft", "gal", "volt", "watt", "amp", "lb", "oz", "mm", "cm", "qt", "gauge", "deg", "hp",
         "kg", "g", "ml", "l")
_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement in UNIT_RULES)
_LATIN_MARKS = re.compile(r"[\u0300-\u036f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def fold(text: str) -> str:
    """NFKC, control characters to spaces, case folding, Latin accents stripped (as the graph does).

    Examples:
        >>> fold("Ｃafé  DEWALT")
        'cafe  dewalt'
    """
    text = _CONTROL.sub(" ", unicodedata.normalize("NFKC", text)).casefold()
    return unicodedata.normalize("NFC", _LATIN_MARKS.sub("", unicodedata.normalize("NFD", text)))


def normalize_units(text: str) -> str:
    """Fold ``text`` (see :func:`fold`) and write its units and numbers one way (:data:`UNIT_RULES`).

    Examples:
        >>> normalize_units('Everbilt 1-1/2 in. x 12 ft. 2x4 Hose, 50,000 BTU, 18-Volt, 5 Gal.')
        'everbilt 1-1/2 in x 12 ft 2 x 4 hose, 50000 btu, 18 volt, 5 gal'
        >>> normalize_units("kitchen countertop 6'"), normalize_units("2x6x10 lumber")
        ('kitchen countertop 6 ft', '2 x 6 x 10 lumber')
    """
    text = fold(text)
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text


def normalize_units_graph(strings):
    """:func:`normalize_units` as TensorFlow ops on a string tensor (any shape), for ``tf.data`` and
    exported models: the toolkit's in-graph normalisation (:func:`semmatch_tf.text.normalize.normalize`),
    then :data:`UNIT_RULES` by ``tf.strings.regex_replace``.

    Examples:
        >>> import tensorflow as tf
        >>> normalize_units_graph(tf.constant(["Husky 25 ft. x 1 in. Tape"])).numpy()[0].decode()
        'husky 25 ft x 1 in tape'
    """
    import tensorflow as tf  # here, not at the top: the Python rules serve the search path without TF

    from semmatch_tf.text.normalize import normalize

    strings = normalize(tf.convert_to_tensor(strings, tf.string))
    for pattern, replacement in UNIT_RULES:
        strings = tf.strings.regex_replace(strings, pattern, replacement)
    return strings
