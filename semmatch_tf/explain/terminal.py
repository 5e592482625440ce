"""A coloured terminal view of an :class:`~semmatch_tf.explain.result.Explanation`.

Words that raise the score are shown on a green background, words that lower it on red, with the
strength in five steps relative to the largest attribution of the pair; ``color=False`` (or a
non-terminal output) prints the attributions in brackets instead.
"""

from __future__ import annotations

from semmatch_tf.explain.result import Explanation, TextAttribution
from semmatch_tf.explain.spans import segments

GREENS = (22, 28, 34, 40, 46)
REDS = (52, 88, 124, 160, 196)


def _paint(text: str, value: float, scale: float, color: bool) -> str:
    if not color:
        return f"{text}[{value:+.3f}]"
    if scale <= 0 or abs(value) < 0.05 * scale:
        return text
    step = min(4, int(abs(value) / scale * 5))
    background = (GREENS if value > 0 else REDS)[step]
    foreground = 16 if step >= 3 else 15
    return f"\x1b[48;5;{background}m\x1b[38;5;{foreground}m{text}\x1b[0m"


def _line(attribution: TextAttribution, scale: float, color: bool) -> str:
    return "".join(s["text"] if s["attribution"] is None else _paint(s["text"], s["attribution"], scale, color)
                   for s in segments(attribution.text, attribution.words))


def format_explanation(explanation: Explanation, *, color: bool = True, top: int = 3) -> str:
    """Query and product with highlighted words, the top words, the score and completeness.

    Examples:
        >>> from semmatch_tf.explain.result import Explanation, TextAttribution
        >>> from semmatch_tf.explain.spans import Word
        >>> side = lambda t, a: TextAttribution(t, [], [Word(t, 0, len(t), a)])
        >>> e = Explanation("bi_encoder", 0.8, side("drill", 0.5), side("drill bit", 0.3),
        ...                 {"pair": {"gap": 0.0, "relative_gap": 0.0, "steps": 16}}, "[MASK]")
        >>> print(format_explanation(e, color=False).splitlines()[1])
        query:    drill[+0.500]
    """
    words = explanation.query.words + explanation.product.words
    scale = max((abs(w.attribution) for w in words), default=0.0)
    lines = [f"{explanation.model}: {explanation.score_name} {explanation.score:.4f} "
             f"(baseline: {explanation.baseline} embeddings)",
             f"query:    {_line(explanation.query, scale, color)}",
             f"product:  {_line(explanation.product, scale, color)}"]
    for name, side in (("query", explanation.query), ("product", explanation.product)):
        best = ", ".join(f"{w.text} {w.attribution:+.3f}" for w in side.top_words(top))
        lines.append(f"top {name} words: {best or '-'}")
    for over, report in explanation.completeness.items():
        lines.append(f"completeness ({over}): gap {report['gap']:.2e} "
                     f"({100 * report['relative_gap']:.2f}% of the score change), {report['steps']} steps")
    return "\n".join(lines)
