"""Financial statements from a 10-K's text (EDGAR ``.txt``, HTML turned to text, ``pdftotext
-layout`` of a PDF), for ``chainproof dossier import`` when the document has no inline XBRL.

Only **statement lines** are read, never the notes, the MD&A or the parent-company schedules:

* the **statement pages** (:func:`statement_pages`): form-feed separated pages whose first 12
  non-empty lines hold a primary statement's title as a heading (:func:`is_statement_title`:
  "Consolidated Statement(s) of Income / Operations / Earnings / Cash Flows / Financial Position",
  "Consolidated Balance Sheet(s)", capitalised, alone or followed by its period, "(continued)" or a
  dash; pdftotext's split words, "Incom e", are joined). A wrapped sentence ("consolidated statement
  of income as the changes in ...") and a table-of-contents entry (a page number after the title)
  are not titles. The statements may be in Item 8, in an annual report filed as an exhibit (Pfizer,
  Verizon, CVS) or before Item 8 (PepsiCo);
* then, for metrics those pages lack, **Item 8 up to its notes** (:func:`before_notes`: the first
  "Notes to Consolidated Financial Statements" heading or "Note 1" / "1. Summary of ..." heading),
  which is where a text without form feeds (EDGAR HTML) has its statements;
* then Item 6 (Selected Financial Data) for totals a statement prints without a label (MGM's net
  revenues and total assets).

A text with neither an Item 8 heading nor a statement page is refused, naming the headings looked
for (the rest of the document is never read as statements). On those lines: the first line whose
label is a metric's (``_LABELS``, best pattern first), with one number per column, the columns'
fiscal years read from the nearest year header above it and the scale from the nearest
"(Millions ...)" / "in thousands" caption (default millions); a line labelled "Diluted" (or "Net
income attributable to ...") under a diluted per-share heading is diluted EPS, and no other
per-share line is read. A label wrapped onto a second line (which goes on in lower case) is read
whole, and a label printed alone with its figures on the next line (no label of their own) is that
line's label; note references ("(Notes 1 and 2)") are not figures. Parenthesised numbers are
negative, as printed (interest expense is kept positive). A dash alone in a figure column is a nil
figure. Operating cash flow is the continuing operations' line where one is printed (Pfizer).
Total current assets and liabilities, interest expense and total debt (the short-term debt lines
above "Long-term debt", e.g. "Loans and notes payable" and "Current maturities of long-term debt",
plus that line) are read where the statements print them.

**Total liabilities** where no statement prints a total (Coca-Cola, Boeing) is derived as total
assets minus the equity read, as the data bundle does (``data_bundle.filing_financials``; SOURCE.md
of key_financials.csv): its source says ``derived: total_assets - total_equity`` and names both lines.
Every other row's source names the file, where it was read, the line and its label.

**Equity**: the total with noncontrolling interests is preferred: "Total equity", then "Total
shareholders' equity" (MGM prints it after the noncontrolling interests), then the parent's "Total
<Company> shareholders' equity" where that is all the statement prints. Reference sets differ on
this (key_financials.csv takes the parent's for Boeing and Lockheed Martin and the total for MGM,
Coca-Cola and CVS), so compare equity with the line the source names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from chainproof.errors import DossierError
from chainproof.tools.sec_sections import find_item

__all__ = ["before_notes", "is_statement_title", "statement_pages", "text_financials"]

#: metric -> label patterns (normalised lower-case label, fully matched), best first.
_LABELS: Mapping[str, tuple[str, ...]] = {
    "revenue": (r"(total )?net sales", r"(total )?(net )?(operating )?revenues?(, net)?", r"net sales and (operating )?revenues?",
                r"sales to customers", r"total revenues net of interest expense"),
    "operating_income": (r"(total )?operating (income|profit)( \(loss\))?", r"(income|earnings|loss) from operations"),
    "net_income": (r"net (income|earnings)( \(loss\))? attributable to (?!noncontrolling).+", r"net (income|earnings)( \(loss\))?"),
    "diluted_eps": (r"(earnings|income) per (common )?share.*diluted", r"diluted (net )?(earnings|income|loss) per (common )?share"),
    "total_assets": (r"total assets",),
    "total_liabilities": (r"total liabilities",),
    "total_equity": (r"total (\(deficit\) )?equity( \(deficit\))?",
                     r"total (shareholders|stockholders|shareowners)[’']? equity( \(deficit\))?",  # MGM: the total, after NCI
                     r"total (\S+ )+(shareholders|stockholders|shareowners)[’']? equity( \(deficit\))?"),  # the parent's
    "cash_and_equivalents": (r"(total )?cash and cash equivalents",),
    "operating_cash_flow": (r"(net|total) cash( flows)? (provided by|from)( \(used (in|for)\))? operating activities"
                            r" from continuing operations",  # Pfizer: the total line adds discontinued operations
                            r"(net|total) cash( flows)? (provided by|from)( \(used (in|for)\))? operating activities",),
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


def _spaced(words: str) -> str:
    """A pattern for ``words`` that also matches them split by pdftotext ("Incom e", "Shee t")."""
    return r"\s+".join(r"\s?".join(word) for word in words.split())


_TITLE = "|".join(_spaced(t) for t in ("statements of income", "statement of income", "statements of operations",
                                       "statement of operations", "statements of earnings", "statement of earnings",
                                       "statements of cash flows", "statement of cash flows", "statement of cash flow",
                                       "statements of financial position", "statement of financial position",
                                       "balance sheets", "balance sheet"))
#: a primary statement's title as a heading: capitalised, then nothing, its period, "(continued)" or a dash
_STATEMENT_TITLE = re.compile(rf"^\s*(?-i:C){_spaced('onsolidated')}\s+(?:{_TITLE})"
                              r"(?=\s*$|\s*\(continued\)|\s*[—–:,-]|\s+(?:for|years?|fiscal|as\s+of|at|in)\b|\s+(?-i:[A-Z]))"
                              r"(?!.*\bnotes?\b)(?!.*\S\s{2,}\d{1,3}\s*$)", re.I)
#: where Item 8's notes begin: their heading alone on its line, or the first note's heading
_NOTES = re.compile(rf"^\s*(?:(?-i:N){_spaced('otes')}\s+to\s+(?:the\s+)?{_spaced('consolidated')}\s+{_spaced('financial')}"
                    rf"\s+{_spaced('statements')}\s*$|(?:note\s+1|1\.)\s*[.:\-—–]?\s*(?-i:[A-Z])[A-Za-z ]*"
                    r"(?:accounting|policies|basis|presentation|organization|business|summary|description)\b.*$)", re.I | re.M)


def is_statement_title(line: str) -> bool:
    """Whether ``line`` is a primary statement's title as a heading ("CONSOLIDATED STATEMENTS OF
    INCOME", "Consolidated Balance Shee t", "Consolidated Statements of Cash Flows — Years Ended
    ...", "Consolidated Statements of Income Verizon Communications Inc."), not a wrapped sentence ("consolidated statement of income as the changes in ..."), a
    table title that goes on ("Consolidated Balance Sheet that are Subject") or a table-of-contents
    entry ("Consolidated Statements of Income      72")."""
    return bool(_STATEMENT_TITLE.match(line))


def statement_pages(text: str) -> list[tuple[int, str]]:
    """``[(line number of the page's first line, page)]`` of the pages (form-feed separated, as
    ``pdftotext`` writes them; none in a text of fewer than 3 pages) whose first 12 non-empty lines
    hold a primary statement's title (:func:`is_statement_title`)."""
    pages = text.split("\f")
    out, line = [], 1
    for page in pages:
        if len(pages) >= 3 and any(is_statement_title(x) for x in [x for x in page.split("\n") if x.strip()][:12]):
            out.append((line, page))
        line += page.count("\n")
    return out


def before_notes(section: str) -> str:
    """The part of an Item 8 ``section`` text before its notes (:data:`_NOTES`: a "Notes to
    Consolidated Financial Statements" heading alone on its line, or a first note's heading "Note
    1. Summary of Significant Accounting Policies" / "1. Basis of Presentation"); all of it when
    neither is found. An index line with a page number is not the heading."""
    m = _NOTES.search(section)
    return section[:m.start()] if m else section


def text_financials(text: str, source: str, *, document: str = "the 10-K") -> list[tuple[int, str, float, str]]:
    """``[(fiscal_year, metric, value, source)]`` from the statement lines of ``text`` (rules in the
    module docstring; values in USD millions, ``diluted_eps`` in USD per share, ``interest_expense``
    positive, ``total_debt`` the short-term plus the long-term debt line, ``total_liabilities``
    derived where not printed; the source names the file's line, or ``derived: ...``). Without an
    Item 8 heading only the statement pages are read; with neither, raises :class:`DossierError`
    naming ``document`` and the headings looked for."""
    item8 = find_item(text, "8", "financial")
    pages = [(first + k, line) for first, page in statement_pages(text) for k, line in enumerate(page.split("\n"))]
    found = _statement_lines(pages, source, "statement page")
    if item8 is None and not found:
        raise DossierError(f"{document}: section not found: Item 8 (Financial Statements and Supplementary Data): no line "
                           "starting 'Item 8' followed by its title, and no page headed 'Consolidated Statement(s) of "
                           "Income/Operations/Earnings/Cash Flows' or 'Consolidated Balance Sheet(s)': the statement "
                           "lines are read there")
    for item, word, part in (("8", "financial", before_notes), ("6", "selected", str)):  # MGM prints some totals unlabelled
        section = item8 if item == "8" else find_item(text, item, word)
        if section is None:
            continue
        first = text[:section.start].count("\n") + 1
        lines = [(first + k, line) for k, line in enumerate(part(section.text).split("\n"))]
        for metric, rows in _statement_lines(lines, source, f"Item {item}").items():
            found.setdefault(metric, rows)
    return sorted([(fy, m, abs(v) if m == "interest_expense" else v, s)
                   for m, rows in found.items() if m not in _DEBT_PARTS for fy, v, s in rows]
                  + _total_debt(found) + _derived_liabilities(found))


def _derived_liabilities(found: Mapping[str, list[tuple[int, float, str]]]) -> list[tuple[int, str, float, str]]:
    """``total_liabilities`` rows (USD millions) = total assets - equity read, for the fiscal years
    with both and no total liabilities line (none when the statements print one for any year)."""
    if found.get("total_liabilities"):
        return []
    equity = {fy: (v, s) for fy, v, s in found.get("total_equity", [])}
    return [(fy, "total_liabilities", round(assets - equity[fy][0], 6),
             f"derived: total_assets - total_equity (no total liabilities line printed; includes any noncontrolling "
             f"or redeemable interest not in the equity read): {where}; {equity[fy][1]}")
            for fy, assets, where in found.get("total_assets", []) if fy in equity]

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
