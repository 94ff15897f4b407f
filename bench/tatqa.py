"""TAT-QA for ``bench/filing_qa.py``: the seeded sample of questions, each question's table and
paragraphs as a filing-qa JSON document, and the issue's scoring rule (within 1 % for numbers,
exact match after normalisation for text). TAT-QA: CC BY 4.0, Zhu et al., ACL 2021."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

__all__ = ["CITES", "NUM", "column_names", "document", "header_rows", "is_correct", "number_in", "sample"]

_SCALE = {"percent": 0.01, "thousand": 1e3, "million": 1e6, "billion": 1e9}
CITES = re.compile(r"\[[^\]]*¶[^\]]*\]")  # "[table ¶3]": a citation, not part of an answer
NUM = re.compile(r"\(?-?\$?\d[\d,]*(?:\.\d+)?\)?")


def sample(data: Path, limit: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``limit`` (context, question) pairs: half arithmetic, half span, seeded."""
    pairs = [(c, q) for c in json.loads((data / "tatqa_dataset_test_gold.json").read_text()) for q in c["questions"]]
    pairs.sort(key=lambda p: p[1]["uid"])
    rng = random.Random(seed)
    arith = rng.sample([p for p in pairs if p[1]["answer_type"] == "arithmetic"], (limit + 1) // 2)
    spans = rng.sample([p for p in pairs if p[1]["answer_type"] == "span"], limit // 2)
    return [p for pair in zip(arith, spans + [None]) for p in pair if p is not None][:limit]  # type: ignore[misc]


_VALUE = re.compile(r"^[\s$€£(\-–—]*\d[\d,.]*\s*%?\)?\s*$")


def _is_value(cell: str) -> bool:
    """A table cell that is a figure (``$1,402``, ``(3.1)``, ``12.7%``), not a year or a label."""
    text = cell.strip()
    return bool(_VALUE.match(text)) and not re.fullmatch(r"(?:19|20)\d\d", text)


def header_rows(rows: list[list[str]]) -> int:
    """How many leading rows of a TAT-QA table are its column headings: the first row, and each
    next one whose label cell is blank or whose other cells are all filled, while none holds a
    figure (at most 3)."""
    count = 0
    for k, row in enumerate(rows[:3]):
        labelled_row = k and row[0].strip() and not all(c.strip() for c in row[1:])
        if labelled_row or any(_is_value(c) for c in row[1:]):
            break
        count += 1
    return max(count, 1) if rows else 0


def column_names(rows: list[list[str]], count: int) -> list[str]:
    """Each column's name: its heading cells top to bottom. A heading row above the last spans
    columns (``2019`` over ``Cents per share`` and ``Total``): its k headings split the columns
    into k equal groups in order when they divide evenly, else each column takes the nearest."""
    width = max(len(r) for r in rows[:count]) if count else 0
    names: list[list[str]] = [[] for _ in range(width)]
    for k, row in enumerate(rows[:count]):
        cells = [(row[j].strip() if j < len(row) else "") for j in range(width)]
        placed = [(j, c) for j, c in enumerate(cells) if j and c]
        for j in range(1, width):
            if k == count - 1 or not placed:
                cell = cells[j]
            elif (width - 1) % len(placed) == 0:
                cell = placed[(j - 1) // ((width - 1) // len(placed))][1]
            else:
                cell = min(placed, key=lambda p: abs(p[0] - j))[1]
            if cell and cell not in names[j]:
                names[j].append(cell)
    return [(rows[0][0].strip() if rows and rows[0] else "") or "label",
            *[" ".join(n) or f"column {j}" for j, n in enumerate(names[1:], 1)]]


def document(context: dict[str, Any]) -> dict[str, Any]:
    """The question's table and paragraphs as a filing-qa JSON document: a paragraph naming the
    columns, then one per row (``label: column: value; ...``), then the text's paragraphs."""
    rows = context["table"]["table"]
    count = header_rows(rows)
    head = column_names(rows, count)
    table = []
    for row in rows[count:]:
        cells = [f"{head[k] if k < len(head) else k}: {v}" for k, v in enumerate(row[1:], 1) if v.strip()]
        table.append(f"{row[0].strip() or '(no label)'}: " + "; ".join(cells) if cells else row[0].strip() or "(blank)")
    header = "Columns: " + " | ".join(head)
    paras = [p["text"] for p in sorted(context["paragraphs"], key=lambda p: p["order"])]
    return {"name": "a company's annual report", "sections": {"table": [header, *table], "text": paras or ["(none)"]}}


def _norm(text: str) -> str:
    text = CITES.sub(" ", text).lower().replace(",", "").replace("$", "").replace("%", "")
    text = re.sub(r"[^\w.\- ]", " ", text)
    words = [w.strip(".") for w in text.split() if w.strip(".") not in ("a", "an", "the", "")]
    return " ".join(words)


def number_in(text: str) -> float | None:
    """The number an answer gives: the whole answer when it is one, else its first number that
    is not a year (else its first number)."""
    found = []
    for m in NUM.finditer(CITES.sub(" ", text)):
        raw = m.group()
        neg = raw.startswith("(") and raw.endswith(")")
        try:
            value = float(raw.strip("()").replace("$", "").replace(",", ""))
        except ValueError:
            continue
        found.append(-value if neg else value)
    years = [v for v in found if not (v.is_integer() and 1900 <= v <= 2100)]
    return (years or found or [None])[0]


def is_correct(question: dict[str, Any], text: str, value: float | None) -> bool:
    """The issue's rule: within 1 % for numbers, exact match after normalisation for text. A
    number is an ``arithmetic`` answer or a span whose gold is one number (TAT-QA's span
    ``19.2`` with scale ``million``: "$19.2 million" is that number, not other words); any other
    span is text."""
    gold = question["answer"]
    spans = gold if isinstance(gold, list) else [gold]
    figure = float(gold) if question["answer_type"] == "arithmetic" else (
        _as_number(str(spans[0])) if len(spans) == 1 else None)
    if figure is None:
        return _norm(text) == _norm(" ".join(str(s) for s in spans))
    given = value if value is not None else number_in(text)
    if given is None:
        return False
    return any(abs(given - figure * m) <= 0.01 * abs(figure * m) if figure else abs(given) < 1e-9
               for m in (1.0, _SCALE.get(question.get("scale") or "", 1.0)))


def _as_number(span: str) -> float | None:
    """The number a gold span is (``1,677,983``, ``$19.2``, ``(3.1)``, ``12.5%``), else None."""
    raw = span.strip().replace("$", "").replace(",", "").replace("%", "").strip()
    negative = raw.startswith("(") and raw.endswith(")")
    try:
        number = float(raw.strip("()"))
    except ValueError:
        return None
    return -number if negative else number
