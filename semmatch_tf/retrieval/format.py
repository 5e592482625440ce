"""The search results as a terminal table (:func:`format_results`), CJK-width aware."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, width: int) -> str:
    out, used = "", 0
    for c in text:
        w = _width(c)
        if used + w > width - 1:
            return out + "…"
        out, used = out + c, used + w
    return out


def format_results(results: pd.DataFrame, *, title_width: int = 60) -> str:
    """A ranked plain-text table: rank, score, each stage's score, product id, title (clipped)."""
    if results.empty:
        return "(no results)"
    stages = [c for c in ("dense_score", "bm25_score", "fused_score", "attribute_boost", "rerank_score")
              if c in results.columns]
    headers = ["rank", "score", *[c.removesuffix("_score") for c in stages], "product_id", "title"]
    rows = []
    for _, row in results.iterrows():
        cells = [str(row["rank"]), _number(row["score"]), *[_number(row[c]) for c in stages],
                 str(row["product_id"]), _clip(str(row["title"]), title_width)]
        rows.append(cells)
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = len(headers) - 2

    def line(cells: list[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            parts.append(pad + cell if i < numeric else (cell + pad if i < len(cells) - 1 else cell))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _number(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{float(value):.4f}"
