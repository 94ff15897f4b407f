"""The cover page of a 10-K or 10-Q as the analyst's document prints it: the registrant's name and
the period the report covers, and the checks ``dossier import`` makes with them.

* **Name**: the last line before "(Exact name of registrant as specified in its charter)", else the
  line after "Commission file number ..." (:func:`cover_name`). Two names are the same company when
  they are equal after :func:`normalise_name` (case, punctuation, "&"/"and", a leading or trailing
  "The" and legal suffixes such as "Inc", "Company", "Corporation", "Co", "Corp" do not count):
  "PEPSICO, INC." is the peers file's "PepsiCo Inc.", "THE BOEING COMPANY" its "Boeing Company".
* **Period end**: the date after "For the fiscal year ended" (10-K) or "For the quarterly period
  ended" (10-Q), which Form 10-K and Form 10-Q print on their covers (:func:`period_end`).
* **Stated date**: the latest date the cover states its shares outstanding at ("As of February 22,
  2023, 373,913,450 shares ... were outstanding", "Outstanding at July 31, 2023"), a date shortly
  before the filing; the report was not public before it (:func:`cover_date`).
* **Form**: "10-Q" when that line reads "quarterly period", "10-K" when it reads "fiscal year"
  (else the first "Form 10-K" / "Form 10-Q" of the cover; :func:`form_type`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from chainproof.errors import DossierError

__all__ = ["check_cover", "cover_date", "cover_name", "form_type", "normalise_name", "period_end"]

_NOT_A_NAME = re.compile(r"commission file|transition period|fiscal year ended|form 10-[kq]|securities|exchange act|"
                         r"quarterly period|^\(|^[\d\-\s]+$|^(or|delaware|table of contents)$", re.I)
_PERIOD = re.compile(r"for the (?:fiscal year|quarterly period)\s+ended\s+([A-Z][a-z]+)\.?\s+(\d{1,2}),?\s+((?:19|20)\d\d)", re.I)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_STATED = re.compile(rf"\b(?:as\s+of|at|on)\s+({_MONTH})\s+(\d{{1,2}}),?\s+((?:19|20)\d\d)\b", re.I)
#: where a cover ends: the table of contents or Part I
_COVER_END = re.compile(r"^[^\S\n]*(?:table\s+of\s+contents|index|part\s+i\b)", re.I | re.M)
_SUFFIXES = {"inc", "incorporated", "company", "co", "corporation", "corp", "ltd", "limited", "plc", "llc", "the"}
_HEAD = 30000  # characters of the document the cover is looked for in


def cover_name(text: str) -> str | None:
    """The registrant's name as the cover page prints it; ``None`` when the cover prints it only
    as an image (Coca-Cola's logo)."""
    head = text[:_HEAD]
    mark = re.search(r"\(\s*exact name of registrant", head, re.I)
    if mark:
        candidates = list(reversed([x.strip() for x in head[:mark.start()].splitlines() if x.strip()][-3:]))
    else:
        number = re.search(r"commission file number[^\n]*\n", head, re.I)
        candidates = [x.strip() for x in head[number.end():].splitlines() if x.strip()][:1] if number else []
    for line in candidates:
        if not _NOT_A_NAME.search(line) and 2 < len(line) <= 90:
            return " ".join(line.split())
    return None


def period_end(text: str) -> date | None:
    """The last day of the period the report covers, from its cover ("For the fiscal year ended
    December 30, 2017", "For the quarterly period ended July 29, 2023"); ``None`` when the cover
    prints no such line."""
    m = _PERIOD.search(text[:_HEAD])
    if m is None:
        return None
    try:
        return datetime.strptime(f"{m.group(1)[:3]} {m.group(2)} {m.group(3)}", "%b %d %Y").date()
    except ValueError:
        return None


def _date(month: str, day: str, year: str) -> date | None:
    try:
        return datetime.strptime(f"{month[:3].title()} {day} {year}", "%b %d %Y").date()
    except ValueError:
        return None


def cover_date(text: str) -> date | None:
    """The latest date a line of the cover stating shares outstanding gives ("As of February 22,
    2023, ... shares ... were outstanding", "outstanding at January 31, 2018", "On February 10,
    2023, there were ... outstanding"): the report was filed on or after it. The cover runs from the
    period line to the table of contents or Part I (``_COVER_END``); ``None`` when no such line."""
    head = text[:_HEAD]
    start = _PERIOD.search(head)
    begin = start.end() if start else 0
    stop = _COVER_END.search(head, begin)
    dates = [d for line in head[begin:stop.start() if stop else len(head)].splitlines() if "outstanding" in line.lower()
             for m in _STATED.finditer(line) for d in [_date(*m.groups())] if d is not None]
    return max(dates, default=None)


def form_type(text: str) -> str | None:
    """``"10-K"`` or ``"10-Q"``: the form the cover says the document is (its period line, "For the
    fiscal year ended" or "For the quarterly period ended", else its first "Form 10-K"/"Form 10-Q");
    ``None`` when the cover says neither."""
    head = text[:_HEAD]
    m = _PERIOD.search(head)
    if m is not None:
        return "10-Q" if "quarterly" in m.group(0).lower() else "10-K"
    m = re.search(r"\bform\s+10-?([kq])\b", head, re.I)
    return f"10-{m.group(1).upper()}" if m else None


def normalise_name(name: str) -> str:
    """``name`` in lower case without punctuation, "The" or legal suffixes ("PepsiCo, Inc." ->
    "pepsico", "Coca-Cola Company (The)" -> "cocacola")."""
    words = re.sub(r"[^\w\s]", "", name.lower().replace("&", " and ")).split()
    while words and words[-1] in _SUFFIXES:
        words.pop()
    while words and words[0] == "the":
        words.pop(0)
    return "".join(words)


def check_cover(text: str, option: str, path: Path, *, expected_name: str, as_of: date, form: str | None = None) -> date:
    """The period end of the document ``path`` given as ``option`` ("--10k", "--10q"), after checking
    that its cover is of Form ``form`` ("10-K", "10-Q"; :func:`form_type`; not checked when ``None``),
    names the company ``expected_name`` (the peers file's name for the ticker; not
    checked when empty), that the period ended on or before ``as_of`` and that the cover's
    shares-outstanding date (:func:`cover_date`; the report was filed after it) is not after ``as_of``. A cover whose name is an
    image passes when ``expected_name`` is printed in its first lines. Raises :class:`DossierError`
    naming the option, the file, both names or both dates, or what is missing."""
    found = form_type(text) if form else None
    if form and found != form:
        raise DossierError(f"{option} {path}: expected a Form {form} (its cover reading 'For the "
                           f"{'quarterly period' if form == '10-Q' else 'fiscal year'} ended ...'), got "
                           f"{'a Form ' + found if found else 'a document whose cover names neither Form 10-K nor 10-Q'}")
    if expected_name.strip():
        name = cover_name(text)
        want = normalise_name(expected_name)
        if name is None:
            if want not in normalise_name(text[:5000]):
                raise DossierError(f"{option} {path}: the cover prints no registrant name and the peers file's name "
                                   f"{expected_name!r} is not on it; is this the company's document?")
        elif normalise_name(name) != want:
            raise DossierError(f"{option} {path}: the cover names {name!r}, but the peers file (--peers) names the ticker's "
                               f"company {expected_name!r}: a document of another company")
    end = period_end(text)
    if end is None:
        raise DossierError(f"{option} {path}: no period end on the cover (expected a line 'For the fiscal year ended "
                           "<Month D, YYYY>' or 'For the quarterly period ended <Month D, YYYY>'): it cannot be checked "
                           "against --as-of")
    if end > as_of:
        raise DossierError(f"{option} {path}: the period it reports ended {end.isoformat()}, after --as-of "
                           f"{as_of.isoformat()}: a dossier as of that date cannot use it (look-ahead)")
    stated = cover_date(text)
    if stated is not None and stated > as_of:
        raise DossierError(f"{option} {path}: its cover states shares outstanding as of {stated.isoformat()}, after --as-of "
                           f"{as_of.isoformat()}: the report was filed on or after that date, so a dossier as of --as-of "
                           "cannot use it (look-ahead); give an --as-of on or after its filing date")
    return end
