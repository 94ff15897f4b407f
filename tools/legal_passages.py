"""Long filing sections read by a small model: retrieval of the legal and regulatory paragraphs
(BM25 through SQLite FTS5), packing them into chunks that fit the model's prompt budget (the *map*
steps of the due-diligence graph read one chunk each), and checking the citations the model
writes back (the *reduce*, :func:`check_readings`).

**Paragraphs and citations.** A section's paragraphs are the candidates of
:func:`chainproof.tools.legal.split_candidates` (headed blocks cut into paragraphs, long ones cut
at sentence ends), numbered from 1 in the order they appear; ``risk_factors ¶12`` cites the 12th
paragraph of Item 1A, the same ordinal as the ranked matter id ``risk_factors#012``. A citation
*holds* when the section and paragraph exist and the quoted words occur in that paragraph (case,
whitespace and typographic quotes ignored; at least :data:`MIN_QUOTE_WORDS` words). A reading
without quotation marks whose opening words are the paragraph's own (the embedded 1.5B model
copies the paragraph after its cite instead of quoting it: all 7 readings of 3M's FY2017 10-K,
measured with ``bench/real_filing.py``) holds too, its quote being the longest such opening of at
least :data:`MIN_COPIED_WORDS` words (at most :data:`MAX_COPIED_WORDS`).

**Retrieval.** Every paragraph of the three sections goes into an in-memory SQLite FTS5 table
(``porter unicode61`` tokenizer); the query is the OR of the legal vocabulary of
:mod:`chainproof.tools.legal` (litigation, government and severity terms); paragraphs are ranked
by FTS5's ``bm25()`` (Okapi BM25, k1 = 1.2, b = 0.75; SQLite FTS5 documentation, section 4.3.3.1)
times the section weight (:data:`~chainproof.tools.legal.SECTION_WEIGHTS`: a proceeding outranks
a generic risk factor). The best :data:`RETRIEVED` paragraphs are packed, best first, into
chunks of at most :data:`CHUNK_CHARS` characters of paragraph text (a paragraph longer than
:data:`PARAGRAPH_CHARS` is cut at a sentence end: its first sentences, still verbatim).

**Budget.** A map step's prompt is the graph's system prompt, the goal, the progress lines, the
rolling summary (at most 12 lines of 400 characters), the instruction and one chunk as JSON
(at most 2,400 characters, :func:`chainproof.graphs.prompting.compact_json`). By the project's
token estimate (characters / 4, :func:`chainproof.agents.ratelimit.estimate_tokens`) that is at
most :data:`PROMPT_BUDGET_TOKENS` tokens, which leaves the embedded model (``n_ctx`` 4,096) room
for its longest answer (1,024 tokens at high effort) whatever the filing's length.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools.legal import GOVERNMENT_TERMS, LITIGATION_TERMS, SECTION_WEIGHTS, SEVERITY_TERMS, split_candidates

__all__ = ["CHUNK_CHARS", "PROMPT_BUDGET_TOKENS", "Paragraph", "Citation", "LegalChunk", "paragraphs",
           "retrieve", "legal_chunk", "check_readings", "cite_of", "copied_opening", "quote_holds"]

RETRIEVED = 24  # paragraphs kept by retrieval (more than the chunks hold: packing skips what does not fit)
CHUNK_CHARS = 2000  # paragraph text per chunk; with its JSON keys it stays under compact_json's 2,400
PARAGRAPH_CHARS = 900  # a longer paragraph is shown as its first sentences up to this length
PROMPT_BUDGET_TOKENS = 2500  # characters / 4 of a map step's whole prompt (system + human message)
MIN_QUOTE_WORDS = 3
MIN_COPIED_WORDS = 6  # an unquoted reading's verbatim opening: longer than a quote's minimum, as nothing marks it
MAX_COPIED_WORDS = 40
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)”\"][.;])\s+(?=[A-Z(“\"])")
#: a reading line: "[legal_note ¶12] what the matter is: "exact words"" (¶ or "para"/"p." accepted)
_READING = re.compile(r"\[\s*([a-z_]+)\s*(?:¶|para\.?|p\.)\s*(\d+)\s*\]\s*(.*)", re.I)
_QUOTED = re.compile(r"[\"“]([^\"“”]{8,400})[\"”]")


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of a section: ``n`` is its 1-based ordinal in the section, ``heading`` the
    heading of its block ("" when none), ``text`` the paragraph as the filing states it."""

    section: str
    n: int
    heading: str
    text: str

    @property
    def cite(self) -> str:
        return cite_of(self.section, self.n)


def cite_of(section: str, n: int) -> str:
    """``"legal_note ¶12"``: how a paragraph is cited."""
    return f"{section} ¶{n}"


class Citation(BaseModel):
    """A model's reading of one paragraph, checked: ``cite`` names it, ``note`` is the model's
    words on the matter, ``quote`` the words it quotes from the paragraph."""

    model_config = ConfigDict(frozen=True)

    cite: str
    note: str
    quote: str
    holds: bool
    problem: str | None = Field(None, description="why the citation does not hold (None when it holds)")


class LegalChunk(BaseModel):
    """Chunk ``chunk`` of ``chunks`` of the retrieved paragraphs: ``paragraphs`` as
    ``{"cite", "text"}``; ``retrieved``: how many paragraphs retrieval ranked in all."""

    model_config = ConfigDict(frozen=True)

    chunk: int
    chunks: int
    paragraphs: list[dict[str, str]]
    retrieved: int
    method: str = "SQLite FTS5 bm25 over the legal vocabulary x section weight; see tools.legal_passages"


def paragraphs(texts: Mapping[str, str]) -> list[Paragraph]:
    """Every paragraph of every non-empty section of ``texts`` (section -> text), numbered."""
    return list(_paragraphs(tuple(sorted((k, v) for k, v in texts.items() if v and v.strip()))))


@lru_cache(maxsize=16)
def _paragraphs(items: tuple[tuple[str, str], ...]) -> tuple[Paragraph, ...]:
    out = []
    for section, text in items:
        out += [Paragraph(section, k, heading, para) for k, (heading, para) in enumerate(split_candidates(text), 1)]
    return tuple(out)


def _fts_query() -> str:
    terms = sorted({t for t in (*LITIGATION_TERMS, *GOVERNMENT_TERMS, *SEVERITY_TERMS) if re.fullmatch(r"[a-z .\-]+", t)})
    return " OR ".join('"' + t.replace("-", " ") + '"' for t in terms)


def retrieve(paras: Sequence[Paragraph], limit: int = RETRIEVED) -> list[tuple[Paragraph, float]]:
    """The ``limit`` paragraphs most relevant to legal and regulatory exposure, best first, with
    their score (-bm25 x section weight; higher is more relevant). Paragraphs with no query term
    are never returned."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE p USING fts5(body, tokenize='porter unicode61')")
        db.executemany("INSERT INTO p(rowid, body) VALUES (?, ?)",
                       [(i, f"{p.heading}. {p.text}" if p.heading else p.text) for i, p in enumerate(paras)])
        rows = db.execute("SELECT rowid, bm25(p) FROM p WHERE p MATCH ?", (_fts_query(),)).fetchall()
    finally:
        db.close()
    scored = [(paras[i], -rank * SECTION_WEIGHTS.get(paras[i].section, 1.0)) for i, rank in rows]
    scored.sort(key=lambda x: (-x[1], x[0].section, x[0].n))
    return scored[:limit]


def _shown(text: str) -> str:
    if len(text) <= PARAGRAPH_CHARS:
        return text
    out = ""
    for sentence in _SENTENCE_END.split(text):
        if out and len(out) + 1 + len(sentence) > PARAGRAPH_CHARS:
            break
        out = f"{out} {sentence}" if out else sentence
    return out if len(out) <= PARAGRAPH_CHARS else out[:PARAGRAPH_CHARS].rsplit(" ", 1)[0]


def legal_chunk(texts: Mapping[str, str], chunk: int, chunks: int) -> LegalChunk:
    """Chunk ``chunk`` (1-based) of ``chunks`` of the retrieved paragraphs of ``texts``: the
    retrieved paragraphs are dealt best first into the chunks, each taking a paragraph while it
    has room (:data:`CHUNK_CHARS`), so chunk 1 holds the most relevant. A chunk may be empty when
    the sections hold little. Raises ValueError when ``chunk`` is not in 1..``chunks``."""
    if not 1 <= chunk <= chunks:
        raise ValueError(f"chunk: {chunk} is not in 1..{chunks}")
    found = retrieve(paragraphs(texts))
    bins: list[list[dict[str, str]]] = [[] for _ in range(chunks)]
    room = [CHUNK_CHARS] * chunks
    for para, _ in found:
        shown = _shown(para.text)
        k = next((i for i in range(chunks) if len(shown) <= room[i]), None)
        if k is not None:
            bins[k].append({"cite": para.cite, "text": shown})
            room[k] -= len(shown)
    return LegalChunk(chunk=chunk, chunks=chunks, paragraphs=bins[chunk - 1], retrieved=len(found))


def _norm(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').replace("…", " ")
    return " ".join(re.sub(r"[^\w$%.,'\-]+", " ", text.lower()).split())


def quote_holds(quote: str, paragraph: str) -> bool:
    """True when ``quote`` (at least :data:`MIN_QUOTE_WORDS` words) occurs in ``paragraph``,
    ignoring case, punctuation other than ``$ % . , ' -``, whitespace and an ellipsis at its ends."""
    q = _norm(quote).strip(" .,")
    return len(q.split()) >= MIN_QUOTE_WORDS and q in _norm(paragraph)


def copied_opening(text: str, paragraph: str) -> str:
    """The longest opening of ``text`` (up to :data:`MAX_COPIED_WORDS` words) that occurs in
    ``paragraph`` as :func:`quote_holds` reads it, when it has at least :data:`MIN_COPIED_WORDS`
    words; else ""."""
    words = text.split()
    for n in range(min(len(words), MAX_COPIED_WORDS), MIN_COPIED_WORDS - 1, -1):
        opening = " ".join(words[:n]).rstrip(",;:")
        if quote_holds(opening, paragraph):
            return opening
    return ""


def check_readings(readings: Sequence[str], texts: Mapping[str, str]) -> list[Citation]:
    """Every citation line in the map steps' ``readings`` (``[section ¶n] note: "quote"``), checked
    against the paragraphs of ``texts``. A line without a quote, a paragraph that does not exist, or
    a quote that is not in the cited paragraph gives a citation that does not hold, with the
    problem named. Duplicates (same paragraph and quote) are kept once."""
    by_cite = {p.cite: p for p in paragraphs(texts)}
    out: list[Citation] = []
    seen: set[tuple[str, str]] = set()
    for reading in readings:
        for line in reading.splitlines():
            m = _READING.search(line)
            if not m:
                continue
            cite = cite_of(m.group(1).lower(), int(m.group(2)))
            quoted = _QUOTED.search(m.group(3))
            quote = quoted.group(1).strip() if quoted else ""
            note = (m.group(3)[:quoted.start()] if quoted else m.group(3)).strip(" :—–-\"“”")[:300]
            para = by_cite.get(cite)
            if not quote and para is not None:  # a copy of the paragraph's words, unquoted
                quote = copied_opening(m.group(3).strip(" :—–-"), para.text)
            if (cite, quote) in seen:
                continue
            seen.add((cite, quote))
            problem = ("no such paragraph" if para is None else "no quoted words" if not quote else
                       None if quote_holds(quote, para.text) else "the quoted words are not in that paragraph")
            out.append(Citation(cite=cite, note=note or "(no note)", quote=quote[:300], holds=problem is None,
                                problem=problem))
    return out
