"""The sections of a 10-K that due diligence reads, found by their headings in the filing's text:
Item 1A (risk factors), Item 3 (legal proceedings) and the commitments and contingencies note of
Item 8's financial statements, as the filing states them.

Text comes from EDGAR HTML (:func:`html_to_text`, through lxml, which edgartools also uses), from
EDGAR's plain-text documents, or from a PDF converted to text (``pdftotext -layout``). Item headings
follow Regulation S-K's numbering (17 CFR 229; Form 10-K, General Instruction J: "Item 1A. Risk
Factors", "Item 3. Legal Proceedings"), printed at the start of a line, optionally followed by a
period, colon or dash and the item's title (or alone, with the title on the next line). A heading is
told from a cross-reference by its title: a heading's words are capitalised (or upper case) but for
small words ("and", "of", "about"), or it is a short phrase in sentence case ("Risk factors"),
where a cross-reference runs on in prose ("see Item 1A, Risk
Factors"; "Item 1A. Risk Factors—Global Operations section of ..." in a 10-Q's MD&A). The table of
contents lists every heading too, so of several candidates the one opening the longest section (in
words) wins: a table-of-contents entry holds its title and a page number.

A section ends at the next item heading (any number), a Part heading ("PART II"), the signatures,
the exhibit index or the executive officers ("Information about our Executive Officers", printed
after Item 3 by Pfizer), whichever comes first. A note ("Note 16. Commitments and Contingencies",
"NOTE 12 – ...", "12. Contingencies and Commitments") ends at the next note number's heading in the
same style, or at one of those stops (the last note runs to Item 9, never into the signatures); a
numbered line of prose ("12. On the closing date, BREIT ...", wrapped after "see Note") or a table's
column header ("12 Months Ended") is not a note heading. The note is the one Item 3 refers to ("see
Note 20", Boeing; "Note 21 'Legal Proceedings'", Johnson & Johnson; "Note 16A", Pfizer) when it names
one, else the commitments and contingencies note. :func:`find_sections` raises
:class:`~chainproof.errors.DossierError` naming the sections it could not find, and what it looked for.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from chainproof.errors import DossierError

__all__ = ["REQUIRED_SECTIONS", "Section", "find_item", "find_note", "find_sections", "html_to_text", "referenced_note"]

_DASH = r"[.:\-\u2013\u2014]"
# "Item 1A. Risk Factors" / "ITEM 3 — LEGAL PROCEEDINGS" / "Item 1A." alone on its line (its title on the next)
_ANY_ITEM = re.compile(rf"^[^\S\n]*item[^\S\n]+(\d{{1,2}}[a-c]?)[^\S\n]*{_DASH}?[^\S\n]*(?=$|(?-i:[A-Z\u201c\"(\[]))", re.I | re.M)
#: lines that end any section besides the next item: a Part heading, the signatures, the exhibit index,
#: the executive officers (printed after Item 4 or in Item 3's place)
_STOP = re.compile(r"^[^\S\n]*(?:part[^\S\n]+(?:iv|i{1,3})(?![\w,])|signatures?[^\S\n]*$|exhibit[^\S\n]+index\b"
                   r"|information[^\S\n]+about[^\S\n]+our[^\S\n]+executive[^\S\n]+officers\b"
                   r"|executive[^\S\n]+officers[^\S\n]+of[^\S\n]+the[^\S\n]+(?:registrant|company)\b)", re.I | re.M)
#: words a heading's title may print in lower case ("Quantitative and Qualitative Disclosures about Market Risk")
_SMALL = frozenset("a an and as at about by for from in into of on or other than that the to under upon with our its not "
                   "certain continued".split())

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


def _line(text: str, pos: int) -> str:
    stop = text.find("\n", pos)
    return text[pos:stop if stop >= 0 else len(text)]


def _title(text: str, pos: int) -> str:
    """The title a heading ends with at ``pos``: the rest of its line, or (a heading printing only
    its number, "Item 1A." / "NOTE 12") the next non-blank line within two lines."""
    rest = _line(text, pos).strip()
    if rest:
        return rest
    after = text[pos:pos + 600].split("\n")[1:4]
    return next((x.strip() for x in after if x.strip()), "")


def _is_title(title: str) -> bool:
    """Whether ``title`` reads as a heading's title: every word capitalised (or upper case) except
    the small words of :data:`_SMALL` and the fragments of up to three letters pdftotext splits off
    ("Risk Factor s", "Summ ary"), or a short phrase in sentence case ("Risk factors", "Commitments
    and contingencies"). Page numbers are not words, and a wide gap may precede only a page number
    (a table-of-contents entry), not another column of a table. "Risk Factors—Global Operations
    section of this Form 10-Q" and "On the closing date, BREIT also purchased" are prose."""
    if re.search(r"\S[^\S\n]{3,}(?!\d+$)\S", title):  # columns of a table ("Months Ended     11 Months")
        return False
    words = re.findall(r"[A-Za-z][\w\u2019'&-]*", title)
    if len(title) <= 160 and all(w[0].isupper() or w.lower() in _SMALL or len(w) <= 3 for w in words):
        return True
    return title[:1].isupper() and len(title) <= 60 and not re.search(
        r"[.;:]\s+\S|\b(?:this|see|section|refer\w*|discussed|described|included)\b", title, re.I)


def _item_heading(text: str, m: re.Match[str]) -> bool:
    """An ``_ANY_ITEM`` match is a heading when its title reads as one (a number alone on its line,
    followed by prose, still is: "Item 1A." then the text)."""
    title = _title(text, m.end())
    return _is_title(title) or not _line(text, m.end()).strip()


def _stops(text: str) -> list[int]:
    """Offsets of every line that ends a section: item headings (:func:`_item_heading`) and
    :data:`_STOP` lines whose text reads as a heading (sorted)."""
    out = [m.start() for m in _ANY_ITEM.finditer(text) if _item_heading(text, m)]
    out += [m.start() for m in _STOP.finditer(text) if _is_title(_line(text, m.start()).strip())]
    return sorted(out)


def _end(stops: Sequence[int], after: int, limit: int, more: Sequence[int] = ()) -> int:
    """The first offset of ``stops`` or ``more`` past ``after``; ``limit`` when none comes first."""
    i = bisect.bisect_right(stops, after)
    return min([limit, *stops[i:i + 1], *(x for x in more if x > after)])


def find_item(text: str, number: str, title_word: str) -> Section | None:
    """The section of Item ``number`` ("1a", "3") whose heading's title (on its line or, for a
    heading printing only the number, the next) contains ``title_word`` and reads as a title
    (:func:`_is_title`: not a cross-reference such as "Item 1A. Risk Factors—Global Operations
    section of ..."), up to the next item heading, Part heading, signatures, exhibit index or
    executive officers (:data:`_STOP`); ``None`` when no heading is found. Of several candidates
    (the table of contents lists every heading) the one opening the longest section (:func:`_longest`) wins; a number
    alone whose next line is prose is taken only when no candidate has a title."""
    stops = _stops(text)
    titled, bare = [], []
    for m in _ANY_ITEM.finditer(text):
        if m.group(1).lower() != number.lower():
            continue
        title = _title(text, m.end())
        if title_word in title.lower() and _is_title(title):
            titled.append(m)
        elif not _line(text, m.end()).strip():
            bare.append(m)
    return _longest([Section(number, _line(text, m.start()).strip(), text[m.start():end].strip() + "\n", m.start(), end)
                     for m in titled or bare for end in [_end(stops, m.start(), len(text))] if _has_body(text, m, end)])


#: a table-of-contents entry's line ends in its page after a wide gap or dot leaders ("Risk Factors   13", "Risk
#: Factors....... 10", "Unresolved Staff Comments   N/A")
_PAGED = re.compile(r"(?:[^\S\n]{2,}|\.{3,}[^\S\n]*)(?:\d{1,3}|[ivx]{1,5}|n/?a)[^\S\n]*$", re.I)
#: words a section whose heading line ends in a page number must hold after it to be the item itself (a
#: table-of-contents entry holds the next entries' titles and pages until the next heading found)
TOC_WORDS = 25


def _has_body(text: str, m: re.Match[str], end: int) -> bool:
    """Whether the section from the item heading ``m`` to ``end`` holds more than its heading: at
    least one word (of letters: a page number is not one) after the heading's line and title ("None."
    and "See Note 12" are bodies), and :data:`TOC_WORDS` words when the heading's line or title ends in
    a page number (``_PAGED``: a table-of-contents entry, whose "body" is the next entries)."""
    first = _line(text, m.end())
    rest = text[m.end() + len(first):end]
    title = first.strip()
    if not title:  # "Item 1A." alone: its title is the next non-blank line
        title = _title(text, m.end())
        rest = rest.replace(title, "", 1)
    paged = _PAGED.search(title) or re.match(r"\s*(?:\d{1,3}|n/?a)[^\S\n]*\n", rest, re.I)
    words = re.findall(r"[A-Za-z]{2,}", rest) + re.findall(r"\b[AI]\b", rest)
    return len(words) >= (TOC_WORDS if paged else 1)


def _note_heads(text: str, number: int | None = None) -> list[tuple[re.Match[str], str, str]]:
    """``[(match, style, title)]`` of the note headings of ``text`` (of note ``number`` when
    given): ``"note"`` style "Note 16. Commitments and Contingencies" / "NOTE 12" (title on the next
    line), ``"num"`` style "12. Contingencies and Commitments" / "16.      Commitments ...". The title
    must read as one (:func:`_is_title`), so a wrapped sentence ("... as discussed in Note\n12. On
    the closing date, BREIT also purchased ...") is not a heading. Group 1 is the number."""
    n = rf"{number}" if number is not None else r"\d{1,2}"
    out = []
    for style, rx in (("note", rf"^[^\S\n]*note[^\S\n]+({n})(?![\d\w])[^\S\n]*{_DASH}?[^\S\n]*(?=$|(?-i:[A-Z]))"),
                      ("num", rf"^[^\S\n]*({n})(?:\.[^\S\n]*|[^\S\n]+)(?=(?-i:[A-Z][a-zA-Z]))")):
        for m in re.finditer(rx, text, re.I | re.M):
            title = _title(text, m.end()) if style == "note" else _line(text, m.end()).strip()
            if title and len(title) <= 100 and _is_title(title) and not re.search(r"\bsee\b|\brefer|\bof this\b", title, re.I):
                out.append((m, style, title))
    return out


def _note(text: str, head: tuple[re.Match[str], str, str], stops: Sequence[int]) -> Section:
    """The note opened by ``head`` (:func:`_note_heads`), up to the heading of the next note number
    in the same style, or a section stop (:func:`_stops`) when that comes first (the last note runs
    to Item 9, never into the signatures)."""
    m, style, _ = head
    following = [x.start() for x, st, _ in _note_heads(text, int(m.group(1)) + 1) if st == style]
    end = _end(stops, m.start(), min(len(text), m.start() + 200_000), following)
    return Section("legal_note", _line(text, m.start()).strip(), text[m.start():end].strip() + "\n", m.start(), end)


def _longest(sections: Sequence[Section]) -> Section | None:
    """The candidate with the most words (a table-of-contents entry has its title and a page
    number; the layout's spacing does not count); the first of equals."""
    return max(sections, key=lambda s: len(s.text.split()), default=None)


def find_note(text: str) -> Section | None:
    """The commitments and contingencies note ("Note 15. Commitments and Contingencies", "12.
    Contingencies and Commitments", "NOTE 12 – COMMITMENTS AND CONTINGENCIES") up to the next note
    heading of its style (:func:`_note`); ``None`` when there is none. Candidates inside the table of
    contents and cross-references ("Note 15 ... of this document") give short sections and lose."""
    stops = _stops(text)
    return _longest([_note(text, h, stops) for h in _note_heads(text)
                     if "contingenc" in h[2].lower() and not h[2].endswith(("\u201d", ",")) and not h[2].startswith(("\u201c", '"'))])


def find_note_number(text: str, number: int) -> Section | None:
    """Note ``number`` of the financial statements ("Note 20 – Legal Proceedings", "21. Legal
    Proceedings", "NOTE 12" with its title on the next line) up to the next note heading of its
    style (:func:`_note`); of several candidates (the table of contents lists them too) the longest
    wins; ``None`` when there is none or it would run on past 200,000 characters."""
    stops = _stops(text)
    best = _longest([_note(text, h, stops) for h in _note_heads(text, number)])
    return best if best is not None and best.end - best.start < 200_000 else None


def referenced_note(text: str, item3: Section | None) -> Section | None:
    """The note Item 3 (or a 10-Q's Part II Item 1) refers to ("see Note 20 to our Consolidated Financial Statements", "Note
    16A"), when it refers to exactly one note number and that note is found."""
    numbers = {int(n) for n in re.findall(r"\bnote\s+(\d{1,2})[A-Z]?\b", item3.text, re.I)} if item3 else set()
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
            missing.append(f"{name}: no line starting 'Item {number.upper()}' followed by its title and the "
                           "section's text (a table-of-contents entry is not the section)")
        else:
            found[key] = section
    note = referenced_note(text, found.get("legal_proceedings")) or find_note(text)
    if note is not None:
        found["legal_note"] = note
    elif need_note:
        missing.append("the commitments and contingencies note: no 'Note N. ... Contingencies' heading")
    if missing:
        raise DossierError(f"{document}: section not found: {'; '.join(missing)}")
    return found
