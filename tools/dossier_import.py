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
  scale from the nearest "(Millions ...)" / "in thousands" caption (default millions). Parenthesised
  numbers are negative, as printed. Every row names the file, "Item 8", the line and its label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.dossier_writer import DossierParts, write_dossier
from chainproof.tools.input_files import read_bytes, read_text
from chainproof.tools.sec_sections import find_item, find_sections, html_to_text
from chainproof.tools.xbrl_facts import Fact, financial_rows

__all__ = ["import_dossier", "read_document", "text_financials"]

#: metric -> label patterns (normalised lower-case label, fully matched), best first.
_LABELS: Mapping[str, tuple[str, ...]] = {
    "revenue": (r"(total )?net sales", r"(total )?(net )?revenues?(, net)?", r"net sales and (operating )?revenues?"),
    "operating_income": (r"(total )?operating (income|profit)( \(loss\))?", r"(income|earnings) from operations"),
    "net_income": (r"net (income|earnings) attributable to (?!noncontrolling).+", r"net (income|earnings)( \(loss\))?"),
    "diluted_eps": (r"(earnings|income) per (common )?share.*diluted", r"diluted (net )?(earnings|income) per (common )?share"),
    "total_assets": (r"total assets",),
    "total_liabilities": (r"total liabilities",),
    "total_equity": (r"total equity", r"total (\S+ )*(shareholders|stockholders|shareowners)[’']? equity"),
    "cash_and_equivalents": (r"cash and cash equivalents",),
    "operating_cash_flow": (r"net cash (provided by|from)( \(used (in|for)\))? operating activities",),
    "capital_expenditures": (r"(purchases of|payments for|additions to) (property|pp&e).*", r"capital expenditures"),
}
_NUM = re.compile(r"(?<![\w.,])\(?-?\$?\s*\d[\d,]*(?:\.\d+)?\)?(?![\w%])")
_YEAR_HEADER = re.compile(r"^.*?((?:19|20)\d\d)(?:\s+((?:19|20)\d\d)){1,4}\s*$")


def read_document(path: Path) -> tuple[str, str | None]:
    """``(text, html)`` of a 10-K/10-Q file (``html`` is ``None`` for a text file). Raises
    :class:`DossierError` naming the file when it is missing or unreadable."""
    if not path.is_file():
        raise DossierError(f"{path}: file not found")
    raw = read_bytes(path)
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
    neg = tok.strip().startswith("(") or tok.strip().startswith("-")
    value = float(re.sub(r"[^\d.]", "", tok))
    return -value if neg else value


def text_financials(text: str, source: str) -> list[tuple[int, str, float, str]]:
    """``[(fiscal_year, metric, value, source)]`` from the statement lines of Item 8 of ``text``
    (rules in the module docstring; values in USD millions, ``diluted_eps`` in USD per share)."""
    item8 = find_item(text, "8", "financial")
    body = item8.text if item8 else text
    found: dict[str, tuple[int, list[tuple[int, float, str]]]] = {}  # metric -> (rank, rows)
    years: list[int] = []
    scale = 1.0
    for n, line in enumerate(body.splitlines(), 1):
        head = _YEAR_HEADER.match(line.replace("Fiscal", "").replace("fiscal", ""))
        if head:
            years = [int(y) for y in re.findall(r"(?:19|20)\d\d", line)]
        scale = _scale(line, scale) if "(" in line or " in " in line.lower() else scale
        first = _NUM.search(line)
        if not years or first is None:
            continue
        label = " ".join(line[:first.start()].replace("$", " ").replace("—", " ").replace("–", " ").split()).lower().rstrip(":")
        nums = [m.group(0) for m in _NUM.finditer(line, first.start())]
        if len(nums) < 2 or not label or re.search(r"[a-z]", line[first.start():]):
            continue
        for metric, patterns in _LABELS.items():
            rank = next((i for i, p in enumerate(patterns) if re.fullmatch(p, label)), None)
            if rank is None or (metric in found and found[metric][0] <= rank):
                continue
            if metric == "diluted_eps" and not all("." in t for t in nums):
                continue
            factor = 1.0 if metric == "diluted_eps" else scale
            rows = [(fy, round(_number(tok) * factor, 6), f"{source}: Item 8 line {n}: {label}")
                    for fy, tok in zip(years, nums, strict=False)]
            found[metric] = (rank, rows)
    out = [(fy, m, v, s) for m, (_, rows) in found.items() for fy, v, s in rows]
    return sorted(out)


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


def import_dossier(ticker: str, tenk: Path, tenqs: Sequence[Path], market: Mapping[str, Path], out_dir: str | Path,
                   *, as_of: date | None = None, name: str | None = None, n_years: int = 3, force: bool = False) -> Path:
    """Build the dossier of ``ticker`` from the analyst's ``tenk`` (and ``tenqs``) and ``market``
    files (:func:`chainproof.tools.dossier_writer.write_dossier`) into ``out_dir``; ``as_of``
    defaults to the last date in the prices file. Raises :class:`DossierError` naming the file and
    the section or heading that is missing, or the market file that is wrong."""
    key = ticker.strip().upper()
    text, html = read_document(Path(tenk))
    sections = find_sections(text, document=f"--10k {tenk}")
    if as_of is None:
        prices = market.get("prices.csv")
        dates = re.findall(r"^(\d{4}-\d{2}-\d{2}),", read_text(prices, "--prices", "utf-8-sig"), re.M) if prices and Path(prices).is_file() else []
        if not dates:
            raise DossierError("--as-of: not given and no dated row in --prices to take it from")
        as_of = max(date.fromisoformat(d) for d in dates)
    label = Path(tenk).name
    fin: list[tuple[int, str, float, str]] = []
    if html and "nonfraction" in html.lower():
        fin = financial_rows(_inline_xbrl_facts(html, label, as_of), as_of, n_years=n_years,
                             describe={label: f"{label} (inline XBRL)"})
    if not fin:
        fin = text_financials(text, label)
        latest = max((fy for fy, *_ in fin), default=None)
        fin = [r for r in fin if latest is not None and r[0] > latest - n_years]
    texts = {k: s.text for k, s in sections.items()}
    for q in tenqs:
        q_text, _ = read_document(Path(q))
        update = find_item(q_text, "1a", "risk")
        if update is None:
            raise DossierError(f"--10q {q}: section not found: Item 1A (Risk Factors): no line starting 'Item 1A' "
                               "followed by its title")
        texts["risk_factors"] += f"\n[Update from the 10-Q {Path(q).name}]\n{update.text}"
    cover = re.search(r"^\s*(.{3,80}?)\s*\n.*?\(exact name of registrant", text[:20000], re.I | re.M | re.S)
    fy_end = re.search(r"fiscal year ended\s+([A-Z][a-z]+)\s+(\d{1,2})", text[:20000])
    months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
              "november", "december"]
    fye = (f"{months.index(fy_end.group(1).lower()) + 1:02d}-{int(fy_end.group(2)):02d}"
           if fy_end and fy_end.group(1).lower() in months else "12-31")
    parts = DossierParts(
        ticker=key, name=name or (cover.group(1).strip() if cover else key), sector="unknown",
        fiscal_year_end=fye, as_of=as_of, financials=fin, texts=texts,
        sources=[f"financials.csv and filings/: analyst's 10-K {tenk}"] + [f"risk factors update: analyst's 10-Q {q}" for q in tenqs],
        notes=["built by chainproof dossier import from the analyst's own documents", "headlines.csv is empty "
               "(no news given)"] + ([] if fin else ["no statement lines found in Item 8: financials.csv is empty"]))
    return write_dossier(parts, market, out_dir, force=force)
