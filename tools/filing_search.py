"""Search a company's filing texts by paragraph, for an agent answering questions about them.

**Document sources.** A *source* is either a dossier (a folder, or the ticker of a bundled one:
its filing texts, split into numbered paragraphs exactly as :mod:`chainproof.tools.legal_passages`
numbers them, so ``risk_factors ¶12`` means the same paragraph in both graphs) or a JSON document
file ``{"name": str, "sections": {section: [paragraph, ...]}}`` whose paragraphs are numbered from 1
as listed (for text that is not a 10-K's layout: a table's rows, a report's paragraphs;
``bench/filing_qa.py`` builds one per TAT-QA question). Sources are loaded once per file
modification time.

**Search.** :func:`search` ranks the paragraphs by BM25 through an in-memory SQLite FTS5 table
(``porter unicode61`` tokenizer; FTS5's ``bm25()``: Okapi BM25, k1 = 1.2, b = 0.75, SQLite FTS5
documentation 4.3.3.1), the query being the OR of the query's words without stop words. Each hit
carries its citation (``section ¶n``), as do the evidence lists of :func:`evidence`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chainproof.errors import DossierError
from chainproof.tools.input_files import read_text
from chainproof.tools.legal_passages import cite_of, paragraphs
from chainproof.tools.registry import load_dossier_cached

__all__ = ["DocumentSource", "Hit", "SearchResult", "cited", "evidence", "load_source", "search", "searchable"]

HIT_CHARS = 600  # characters of a paragraph shown in a hit (its start; the whole is in the source)
MAX_HITS = 8
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script (café, not caf)
_CITE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:¶|para\.?|paragraph|p\.)\s*(\d+)")
# words that say nothing about which paragraph holds an answer (question words included)
_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or the this that to "
    "was were what when where which who why with during company s".split())


class DocumentSource(BaseModel):
    """A document as sections of numbered paragraphs: ``sections[name][n - 1]`` is ``name ¶n``."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt key is refused, not dropped

    name: str = Field(min_length=1)
    sections: dict[str, list[str]] = Field(min_length=1)

    def paragraph(self, section: str, n: int) -> str | None:
        """The text of ``section ¶n``, or None when there is no such paragraph."""
        paras = self.sections.get(section) or []
        return paras[n - 1] if 1 <= n <= len(paras) else None


class Hit(BaseModel):
    """One paragraph found: its citation, section, number, BM25 score (higher is better) and text
    (the first :data:`HIT_CHARS` characters)."""

    cite: str
    section: str
    paragraph: int
    score: float
    text: str


class SearchResult(BaseModel):
    """What :func:`search` returns to the model: the hits, best first, and a note when none matched."""

    query: str
    hits: list[Hit]
    note: str | None = None


@lru_cache(maxsize=32)
def _load_json(path: str, mtime_ns: int) -> DocumentSource:
    try:  # size-checked as every input file (input_file_max_mb)
        doc = DocumentSource.model_validate(json.loads(read_text(path, "document")))
    except json.JSONDecodeError as exc:
        raise DossierError(f"document {path}: cannot be read as UTF-8 JSON ({exc})") from None
    except RecursionError:  # "[[[[...]]]]" nested deeper than Python's decoder goes
        raise DossierError(f"document {path}: nested too deeply to be a document of sections") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(the whole file)'}: {e['msg']}" for e in exc.errors())
        raise DossierError(f"document {path}: expected {{\"name\": ..., \"sections\": {{section: [paragraph, ...]}}}}; "
                           f"{problems}") from None
    if not any(_WORD.search(p) for paras in doc.sections.values() for p in paras):
        raise DossierError(f"document {path}: its sections hold no text to search")
    return doc


def load_source(source: str) -> DocumentSource:
    """The document of ``source``: a ``.json`` document file, or a dossier folder or bundled ticker
    (its filing texts). Raises :class:`DossierError` naming what is missing or malformed."""
    path = Path(source).expanduser()
    if path.suffix.lower() == ".json":
        if path.is_dir():
            raise DossierError(f"document: expected a JSON file, got a folder: {path}")
        if not path.is_file():
            raise DossierError(f"document file not found: {path}")
        return _load_json(str(path.resolve()), path.stat().st_mtime_ns)
    dossier = load_dossier_cached(source)
    sections: dict[str, list[str]] = {}
    for para in paragraphs(dossier.texts):
        sections.setdefault(para.section, []).append(para.text)
    if not sections:
        raise DossierError(f"dossier {source}: it holds no filing text to search")
    return DocumentSource(name=f"{dossier.meta.name} ({dossier.meta.ticker})", sections=sections)


def searchable(text: str) -> bool:
    """Whether ``text`` holds a word to search for (a question of only punctuation has none)."""
    return bool(_WORD.search(text))


def _query(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    kept = list(dict.fromkeys(w for w in words if w not in _STOP)) or list(dict.fromkeys(words))
    return " OR ".join(f'"{w}"' for w in kept)


def search(source: DocumentSource, query: str, *, section: str | None = None, limit: int = 4) -> SearchResult:
    """The ``limit`` (at most :data:`MAX_HITS`) paragraphs of ``source`` that best match ``query``
    by BM25, best first, in ``section`` only when given. Raises ``ValueError`` naming ``query``
    when it holds no word and ``section`` when the document has no such section."""
    if section is not None and section not in source.sections:
        raise ValueError(f"section: {section!r} is not a section of this document; its sections are "
                         f"{sorted(source.sections)}")
    fts = _query(query)
    if not fts:
        raise ValueError("query: expected words to search for, e.g. 'total revenue 2019'")
    rows = [(name, n, text) for name, paras in sorted(source.sections.items()) if section in (None, name)
            for n, text in enumerate(paras, 1)]
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE p USING fts5(body, tokenize='porter unicode61')")
        db.executemany("INSERT INTO p(rowid, body) VALUES (?, ?)", [(i, r[2]) for i, r in enumerate(rows)])
        found = db.execute("SELECT rowid, bm25(p) FROM p WHERE p MATCH ? ORDER BY bm25(p), rowid LIMIT ?",
                           (fts, max(1, min(limit, MAX_HITS)))).fetchall()
    finally:
        db.close()
    hits = [Hit(cite=cite_of(rows[i][0], rows[i][1]), section=rows[i][0], paragraph=rows[i][1],
                score=round(-rank, 4), text=rows[i][2][:HIT_CHARS]) for i, rank in found]
    note = None if hits else f"no paragraph contains any of these words; the sections are {sorted(source.sections)}"
    return SearchResult(query=query, hits=hits, note=note)


def cited(source: DocumentSource, text: str) -> list[tuple[str, int]]:
    """The paragraphs ``text`` cites (``[table ¶3]``, ``text para 2``) that exist in ``source``,
    in order of first mention."""
    out: list[tuple[str, int]] = []
    for m in _CITE.finditer(text or ""):
        key = (m.group(1), int(m.group(2)))
        if source.paragraph(*key) is not None and key not in out:
            out.append(key)
    return out


def evidence(source: DocumentSource, question: str, answer: str, limit: int = 4) -> list[Hit]:
    """The paragraphs an answer to ``question`` may cite: those ``answer`` cites, then the best
    BM25 matches of the question and the answer together, at most ``limit`` in all."""
    hits = [Hit(cite=cite_of(s, n), section=s, paragraph=n, score=0.0, text=(source.paragraph(s, n) or "")[:HIT_CHARS])
            for s, n in cited(source, answer)][:limit]
    if len(hits) < limit and _query(f"{question} {answer}"):
        for hit in search(source, f"{question} {answer}", limit=MAX_HITS).hits:
            if len(hits) < limit and all(h.cite != hit.cite for h in hits):
                hits.append(hit)
    return hits
