"""Rank the legal and regulatory matters in a company's filing texts by materiality.

Pipeline (deterministic):

1. **Normalise** each text: drop page numbers and "Table of Contents" lines, re-join words that
   pdftotext split with a stray space ("Risk Factor s" -> "Risk Factors"), collapse whitespace.
2. **Split** into candidate matters: headed blocks (short title-case or upper-case lines without a final
   period, ``Item``/``Note`` headings, bullets) are cut into paragraphs (a line ending a sentence well
   short of the text's usual line width ends a paragraph); paragraphs under :data:`MIN_CHARS` are merged
   into the next one of the same block. Each candidate keeps its heading as context.
3. **Score** each candidate (``score`` = section weight x sum of the feature points below):

   ============================  =====================================================================
   feature                       points
   ============================  =====================================================================
   litigation terms              2 x log2(1 + hits) over :data:`LITIGATION_TERMS` (lawsuit, plaintiff,
                                 class action, verdict, settlement, punitive, MDL, ...)
   government / regulators       2 x log2(1 + hits) over :data:`GOVERNMENT_TERMS` (Attorney General,
                                 EPA, DOJ, SEC, FDA, state of ..., investigation, subpoena, ...)
   severity terms                1.5 per distinct :data:`SEVERITY_TERMS` hit, at most 6 (death,
                                 cancer, contamination, criminal, fraud, shooting, ...)
   dollar amounts                3 x log10(1 + largest USD millions), scaled down when the
                                 paragraph has fewer than 2 litigation/government hits
   plaintiffs / cases            1.5 x log10(1 + largest count of plaintiffs/claimants/lawsuits/...)
   growing docket                +2 when the text says the number of suits "continues to increase"
   loss contingency              +3 when a loss is called "reasonably possible" (the ASC 450-20
                                 disclosure threshold)
   "material adverse" language   +3 per affirmative mention (max 2); -2 per negated mention
                                 ("not material", "would not have a material adverse effect")
   ============================  =====================================================================

   Section weights: legal note and legal proceedings 1.0, risk factors 0.7 (risk factors are generic
   by design, so a concrete proceeding should outrank them).
4. **Rank** by score and return the top N with a title (first ~15 words incl. the heading), the
   parsed amounts, the section and an excerpt (<= :data:`EXCERPT_CHARS` = 200 characters: the
   candidate's highest-scoring sentence). Paragraphs longer than :data:`CHUNK_CHARS` are cut at sentence
   ends first (pdftotext sometimes runs several matters into one paragraph).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools.dossier import Dossier

__all__ = ["LegalMatter", "LegalReview", "legal_matters", "rank_legal_texts", "normalise_text",
           "split_candidates", "parse_amounts_usd_millions", "SECTION_WEIGHTS"]

SECTION_WEIGHTS: dict[str, float] = {"legal_note": 1.0, "legal_proceedings": 1.0, "risk_factors": 0.7}
LEGAL_SECTIONS = ("legal_note", "legal_proceedings")
MIN_CHARS = 220  # shorter paragraphs are merged into the next one
CHUNK_CHARS = 1400  # longer paragraphs (pdftotext merges some) are cut at sentence ends into chunks
EXCERPT_CHARS = 200  # <= 300 as promised; keeps a top-8 review under 4 KB of JSON
TITLE_CHARS = 90
TITLE_WORDS = 15

LITIGATION_TERMS = (
    "lawsuit", "lawsuits", "litigation", "plaintiff", "plaintiffs", "claimant", "claimants", "class action",
    "class actions", "complaint", "complaints", "verdict", "jury", "trial", "settlement", "settled", "damages",
    "punitive", "multidistrict", "multi-district", "mdl", "mass tort", "bellwether", "injunction", "injunctive", "indictment", "appeal",
    "alleges", "alleging", "alleged", "sued", "defendant", "defendants", "judgment", "arbitration",
)
GOVERNMENT_TERMS = (
    "attorney general", "attorneys general", "environmental protection agency", "epa", "department of justice",
    "doj", "securities and exchange commission", "sec", "food and drug administration", "fda",
    "federal trade commission", "ftc", "department of labor", "state of", "federal", "government",
    "regulator", "regulators", "regulatory", "agency", "investigation", "subpoena", "subpoenas", "consent order",
    "civil investigative demand", "grand jury", "u.s. attorney", "european commission", "pollution control",
)
SEVERITY_TERMS = (
    "death", "wrongful death", "cancer", "mesothelioma", "asbestos", "contamination", "contaminated",
    "toxic", "criminal", "fraud", "bribery", "corrupt", "antitrust", "shooting", "personal injury",
    "natural resource", "drinking water", "injuries", "physical injury", "emotional distress", "fatal", "explosion", "recall", "perfluor", "pfas", "pfc", "pfoa",
    "pfos", "afff", "talc", "opioid",
)
_MATERIAL_POS = re.compile(r"material(ly)? adverse|could be material|would be material|material effect", re.I)
_MATERIAL_NEG = re.compile(
    r"\bnot (be )?material\b|(would|will|should|does|did|is|are) not (have |be )?(expected to have )?"
    r"(a |an )?material(ly)? (adverse )?(effect|impact)|not expected to have a material|remote that",
    re.I)

_GROWING = re.compile(r"continues? to increase|increasing number of|number of (pending )?\w* ?(lawsuits|claims|cases) "
                      r"(has )?(increased|grown)", re.I)
_REASONABLY_POSSIBLE = re.compile(r"reasonably possible", re.I)
_AMOUNT = re.compile(
    r"(?:US)?\$\s?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:\s*(million|billion|thousand|mln|bln|bn)\b)?",
    re.I)
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "dozens of": 36,
                 "several hundred": 300, "hundreds of": 200, "thousands of": 2000, "several thousand": 3000}
_COUNT = re.compile(
    r"(\d{1,3}(?:,\d{3})+|\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) +
    r")\s+(?:[a-z\-]+\s+){0,3}?(plaintiffs|claimants|lawsuits|cases|complaints|class actions|actions|claims|suits)\b",
    re.I)

_SENTENCE = re.compile(r"(?<=[a-z0-9)®™”\"][.;])\s+(?=[A-Z(“\"])")
_PAGE_LINE = re.compile(r"^\s*(\d{1,3}|[ivxlc]{1,6}|table of contents|page \d+( of \d+)?)\s*$", re.I)
_STRAY = re.compile(r"\b([A-Za-z]{2,}) ([b-hj-z])(?=[\s.,;:)”\"']|$)")
_HEADING_START = re.compile(r"^(item|note)\s+\d+[a-z]?\b", re.I)
_BULLET = re.compile(r"^\s*([*•·\-–]|\(\w\))\s*")
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with",
                "vs", "v", "—", "–", "-", "&"}


class LegalMatter(BaseModel):
    """One ranked candidate matter. ``amounts_usd_millions``: up to 3 largest amounts in the text."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="<section>#<ordinal of the candidate in that section>")
    cite: str = Field("", description="the paragraph cited: '<section> ¶<ordinal>' (tools.legal_passages)")
    title: str
    score: float
    section: str
    amounts_usd_millions: list[float] = Field(default_factory=list)
    max_count: int | None = Field(None, description="largest count of plaintiffs/claimants/cases mentioned")
    tags: list[str] = Field(default_factory=list, description="severity terms found (e.g. perfluor, asbestos)")
    excerpt: str


class LegalReview(BaseModel):
    """Result of :func:`legal_matters`: the top-N matters by materiality score, highest first."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    n_candidates: int
    sections: list[str]
    matters: list[LegalMatter]
    max_amount_usd_millions: float | None = Field(
        None, description="largest amount stated as exposure (an accrual, damages, settlement, fine, claim, loss: "
                          "tools.legal_amounts) among the top matters from the legal sections (risk-factor amounts, "
                          "e.g. debt totals, are not legal exposure and are left out)")
    notes: list[str] = Field(default_factory=list)
    readings: list[dict[str, Any]] = Field(
        default_factory=list, description="the model's citations from its readings of the retrieved paragraphs, "
                                          "each checked against the filing (tools.legal_passages.Citation)")
    method: str = "keyword families + parsed USD amounts + plaintiff counts + materiality language; see tools.legal"


# ----------------------------------------------------------------------------------------------
def normalise_text(text: str) -> str:
    """Drop page-number / "Table of Contents" lines, repair pdftotext split words, tidy spaces.
    Line breaks are kept (they carry the layout used for splitting)."""
    out = []
    for line in text.replace("\f", "\n").replace("\r", "").split("\n"):
        if _PAGE_LINE.match(line):
            out.append("")
            continue
        line = _STRAY.sub(r"\1\2", line)
        out.append(" ".join(line.split()))
    return "\n".join(out)


def _is_heading(line: str, prev: str) -> bool:
    if _HEADING_START.match(line):
        return True
    words = line.split()
    if not 1 <= len(words) <= 16 or len(line) > 120 or line[-1] in ".,;" or not line[0].isupper():
        return False
    if prev and prev[-1] not in ".:;”\")" and not prev.isupper():
        return False  # continuation of a sentence
    if re.fullmatch(r"[\d$%().,\s\-—–]+", line):
        return False
    letters = [w for w in words if w[0].isalpha()]
    if not letters:
        return False
    if line.isupper():
        return True
    caps = sum(1 for w in letters if w[0].isupper() or w.lower() in _SMALL_WORDS)
    return caps / len(letters) >= 0.8


def split_candidates(text: str) -> list[tuple[str, str]]:
    """Split normalised text into ``(heading, paragraph)`` candidates (see module docstring)."""
    lines = normalise_text(text).split("\n")
    lengths = [len(x) for x in lines if len(x) > 40]
    width = statistics.quantiles(lengths, n=10)[-1] if len(lengths) >= 10 else 140.0
    paras: list[tuple[str, str]] = []
    heading = ""
    buf: list[str] = []
    prev = ""

    def flush() -> None:
        if buf:
            paras.append((heading, " ".join(buf)))
            buf.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            # a blank line ends a paragraph only after a finished sentence
            if buf and buf[-1][-1:] in ".:;”\")":
                flush()
            continue
        if _BULLET.match(line) and len(_BULLET.sub("", line)) < 3:
            flush()  # lone bullet glyph
            continue
        if _is_heading(line, prev if buf or paras else ""):
            flush()
            heading = line.rstrip(":")
            prev = line
            continue
        if _BULLET.match(line) and line[:1] in "*•·":
            flush()
            line = _BULLET.sub("", line)
        buf.append(line)
        prev = line
        if line[-1] in ".:”\")" and len(raw) < 0.8 * width:
            flush()
    flush()
    # merge short paragraphs into the next one of the same headed block (or the previous one at its end)
    merged: list[tuple[str, str]] = []
    k = 0
    while k < len(paras):
        head = paras[k][0]
        group = []
        while k < len(paras) and paras[k][0] == head:
            group.append(paras[k][1])
            k += 1
        kept: list[str] = []
        carry = ""
        for para in group:
            para = f"{carry} {para}" if carry else para
            carry = ""
            if len(para) < MIN_CHARS:
                carry = para
            else:
                kept.append(para)
        if carry:
            if kept:
                kept[-1] = f"{kept[-1]} {carry}"
            else:
                kept.append(carry)
        merged.extend((head, chunk) for para in kept for chunk in _chunks(para))
    return merged


def _chunks(para: str) -> list[str]:
    if len(para) <= CHUNK_CHARS:
        return [para]
    out, cur = [], ""
    for sent in _SENTENCE.split(para):
        if cur and len(cur) + len(sent) > CHUNK_CHARS:
            out.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}" if cur else sent
    if cur:
        if out and len(cur) < MIN_CHARS:
            out[-1] += " " + cur
        else:
            out.append(cur)
    return out


def parse_amounts_usd_millions(text: str) -> list[float]:
    """All dollar amounts in ``text`` in USD millions ("$5 billion" -> 5000, "$100,000" -> 0.1)."""
    out = []
    for num, unit in _AMOUNT.findall(text):
        value = float(num.replace(",", ""))
        unit = unit.lower()
        if unit in ("billion", "bln", "bn"):
            value *= 1000
        elif unit == "thousand":
            value /= 1000
        elif unit not in ("million", "mln"):
            value /= 1e6
        out.append(round(value, 6))
    return out


def _max_count(text: str) -> int | None:
    best = None
    for num, _ in _COUNT.findall(text):
        key = num.lower()
        n = _NUMBER_WORDS.get(key) if key in _NUMBER_WORDS else int(key.replace(",", ""))
        if n is not None and 1 < n < 1_000_000 and not 1900 <= n <= 2100:
            best = n if best is None else max(best, n)
    return best


def _term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words/phrases, optional plural ("sec" must not match "second")."""
    alts = "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
    return re.compile(rf"\b(?:{alts})(?:s|es)?\b")


_LIT_RE, _GOV_RE = _term_pattern(LITIGATION_TERMS), _term_pattern(GOVERNMENT_TERMS)


def _hits(text: str, pattern: re.Pattern[str]) -> int:
    return len(pattern.findall(text.lower()))


def _points(text: str) -> float:
    lit, gov = _hits(text, _LIT_RE), _hits(text, _GOV_RE)
    sev = len(_tags(text, limit=None))
    pts = 2 * math.log2(1 + lit) + 2 * math.log2(1 + gov) + 1.5 * min(sev, 4)
    amounts = parse_amounts_usd_millions(text)
    if amounts:
        pts += 3 * math.log10(1 + max(amounts)) * min(1.0, (lit + gov) / 2)
    count = _max_count(text)
    if count:
        pts += 1.5 * math.log10(1 + count)
    if _GROWING.search(text):
        pts += 2
    if _REASONABLY_POSSIBLE.search(text):
        pts += 3
    neg = len(_MATERIAL_NEG.findall(text))
    pos = max(0, len(_MATERIAL_POS.findall(text)) - neg)
    return pts + 3 * min(pos, 2) - 2 * neg


def _tags(text: str, limit: int | None = 3) -> list[str]:
    low = text.lower()
    found = sorted((low.find(t), t) for t in SEVERITY_TERMS if t in low)
    out: list[str] = []
    for _, t in found:
        if not any(t in o or o in t for o in out):
            out.append(t)
    return out[:limit]


def _excerpt(text: str) -> str:
    sentences = _SENTENCE.split(text)
    best = max(sentences, key=lambda s: (_points(s), -len(s)))
    best = best.strip()
    return best if len(best) <= EXCERPT_CHARS else best[:EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _title(heading: str, para: str) -> str:
    generic = re.fullmatch(r"(item|note)\b.*|.*(legal proceedings|risk factors|commitments and contingencies).*",
                           heading.lower()) if heading else True
    words = (([] if generic else heading.split() + ["—"]) + para.split())[:TITLE_WORDS]
    title = " ".join(words)
    return title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


def rank_legal_texts(texts: Mapping[str, str], top_n: int = 8, ticker: str = "") -> LegalReview:
    """Rank candidate matters across ``texts`` (section name -> text; sections named as in
    :data:`SECTION_WEIGHTS`, others weigh 1.0). Returns :class:`LegalReview` with the ``top_n`` best.
    Raises ValueError when ``top_n`` < 1."""
    if top_n < 1:
        raise ValueError(f"top_n={top_n} must be >= 1")
    scored: list[tuple[float, int, LegalMatter]] = []
    paras: dict[str, str] = {}
    sections = [s for s, t in texts.items() if t and t.strip()]
    n = 0
    for section in sections:
        weight = SECTION_WEIGHTS.get(section, 1.0)
        for k, (heading, para) in enumerate(split_candidates(texts[section]), start=1):
            n += 1
            full = f"{heading}. {para}" if heading else para
            score = round(weight * _points(full), 2)
            amounts = sorted(set(parse_amounts_usd_millions(para)), reverse=True)[:3]
            matter = LegalMatter(id=f"{section}#{k:03d}", cite=f"{section} ¶{k}", title=_title(heading, para), score=score, section=section,
                                 amounts_usd_millions=amounts, max_count=_max_count(para), tags=_tags(full),
                                 excerpt=_excerpt(para))
            scored.append((score, -n, matter))
            paras[matter.id] = para
    scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
    top = [m for _, _, m in scored[:top_n]]
    notes = []
    if not sections:
        notes.append("no filing text to review")
    missing = [s for s in SECTION_WEIGHTS if s not in sections]
    if missing:
        notes.append(f"sections absent or empty: {', '.join(missing)}")
    from chainproof.tools.legal_amounts import exposure_amounts_usd_millions  # it parses amounts with this module

    all_amounts = [a for m in top if m.section in LEGAL_SECTIONS for a in exposure_amounts_usd_millions(paras[m.id])]
    return LegalReview(ticker=ticker, n_candidates=n, sections=sections, matters=top,
                       max_amount_usd_millions=max(all_amounts) if all_amounts else None, notes=notes)


def legal_matters(d: Dossier, top_n: int = 8, readings: Sequence[str] = ()) -> LegalReview:
    """Top ``top_n`` legal/regulatory matters in the dossier's ``filings/*.txt`` (risk factors, legal
    proceedings and the optional legal note), ranked by the materiality score of the module docstring,
    each citing its paragraph; with ``readings`` (the model's notes on retrieved paragraphs, the map
    steps) their citations checked against the filing
    (:func:`chainproof.tools.legal_passages.check_readings`). Amounts are USD millions. Raises
    ValueError when ``top_n`` < 1."""
    from chainproof.tools.legal_passages import check_readings  # it imports this module

    review = rank_legal_texts(d.texts, top_n=top_n, ticker=d.ticker)
    if not readings:
        return review
    checked = check_readings(readings, d.texts)
    notes = [*review.notes] + ([f"{sum(not c.holds for c in checked)} of the model's {len(checked)} citations do "
                                "not hold and are not used"] if any(not c.holds for c in checked) else [])
    return review.model_copy(update={"readings": [c.model_dump() for c in checked], "notes": notes})
