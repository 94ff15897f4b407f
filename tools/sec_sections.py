"""The sections of a 10-K that due diligence reads, found by their headings in the filing's text:
Item 1A (risk factors), Item 3 (legal proceedings) and the commitments and contingencies note of
Item 8's financial statements, as the filing states them.

Text comes from EDGAR HTML (:func:`html_to_text`, through lxml, which edgartools also uses), from
EDGAR's plain-text documents, or from a PDF converted to text (``pdftotext -layout``). Item headings
follow Regulation S-K's numbering (17 CFR 229; Form 10-K, General Instruction J: "Item 1A. Risk
Factors", "Item 3. Legal Proceedings"), printed at the start of a line, optionally followed by a
period, colon or dash and the item's title. A heading is told from a cross-reference ("see Item 1A,
Risk Factors") by what follows the number: a cross-reference has a comma or lower-case text. The
table of contents lists every heading too, so of several candidates the one opening the longest
section wins (a table-of-contents entry is followed at once by the next item's entry).

A section ends at the next item heading (any number); the note ends at the heading of the next
note number. The note is the one Item 3 refers to ("see Note 20", Boeing; "Note 21 'Legal
Proceedings'", Johnson & Johnson) when it names one, else the commitments and contingencies note. :func:`find_sections` raises :class:`~chainproof.errors.DossierError` naming the
sections it could not find, and what it looked for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chainproof.errors import DossierError

__all__ = ["REQUIRED_SECTIONS", "Section", "find_item", "find_note", "find_sections", "html_to_text"]

_DASH = r"[.:\-\u2013\u2014]"
# "Item 1A. Risk Factors" / "ITEM 3 — LEGAL PROCEEDINGS" / "Item 1A." alone on its line
_ANY_ITEM = re.compile(rf"^[^\S\n]*item[^\S\n]+(\d{{1,2}}[a-c]?)[^\S\n]*{_DASH}?[^\S\n]*(?:$|(?-i:[A-Z\u201c\"(]))", re.I | re.M)

#: section key -> (item number, a word its title contains, what the error calls it)
_ITEMS = {"risk_factors": ("1a", "risk", "Item 1A (Risk Factors)"),
          "legal_proceedings": ("3", "legal", "Item 3 (Legal Proceedings)")}
REQUIRED_SECTIONS = tuple(_ITEMS)


@dataclass(frozen=True)
class Section:
    """A section of the filing: ``text`` as the filing states it (its heading first), and where it
    starts and ends in the text (character offsets) and the heading line it was found by."""

    key: str
    heading: str
    text: str
    start: int
    end: int


def html_to_text(html: str | bytes) -> str:
    """Visible text of an EDGAR HTML (or inline-XBRL) document (bytes: UTF-8, else Windows-1252),
    one line per block element;
    the inline-XBRL header (``ix:header``: contexts and hidden facts) and scripts are dropped."""
    import lxml.html  # type: ignore[import-untyped]

    if isinstance(html, bytes):
        try:
            markup = html.decode("utf-8")
        except UnicodeDecodeError:
            markup = html.decode("cp1252", "replace")  # older EDGAR documents are Windows-1252
    else:
        markup = html
    markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup)  # lxml refuses a str with an encoding declaration
    root = lxml.html.fromstring(markup)
    for bad in root.xpath("//script|//style|//*[local-name()='header']"):
        bad.drop_tree()
    for block in root.xpath("//p|//div|//br|//tr|//li|//h1|//h2|//h3|//h4|//h5|//h6|//table"):
        block.tail = "\n" + (block.tail or "")
    for cell in root.xpath("//td|//th"):
        cell.tail = "  " + (cell.tail or "")
    text = root.text_content().replace("\xa0", " ")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _longest(text: str, starts: Sequence[re.Match[str]], end_of: re.Pattern[str]) -> tuple[int, int, str] | None:
    best: tuple[int, int, str] | None = None
    for m in starts:
        nxt = end_of.search(text, m.end())
        end = nxt.start() if nxt else len(text)
        if best is None or end - m.start() > best[1] - best[0]:
            best = (m.start(), end, m.group(0).strip())
    return best


def find_item(text: str, number: str, title_word: str) -> Section | None:
    """The section of Item ``number`` ("1a", "3") whose heading line contains ``title_word`` (or is
    only the number), up to the next item heading; ``None`` when no heading is found."""
    starts = [m for m in _ANY_ITEM.finditer(text) if m.group(1).lower() == number.lower()
              and (title_word in _line(text, m.start()).lower() or _line(text, m.start()).strip().lower()
                   .rstrip(".:") .replace(" ", "") == f"item{number.lower()}")]
    found = _longest(text, starts, _ANY_ITEM)
    if found is None:
        return None
    start, end, heading = found
    return Section(number, _line(text, start).strip() or heading, text[start:end].strip() + "\n", start, end)


def _line(text: str, pos: int) -> str:
    stop = text.find("\n", pos)
    return text[pos:stop if stop >= 0 else len(text)]


_NOTE = re.compile(rf"^[^\S\n]*(?:note[^\S\n]+)?(\d{{1,2}})[^\S\n]*{_DASH}?[^\S\n]+([^\n]{{0,90}}contingenc[^\n]*)$", re.I | re.M)


def find_note(text: str) -> Section | None:
    """The commitments and contingencies note ("Note 15. Commitments and Contingencies", "12.
    Contingencies and Commitments", "NOTE 12 – COMMITMENTS AND CONTINGENCIES") up to the heading of
    the next note number; ``None`` when there is none. Candidates inside the table of contents and
    cross-references ("Note 15 ... of this document") give short sections and lose."""
    best: Section | None = None
    for m in _NOTE.finditer(text):
        title = m.group(2).strip()
        if len(title) > 90 or title.endswith(("”", ",")) or title.startswith(("“", '"')) or re.search(r"\bof this\b|\bsee\b|\brefer", title, re.I):
            continue
        nxt = re.compile(rf"^[^\S\n]*(?:note[^\S\n]+)?{int(m.group(1)) + 1}[^\S\n]*{_DASH}?[^\S\n]+(?-i:[A-Z])", re.I | re.M)
        stop = nxt.search(text, m.end())
        end = stop.start() if stop else min(len(text), m.end() + 200_000)
        if best is None or end - m.start() > best.end - best.start:
            best = Section("legal_note", m.group(0).strip(), text[m.start():end].strip() + "\n", m.start(), end)
    return best


def find_note_number(text: str, number: int) -> Section | None:
    """Note ``number`` of the financial statements ("Note 20 – Legal Proceedings", "21. Legal
    Proceedings", "NOTE 12" with its title on the next line) up to the heading of the next note
    number; of several candidates (the table of contents lists them too) the longest wins."""
    head = re.compile(rf"^[^\S\n]*(?:note[^\S\n]+{number}[^\S\n]*(?:{_DASH}[^\S\n]*)?(?:$|(?-i:[A-Z]))|{number}\.[^\S\n]+(?-i:[A-Z]))",
                      re.I | re.M)
    nxt = re.compile(rf"^[^\S\n]*(?:note[^\S\n]+{number + 1}\b|{number + 1}\.[^\S\n]+(?-i:[A-Z]))", re.I | re.M)
    found = _longest(text, list(head.finditer(text)), nxt)
    if found is None:
        return None
    start, end, _ = found
    if end - start > 200_000:  # no next note: not a note heading
        return None
    return Section("legal_note", _line(text, start).strip(), text[start:end].strip() + "\n", start, end)


def _referenced_note(text: str, item3: Section | None) -> Section | None:
    """The note Item 3 refers to ("see Note 20 to our Consolidated Financial Statements"), when it
    refers to exactly one note number and that note is found."""
    numbers = {int(n) for n in re.findall(r"\bnote\s+(\d{1,2})\b", item3.text, re.I)} if item3 else set()
    return find_note_number(text, numbers.pop()) if len(numbers) == 1 else None


def find_sections(text: str, *, document: str = "the 10-K", need_note: bool = False) -> dict[str, Section]:
    """``{"risk_factors", "legal_proceedings"[, "legal_note"]: Section}`` of a 10-K's text.

    Raises :class:`DossierError` naming ``document`` and every required section that was not found
    (and the heading it looked for); the note is required only with ``need_note``."""
    found: dict[str, Section] = {}
    missing = []
    for key, (number, word, name) in _ITEMS.items():
        section = find_item(text, number, word)
        if section is None:
            missing.append(f"{name}: no line starting 'Item {number.upper()}' followed by its title")
        else:
            found[key] = section
    note = _referenced_note(text, found.get("legal_proceedings")) or find_note(text)
    if note is not None:
        found["legal_note"] = note
    elif need_note:
        missing.append("the commitments and contingencies note: no 'Note N. ... Contingencies' heading")
    if missing:
        raise DossierError(f"{document}: section not found: {'; '.join(missing)}")
    return found
