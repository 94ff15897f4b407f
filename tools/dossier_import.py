"""``chainproof dossier import``: a dossier from the analyst's own documents (a 10-K, later 10-Qs,
market CSVs), for a company whose filings the analyst already holds.

* **Text**: EDGAR HTML or inline XBRL (:func:`~chainproof.tools.sec_sections.html_to_text`), or text
  (EDGAR's ``.txt``, ``pdftotext -layout`` of a PDF). Sections by their Item headings
  (:mod:`chainproof.tools.sec_sections`); a 10-Q's Item 1A (Part II, the update to the 10-K's risk
  factors) is appended to the risk factors under a line naming the file.
* **Financial statements**: from inline XBRL when the document has it (``ix:nonFraction`` facts
  with their contexts, through :mod:`chainproof.tools.xbrl_facts`); otherwise from the statement
  lines of Item 8's text: the first line in Item 8 whose label is a metric's (``_LABELS``), with one
  number per column, the columns' fiscal years read from the nearest year header above it and the
  scale from the nearest "(Millions ...)" / "in thousands" caption (default millions); a line
  labelled "Diluted" (or "Net income attributable to ...") under a diluted per-share heading is
  diluted EPS, and no other per-share line is read. A label wrapped onto a second line (which goes
  on in lower case) is read whole, and a label printed alone with its figures on the next line (no
  label of their own) is that line's label; note references ("(Notes 1 and 2)") are not figures. The
  statement pages (:func:`statement_pages`) are read first, then Item 8 for what they lack, then
  Item 6 (Selected Financial Data) for totals a statement prints without a label (MGM's net
  revenues and total assets). A text with neither an Item 8 heading nor a statement page is refused,
  naming the headings looked for (the rest of the document is never read as statements). Parenthesised numbers are negative, as printed (interest expense is
  kept positive). Total current assets and liabilities, interest expense and total debt (the
  short-term debt lines above "Long-term debt", e.g. "Loans and notes payable" and "Current
  maturities of long-term debt", plus that line) are read where the statements print them. A dash
  alone in a figure column is a nil figure. Every row names the file,
  where it was read, the line and its label.
* **Equity**: "Total equity" (with noncontrolling interests) is preferred; where a statement prints
  only the parent's and the total shareholders' equity, the first printed is read. Reference sets
  differ on this (key_financials.csv takes the parent's for Boeing and Lockheed Martin and the
  total for MGM and CVS), so compare equity with the line the source names.
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
from chainproof.tools.sec_sections import find_item, find_sections, html_to_text
from chainproof.tools.xbrl_facts import Fact, financial_rows

__all__ = ["import_dossier", "input_files", "read_document", "text_financials"]

#: metric -> label patterns (normalised lower-case label, fully matched), best first.
_LABELS: Mapping[str, tuple[str, ...]] = {
    "revenue": (r"(total )?net sales", r"(total )?(net )?(operating )?revenues?(, net)?", r"net sales and (operating )?revenues?",
                r"sales to customers", r"total revenues net of interest expense"),
    "operating_income": (r"(total )?operating (income|profit)( \(loss\))?", r"(income|earnings) from operations"),
    "net_income": (r"net (income|earnings)( \(loss\))? attributable to (?!noncontrolling).+", r"net (income|earnings)( \(loss\))?"),
    "diluted_eps": (r"(earnings|income) per (common )?share.*diluted", r"diluted (net )?(earnings|income) per (common )?share"),
    "total_assets": (r"total assets",),
    "total_liabilities": (r"total liabilities",),
    "total_equity": (r"total (\(deficit\) )?equity( \(deficit\))?",
                     r"total (\S+ )*(shareholders|stockholders|shareowners)[’']? equity( \(deficit\))?"),
    "cash_and_equivalents": (r"cash and cash equivalents",),
    "operating_cash_flow": (r"(net|total) cash( flows)? (provided by|from)( \(used (in|for)\))? operating activities",),
    "capital_expenditures": (r"(purchases of|payments for|additions to) (property|pp&e).*", r"capital (expenditures|spending).*",
                             r"property, plant and equipment additions"),
    "current_assets": (r"total current assets",),
    "current_liabilities": (r"total current liabilities",),
    "interest_expense": (r"(total )?interest (and debt )?expense(, net( of (amounts|portion) capitalized)?)?",),
    "short_term_debt": (r"short-term (debt|borrowings)( obligations)?((,| and) (including )?current (portion|maturities) of long-term debt)?",
                        r"(current (portion|maturities) of long-term debt|debt maturing within one year)",
                        r"(loans and )?notes payable"),
    "long_term_debt": (r"long-term debt( obligations)?( \((excluding|net of) (the )?(current portion|portion due within one year)\)"
                       r"|, (excluding|net of|less) current (portion|maturities)|, net)?",),
}
#: parts of total_debt (summed per fiscal year; never rows of their own)
_DEBT_PARTS = ("short_term_debt", "long_term_debt")
#: a note reference in a label, "(Notes 1 and 2)", whose numbers are not figures
_NOTE_REF = re.compile(r"\s*\(notes? \d+(?:,? (?:and )?\d+)*\)", re.I)
#: figures a label quotes after a colon, "...: 2017—$3,546; 2016—$4,225" (Pfizer), which are not its columns
_INLINE_FIGURES = re.compile(r":(?:\s*(?:19|20)\d\d\s*[—–]\s*\$?[\d,.]+;?)+")
#: a figure column, or a dash standing alone for a nil figure ("750   —")
_COLUMN = re.compile(r"(?<![\w.,])\(?-?\$?\s*\d[\d,]*(?:\.\d+)?\)?(?![\w%])|(?<!\S)[—–](?!\S)")
_NUM = re.compile(r"(?<![\w.,])\(?-?\$?\s*\d[\d,]*(?:\.\d+)?\)?(?![\w%])")
_YEAR_HEADER = re.compile(r"^.*?((?:19|20)\d\d)(?:\s+((?:19|20)\d\d)){1,4}\s*$"
                          r"|^.*?(?:[A-Z][a-z]{2,8}\.? \d{1,2}, ?(?:19|20)\d\d\s*){2,5}$")  # "January 28, 2017   January 30, 2016"


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


def _scale(line: str, current: float) -> float:
    low = line.lower()
    if re.search(r"\(?(in |dollars in )?millions", low):
        return 1.0
    if re.search(r"\(?(in |dollars in )?thousands", low):
        return 1e-3
    if re.search(r"\(?(in |dollars in )?billions", low):
        return 1e3
    return current


def _number(tok: str) -> float:
    if tok.strip() in ("—", "–"):
        return 0.0
    neg = tok.strip().startswith("(") or tok.strip().startswith("-")
    value = float(re.sub(r"[^\d.]", "", tok))
    return -value if neg else value


_STATEMENT_TITLE = re.compile(r"^\s*consolidated (statements? of (income|operations|earnings|cash flows?|financial position)"
                              r"|balance sheets?)\b(?!.*\bnotes?\b)", re.I)


def statement_pages(text: str) -> list[tuple[int, str]]:
    """``[(line number of the page's first line, page)]`` of the pages (form-feed separated, as
    ``pdftotext`` writes them) whose first 12 non-empty lines hold a primary statement's title
    ("Consolidated Statement(s) of Income / Operations / Earnings / Cash Flows", "Consolidated
    Balance Sheet(s)"): where the statements are, whether in Item 8, in an annual report filed as
    an exhibit (Pfizer, Verizon, CVS) or before Item 8 (PepsiCo)."""
    pages = text.split("\f")
    out, line = [], 1
    for page in pages:
        if len(pages) >= 3 and any(_STATEMENT_TITLE.match(x) for x in [x for x in page.split("\n") if x.strip()][:12]):
            out.append((line, page))
        line += page.count("\n")
    return out


def text_financials(text: str, source: str, *, document: str = "the 10-K") -> list[tuple[int, str, float, str]]:
    """``[(fiscal_year, metric, value, source)]`` from the statement lines of the primary statement
    pages of ``text`` (:func:`statement_pages`), and for metrics not found there from Item 8 (rules
    in the module docstring; values in USD millions, ``diluted_eps`` in USD per share,
    ``interest_expense`` positive, ``total_debt`` the short-term plus the long-term debt line; the
    source names the file's line). Without an Item 8 heading only the statement pages are read; with
    neither, raises :class:`DossierError` naming ``document`` and the headings looked for."""
    item8 = find_item(text, "8", "financial")
    pages = [(first + k, line) for first, page in statement_pages(text) for k, line in enumerate(page.split("\n"))]
    found = _statement_lines(pages, source, "statement page")
    if item8 is None and not found:
        raise DossierError(f"{document}: section not found: Item 8 (Financial Statements and Supplementary Data): no line "
                           "starting 'Item 8' followed by its title, and no page headed 'Consolidated Statement(s) of "
                           "Income/Operations/Earnings/Cash Flows' or 'Consolidated Balance Sheet(s)': the statement "
                           "lines are read there")
    first = text[:item8.start].count("\n") + 1 if item8 else 1
    for metric, rows in _statement_lines([(first + k, line) for k, line in enumerate(item8.text.split("\n") if item8 else [])],
                                         source, "Item 8").items():
        found.setdefault(metric, rows)
    item6 = find_item(text, "6", "selected")  # MGM's statements print some totals without a label
    if item6 is not None:
        first = text[:item6.start].count("\n") + 1
        for metric, rows in _statement_lines([(first + k, line) for k, line in enumerate(item6.text.split("\n"))], source,
                                             "Item 6").items():
            found.setdefault(metric, rows)
    return sorted([(fy, m, abs(v) if m == "interest_expense" else v, s)
                   for m, rows in found.items() if m not in _DEBT_PARTS for fy, v, s in rows] + _total_debt(found))


def _total_debt(found: Mapping[str, list[tuple[int, float, str]]]) -> list[tuple[int, str, float, str]]:
    """``total_debt`` rows (USD millions) per fiscal year with a long-term debt line: that line plus
    the short-term debt lines printed above it (summed; nil when the statement prints none), the
    source naming every line."""
    short = {fy: (v, s) for fy, v, s in found.get("short_term_debt", [])}
    out = []
    for fy, value, source in found.get("long_term_debt", []):
        current, where = short.get(fy, (0.0, ""))
        out.append((fy, "total_debt", round(value + current, 6), f"{where} + {source}" if where else source))
    return out


def _statement_lines(lines: list[tuple[int, str]], source: str, where: str) -> dict[str, list[tuple[int, float, str]]]:
    found: dict[str, tuple[int, list[tuple[int, float, str]]]] = {}  # metric -> (rank, rows)
    years: list[int] = []
    scale = 1.0
    heading = ""  # the last line without figures: "Net Income Attributable to PepsiCo per Common Share"
    wrapped = ""  # a label line without figures of its own, continued on the next line
    summed: set[str] = set()  # short-term debt labels added up
    for n, line in lines:
        line = _INLINE_FIGURES.sub("", _NOTE_REF.sub("", line))
        head = _YEAR_HEADER.match(line.replace("Fiscal", "").replace("fiscal", ""))
        if head:
            years = [int(y) for y in re.findall(r"(?:19|20)\d\d", line)]
        scale = _scale(line, scale) if "(" in line or " in " in line.lower() else scale
        first = _NUM.search(line)
        if first is None and line.strip() and not re.search(r"\s[—–]$", line.rstrip()):  # "—" is a nil figure
            heading = line.strip().lower()
        if not years or first is None:
            wrapped = _label(line) if line.strip() and not head else ""
            continue
        label = _label(line[:first.start()]) or wrapped  # "TOTAL CURRENT LIABILITIES", its figures on the next line (Coca-Cola)
        nums = [m.group(0) for m in _COLUMN.finditer(line, first.start())]
        if len(nums) < 2 or not label or re.search(r"[a-z]", line[first.start():]):
            wrapped = _label(line)  # "Additions to property and equipment, net of $48, $92 and $14 of non-cash capital"
            continue
        cont = wrapped and line[:first.start()].strip()[:1].islower()  # a wrapped label goes on in lower case
        label, wrapped = (f"{wrapped} {label}" if cont else label), ""
        per_share = bool(re.search(r"per (common )?share", heading)) and all("." in t for t in nums if _NUM.match(t))
        debt = any(re.fullmatch(p, label) for p in _LABELS["short_term_debt"])
        if debt and "long_term_debt" not in found and label not in summed:  # the lines above long-term debt, summed
            summed.add(label)
            before = {fy: (v, src) for fy, v, src in found.get("short_term_debt", (0, []))[1]}
            found["short_term_debt"] = (0, [
                (fy, round(_number(tok) * scale + before.get(fy, (0.0, ""))[0], 6),
                 (f"{before[fy][1]} + " if fy in before else "") + f"{source}: {where} line {n}: {label}")
                for fy, tok in zip(years, nums, strict=False)])
            continue
        if per_share and "diluted" in heading and re.fullmatch(_LABELS["net_income"][0], label):
            label = "diluted earnings per share"  # "Diluted earnings per share:" / "Net income attributable to CVS Health"
        elif per_share and label == "diluted":
            label = "diluted earnings per share"  # a "Diluted" line under a per-share heading
        elif per_share and not any(re.fullmatch(p, label) for p in _LABELS["diluted_eps"]):
            continue  # a per-share figure is never a statement total
        for metric, patterns in _LABELS.items():
            rank = next((i for i, p in enumerate(patterns) if re.fullmatch(p, label)), None)
            if rank is None or (metric in found and found[metric][0] <= rank):
                continue
            if metric == "diluted_eps" and not all("." in t for t in nums):
                continue
            factor = 1.0 if metric == "diluted_eps" else scale
            rows = [(fy, round(_number(tok) * factor, 6), f"{source}: {where} line {n}: {label}")
                    for fy, tok in zip(years, nums, strict=False)]
            found[metric] = (rank, rows)
    return {m: rows for m, (_, rows) in found.items()}


def _label(text: str) -> str:
    """The normalised label of a statement line's text: lower case, single spaces, no ``$`` or
    dashes, no trailing colon."""
    return " ".join(text.replace("$", " ").replace("—", " ").replace("–", " ").split()).lower().rstrip(":")


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


def import_dossier(ticker: str, tenk: Path, tenqs: Sequence[Path], market: Mapping[str, Path], out_dir: str | Path,
                   *, as_of: date | None = None, name: str | None = None, n_years: int = 3,
                   headlines: Path | None = None, force: bool = False) -> Path:
    """Build the dossier of ``ticker`` from the analyst's ``tenk`` (and ``tenqs``), ``market`` files
    (:func:`chainproof.tools.dossier_writer.write_dossier`) and optional ``headlines`` CSV into
    ``out_dir``; ``as_of`` defaults to the last date in the prices file; the name comes from the
    cover page (else the target's row of the peers CSV), the sector from that row. ``force``: replace
    files in ``out_dir`` the dossier commands did not write. Every document's cover must name the
    peers file's company for ``ticker`` and a period that ended on or before ``as_of``
    (:func:`chainproof.tools.filing_cover.check_cover`); the fiscal year end is the 10-K's period end.
    Raises :class:`DossierError` naming the file and the section or heading that is missing, or the
    file that is wrong (another company's, a period after ``as_of``, an input inside ``out_dir``)."""
    key = ticker.strip().upper()
    check_inputs_outside(out_dir, input_files(tenk, tenqs, market, headlines))
    text, html = read_document(Path(tenk), "--10k")
    sections = find_sections(text, document=f"--10k {tenk}")
    if as_of is None:
        prices = market.get("prices.csv")
        dates = re.findall(r"^(\d{4}-\d{2}-\d{2}),", read_text(prices, "--prices", "utf-8-sig"), re.M) if prices and Path(prices).is_file() else []
        if not dates:
            raise DossierError("--as-of: not given and no dated row in --prices to take it from")
        as_of = max(date.fromisoformat(d) for d in dates)
    target = _target_row(market.get("peers.csv"), key)
    end = check_cover(text, "--10k", Path(tenk), expected_name=(target.get("name") or "").strip(), as_of=as_of)
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
    for q in tenqs:
        q_text, _ = read_document(Path(q), "--10q")
        check_cover(q_text, "--10q", Path(q), expected_name=(target.get("name") or "").strip(), as_of=as_of)
        update = find_item(q_text, "1a", "risk")
        if update is None:
            raise DossierError(f"--10q {q}: section not found: Item 1A (Risk Factors): no line starting 'Item 1A' "
                               "followed by its title")
        texts["risk_factors"] += f"\n[Update from the 10-Q {Path(q).name}]\n{update.text}"
    cover = cover_name(text)
    parts = DossierParts(
        ticker=key, name=name or cover or (target.get("name") or "").strip() or key,
        sector=(target.get("sector") or "").strip() or "unknown",
        headlines=read_headlines(Path(headlines)) if headlines else [],
        fiscal_year_end=f"{end.month:02d}-{end.day:02d}", as_of=as_of, financials=fin, texts=texts,
        sources=[f"financials.csv and filings/: analyst's 10-K {tenk}"] + [f"risk factors update: analyst's 10-Q {q}" for q in tenqs]
        + ([f"headlines.csv: analyst's {headlines}"] if headlines else []),
        notes=["built by chainproof dossier import from the analyst's own documents"]
        + ([] if headlines else ["headlines.csv is empty (no --headlines given)"])
        + ([] if fin else ["no statement lines found in Item 8: financials.csv is empty"]))
    return write_dossier(parts, market, out_dir, force=force)
