"""``chainproof dossier import``: a dossier from the analyst's own documents (a 10-K, later 10-Qs,
market CSVs), for a company whose filings the analyst already holds.

* **Text**: EDGAR HTML or inline XBRL (:func:`~chainproof.tools.sec_sections.html_to_text`), or text
  (EDGAR's ``.txt``, ``pdftotext -layout`` of a PDF). Sections by their Item headings
  (:mod:`chainproof.tools.sec_sections`); a 10-Q's Part II Item 1A (the update to the 10-K's risk
  factors) and Item 1 (Legal Proceedings, with the note it refers to) are appended to the risk
  factors, legal proceedings and legal note under a line naming the 10-Q and its period
  (:func:`tenq_updates`); a 10-Q without one of them adds nothing for it and says so.
* **Financial statements**: from inline XBRL when the document has it (``ix:nonFraction`` facts
  with their contexts, through :mod:`chainproof.tools.xbrl_facts`); otherwise from the statement
  lines of the text (:func:`chainproof.tools.statement_text.text_financials`: the statement pages,
  then Item 8 up to its notes, then Item 6; never a note's table).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.dossier_writer import MARKET_FILES, DossierParts, check_inputs_outside, write_dossier
from chainproof.tools.filing_cover import check_cover, cover_name
from chainproof.tools.input_files import read_bytes, read_text
from chainproof.tools.sec_sections import find_item, find_sections, html_to_text, referenced_note
from chainproof.tools.statement_text import text_financials
from chainproof.tools.xbrl_facts import Fact, financial_rows

__all__ = ["CORE_METRICS", "import_dossier", "missing_core", "input_files", "read_document", "tenq_updates", "text_financials"]


def read_document(path: Path, option: str = "--10k") -> tuple[str, str | None]:
    """``(text, html)`` of a 10-K/10-Q file (``html`` is ``None`` for a text file). Raises
    :class:`DossierError` naming ``option`` and the path when it is a folder (a file was expected),
    missing or unreadable."""
    if path.is_dir():
        raise DossierError(f"{option} {path}: expected a file (EDGAR HTML or text of one filing), got a folder")
    if not path.is_file():
        raise DossierError(f"{option} {path}: file not found")
    raw = read_bytes(path, option)
    head = raw[:2000].lstrip().lower()
    if path.suffix.lower() in (".htm", ".html", ".xhtml") or head.startswith((b"<", b"<?xml")):
        return html_to_text(raw), raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace"), None


def _inline_xbrl_facts(html: str, accession: str, filed: date) -> list[Fact]:
    """The us-gaap ``ix:nonFraction`` facts of an inline-XBRL document (contexts without
    dimensions only; ``scale`` and ``sign="-"`` applied)."""
    from lxml import etree  # type: ignore[import-untyped]

    try:
        root = etree.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html).encode("utf-8"), etree.XMLParser(recover=True, huge_tree=True))
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    periods: dict[str, tuple[date | None, date]] = {}
    for ctx in root.iter("{*}context"):
        if list(ctx.iter("{*}segment")):
            continue
        inst, start, end = (next((e.text for e in ctx.iter(f"{{*}}{t}")), None) for t in ("instant", "startDate", "endDate"))
        try:
            periods[ctx.get("id", "")] = (None, date.fromisoformat(inst.strip())) if inst else (
                date.fromisoformat((start or "").strip()), date.fromisoformat((end or "").strip()))
        except ValueError:
            continue
    out = []
    for fact in root.iter("{*}nonFraction"):
        name, ctx = fact.get("name", ""), fact.get("contextRef", "")
        text = "".join(fact.itertext()).strip().replace(",", "")
        if not name.startswith("us-gaap:") or ctx not in periods or not re.fullmatch(r"\d+(\.\d+)?", text):
            continue
        value = float(text) * 10 ** int(fact.get("scale") or 0) * (-1 if fact.get("sign") == "-" else 1)
        unit = "USD/shares" if "share" in (fact.get("unitRef") or "").lower() else "USD"
        start, end = periods[ctx]
        out.append(Fact(name.split(":", 1)[1], unit, start, end, value, accession, "10-K", filed))
    return out


def _target_row(peers: Path | None, ticker: str) -> dict[str, str]:
    """The target's row of the analyst's peers CSV (``{}`` when there is none)."""
    if peers is None or not Path(peers).is_file():
        return {}
    with Path(peers).open(encoding="utf-8-sig", newline="") as fh:
        return next((row for row in csv.DictReader(fh) if (row.get("ticker") or "").strip().upper() == ticker), {})


def read_headlines(path: Path) -> list[tuple[date | None, str, str]]:
    """``[(date or None, headline, source)]`` from the analyst's CSV with columns ``date,headline``
    and optional ``source`` (a date may be empty: undated). Raises :class:`DossierError` naming
    ``--headlines``, the file and the line."""
    if not path.is_file():
        raise DossierError(f"--headlines {path}: file not found")
    out = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"date", "headline"} <= set(reader.fieldnames or ()):
            raise DossierError(f"--headlines {path}: expected the columns date,headline[,source], got {reader.fieldnames}")
        for n, row in enumerate(reader, 2):
            raw, text = (row.get("date") or "").strip(), (row.get("headline") or "").strip()
            try:
                when = date.fromisoformat(raw) if raw else None
            except ValueError:
                raise DossierError(f"--headlines {path}: line {n}: date {raw!r} is not YYYY-MM-DD") from None
            if not text:
                raise DossierError(f"--headlines {path}: line {n}: empty headline")
            out.append((when, text, (row.get("source") or "").strip() or path.name))
    return out


def input_files(tenk: Path, tenqs: Sequence[Path], market: Mapping[str, Path],
                headlines: Path | None = None) -> list[tuple[str, Path]]:
    """``[(option, path)]`` of every file ``dossier import`` reads."""
    return ([("--10k", Path(tenk))] + [("--10q", Path(q)) for q in tenqs]
            + [(MARKET_FILES[n], Path(p)) for n, p in market.items()] + ([("--headlines", Path(headlines))] if headlines else []))


#: a 10-Q's Part II items appended to the 10-K's texts: (item, title word, heading, text key)
_TENQ_ITEMS = (("1", "legal", "Part II Item 1 (Legal Proceedings)", "legal_proceedings"),
               ("1a", "risk", "Part II Item 1A (Risk Factors)", "risk_factors"))


def tenq_updates(text: str, name: str, period_end: date, *, document: str = "the 10-Q") -> tuple[dict[str, str], list[str]]:
    """``({text key: block}, [summary line])`` of a 10-Q's text: its Part II Item 1 (Legal
    Proceedings) for ``legal_proceedings``, the note that item refers to ("see Note 12A") for
    ``legal_note``, and its Item 1A (the update to the risk factors) for ``risk_factors``. Each block
    starts on a new line with ``[Update from the 10-Q NAME (period ended YYYY-MM-DD): Part II Item
    1A (Risk Factors)]`` and then the section as the 10-Q prints it. A 10-Q need not update its risk
    factors or report legal proceedings: an item it lacks adds nothing, and a summary line says so.
    Raises :class:`DossierError` naming ``document`` when it has neither item (not a 10-Q's Part II)."""
    blocks: dict[str, str] = {}
    said: list[str] = []
    for number, word, what, key in _TENQ_ITEMS:
        section = find_item(text, number, word)
        tag = f"[Update from the 10-Q {name} (period ended {period_end.isoformat()}): {what}]"
        if section is None:
            said.append(f"10-Q {name}: no {what}; nothing added to {key}")
            continue
        blocks[key] = f"\n{tag}\n{section.text}"
        said.append(f"10-Q {name}: {what} appended to {key}")
        note = referenced_note(text, section) if key == "legal_proceedings" else None
        if note is not None:
            blocks["legal_note"] = f"\n[Update from the 10-Q {name} (period ended {period_end.isoformat()}): {note.heading}]\n{note.text}"
            said.append(f"10-Q {name}: {note.heading} (referred to by {what}) appended to legal_note")
    if not blocks:
        raise DossierError(f"{document}: section not found: Part II Item 1 (Legal Proceedings) and Item 1A (Risk Factors): "
                           "no line starting 'Item 1' or 'Item 1A' followed by its title; is this a 10-Q?")
    return blocks, said


#: metrics the due-diligence report needs for the latest fiscal year; a missing one is named
CORE_METRICS = ("revenue", "net_income", "total_assets", "total_equity", "operating_cash_flow")


def missing_core(fin: Sequence[tuple[int, str, float, str]]) -> list[str]:
    """``["core metric(s) not found for fiscal year YYYY (the latest read): revenue, total_assets; ..."]``
    (one line, or none) naming each of :data:`CORE_METRICS` that ``fin`` (``[(fiscal year, metric,
    value, source)]``) lacks for its latest fiscal year; ``[]`` when none is missing or ``fin`` is empty."""
    latest = max((fy for fy, *_ in fin), default=None)
    have = {m for fy, m, *_ in fin if fy == latest}
    gone = [m for m in CORE_METRICS if m not in have]
    if latest is None or not gone:
        return []
    return [f"core metric(s) not found for fiscal year {latest} (the latest read): {', '.join(gone)}; no statement line "
            "with a label for them was read, so the report shows them as not available"]


def _check_later(q: Path, q_end: date, tenk_end: date, seen: dict[date, Path]) -> None:
    """Refuse the 10-Q ``q`` (its period ended ``q_end``) when that period ended on or before the
    10-K's (``tenk_end``: the 10-K already reports it) or another ``--10q`` (``seen``: {period end:
    path}, updated) reports the same quarter. Raises :class:`DossierError` naming ``--10q``."""
    if q_end <= tenk_end:
        raise DossierError(f"--10q {q}: its quarter ended {q_end.isoformat()}, on or before the --10k's fiscal year end "
                           f"{tenk_end.isoformat()}: expected a 10-Q for a later quarter")
    if q_end in seen:
        raise DossierError(f"--10q {q}: reports the quarter ended {q_end.isoformat()}, as --10q {seen[q_end]} does: "
                           "expected each 10-Q once")
    seen[q_end] = q


def import_dossier(ticker: str, tenk: Path, tenqs: Sequence[Path], market: Mapping[str, Path], out_dir: str | Path,
                   *, as_of: date | None = None, name: str | None = None, n_years: int = 3,
                   headlines: Path | None = None, force: bool = False, summary: list[str] | None = None) -> Path:
    """Build the dossier of ``ticker`` from the analyst's ``tenk`` (and ``tenqs``), ``market`` files
    (:func:`chainproof.tools.dossier_writer.write_dossier`) and optional ``headlines`` CSV into
    ``out_dir``; ``as_of`` defaults to the last date in the prices file; the name comes from the
    cover page (else the target's row of the peers CSV), the sector from that row. ``force``: replace
    files in ``out_dir`` the dossier commands did not write. Each 10-Q's Part II updates are appended
    (:func:`tenq_updates`); what each added, or that it had nothing for a part, is a note of the
    dossier and, when ``summary`` is given, a line appended to it; so is each core metric missing for the
    latest fiscal year (:func:`missing_core`). Every document's cover must name the
    peers file's company for ``ticker`` and a period that ended on or before ``as_of``
    (:func:`chainproof.tools.filing_cover.check_cover`); the fiscal year end is the 10-K's period end.
    Raises :class:`DossierError` naming the file and the section or heading that is missing, or the
    file that is wrong (another company's, a period after ``as_of``, an input inside ``out_dir``, a
    ``--10q`` that is not a Form 10-Q for a quarter after the 10-K's year, or given twice)."""
    key = ticker.strip().upper()
    check_inputs_outside(out_dir, input_files(tenk, tenqs, market, headlines))
    text, html = read_document(Path(tenk), "--10k")
    if as_of is None:
        prices = market.get("prices.csv")
        dates = re.findall(r"^(\d{4}-\d{2}-\d{2}),", read_text(prices, "--prices", "utf-8-sig"), re.M) if prices and Path(prices).is_file() else []
        if not dates:
            raise DossierError("--as-of: not given and no dated row in --prices to take it from")
        as_of = max(date.fromisoformat(d) for d in dates)
    target = _target_row(market.get("peers.csv"), key)
    end = check_cover(text, "--10k", Path(tenk), expected_name=(target.get("name") or "").strip(), as_of=as_of, form="10-K")
    sections = find_sections(text, document=f"--10k {tenk}")
    label = Path(tenk).name
    fin: list[tuple[int, str, float, str]] = []
    if html and "nonfraction" in html.lower():
        fin = financial_rows(_inline_xbrl_facts(html, label, as_of), as_of, n_years=n_years,
                             describe={label: f"{label} (inline XBRL)"})
    if not fin:
        fin = text_financials(text, label, document=f"--10k {tenk}")
        latest = max((fy for fy, *_ in fin), default=None)
        fin = [r for r in fin if latest is not None and r[0] > latest - n_years]
    texts = {k: s.text for k, s in sections.items()}
    added: list[str] = []
    seen: dict[date, Path] = {}
    for q in tenqs:
        q_text, _ = read_document(Path(q), "--10q")
        q_end = check_cover(q_text, "--10q", Path(q), expected_name=(target.get("name") or "").strip(), as_of=as_of, form="10-Q")
        _check_later(Path(q), q_end, end, seen)
        blocks, said = tenq_updates(q_text, Path(q).name, q_end, document=f"--10q {q}")
        for k, block in blocks.items():
            texts[k] = (texts.get(k) or "") + block
        added += said
    added += missing_core(fin) + ([] if fin else ["no statement lines found in Item 8: financials.csv is empty"])
    if summary is not None:
        summary.extend(added)
    cover = cover_name(text)
    parts = DossierParts(
        ticker=key, name=name or cover or (target.get("name") or "").strip() or key,
        sector=(target.get("sector") or "").strip() or "unknown",
        headlines=read_headlines(Path(headlines)) if headlines else [],
        fiscal_year_end=f"{end.month:02d}-{end.day:02d}", as_of=as_of, financials=fin, texts=texts,
        sources=[f"financials.csv and filings/: analyst's 10-K {tenk}"]
        + [f"risk factors and legal proceedings updates: analyst's 10-Q {q}" for q in tenqs]
        + ([f"headlines.csv: analyst's {headlines}"] if headlines else []),
        notes=["built by chainproof dossier import from the analyst's own documents"] + added
        + ([] if headlines else ["headlines.csv is empty (no --headlines given)"]))
    return write_dossier(parts, market, out_dir, force=force)
