"""A fake SEC EDGAR on 127.0.0.1 for ``dossier fetch`` tests: the responses EDGAR serves, in its
documented formats (company_tickers.json, submissions ``CIK##########.json``, companyfacts, a
filing's ``index.json`` and its primary HTML document), built at test time from the figures and
10-K sections in ``../shared/data``; nothing comes from the network.

The filings are 3M's: the FY2016, FY2017 and FY2018 10-Ks (filed 2017-02-09, 2018-02-08 and
2019-02-07) and 8-Ks around them. Accession numbers are made up in EDGAR's format
(``0000066740-YY-NNNNNN``). XBRL facts come from ``key_financials.csv``: each 10-K reports its
fiscal years, so FY2017 is reported twice (the FY2018 10-K restates operating income to 7,692).
Both hosts (www.sec.gov and data.sec.gov) are served by the one server; every request's path and
User-Agent is kept in ``requests``.
"""

from __future__ import annotations

import csv
import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CIK = 66740
TICKER = "MMM"
NAME = "3M CO"
#: doc name in the bundle -> (accession number, filing date, primary document)
TEN_KS = {
    "3M_2016_10K": ("0000066740-17-000008", "2017-02-09", "mmm-20161231x10k.htm"),
    "3M_2017_10K": ("0000066740-18-000010", "2018-02-08", "mmm-20171231x10k.htm"),
    "3M_2018_10K": ("0000066740-19-000010", "2019-02-07", "mmm-20181231x10k.htm"),
}
EIGHT_KS = [  # (accession, filing date, items)
    ("0000066740-17-000051", "2017-10-24", "2.02,9.01"),
    ("0000066740-18-000004", "2018-01-25", "2.02,9.01"),
    ("0000066740-18-000020", "2018-02-05", "5.02"),
    ("0000066740-18-000031", "2018-04-24", "2.02,9.01"),  # after the demo as_of
    ("0000066740-18-000040", "2018-05-08", "5.07"),
]
_CONCEPT = {  # key_financials metric -> (us-gaap concept, unit, flow?)
    "revenue": ("Revenues", "USD", True), "operating_income": ("OperatingIncomeLoss", "USD", True),
    "net_income_attributable": ("NetIncomeLoss", "USD", True), "diluted_eps": ("EarningsPerShareDiluted", "USD/shares", True),
    "total_assets": ("Assets", "USD", False), "total_liabilities": ("Liabilities", "USD", False),
    "total_equity": ("StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest", "USD", False),
    "cash_and_equivalents": ("CashAndCashEquivalentsAtCarryingValue", "USD", False),
    "operating_cash_flow": ("NetCashProvidedByUsedInOperatingActivities", "USD", True),
    "capital_expenditures": ("PaymentsToAcquirePropertyPlantAndEquipment", "USD", True),
}


def _companyfacts(bundle: Path) -> dict:
    gaap: dict[str, dict] = {}
    with (bundle / "sec_10k_filings" / "key_financials.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["ticker"] != TICKER or r["source_doc"] not in TEN_KS or r["metric"] not in _CONCEPT:
                continue
            concept, unit, flow = _CONCEPT[r["metric"]]
            acc, filed, _ = TEN_KS[r["source_doc"]]
            fy = int(r["fiscal_year"])
            val = float(r["value"]) if unit != "USD" else round(float(r["value_usd_millions"]) * 1e6)
            if r["metric"] == "capital_expenditures":
                val = abs(val)  # XBRL reports payments as positive amounts
            row = {"end": f"{fy}-12-31", "val": val, "accn": acc, "fy": int(r["source_doc"][3:7]), "fp": "FY",
                   "form": "10-K", "filed": filed}
            if flow:
                row = {"start": f"{fy}-01-01", **row}
            gaap.setdefault(concept, {"label": concept, "description": concept, "units": {}})["units"].setdefault(
                unit, []).append(row)
    return {"cik": CIK, "entityName": NAME, "facts": {"us-gaap": gaap}}


def _submissions() -> dict:
    rows = [(acc, filed, f"{doc[3:7]}-12-31", "10-K", prim, "") for doc, (acc, filed, prim) in TEN_KS.items()]
    rows += [(acc, filed, filed, "8-K", f"mmm8k{filed.replace('-', '')}.htm", items) for acc, filed, items in EIGHT_KS]
    rows.sort(key=lambda r: r[1], reverse=True)  # EDGAR lists the newest first
    cols = ("accessionNumber", "filingDate", "reportDate", "form", "primaryDocument", "items")
    return {"cik": str(CIK), "entityType": "operating", "sic": "3841", "sicDescription": "Surgical & Medical Instruments & Apparatus",
            "name": NAME, "tickers": [TICKER], "exchanges": ["NYSE"], "fiscalYearEnd": "1231",
            "filings": {"recent": {c: [r[i] for r in rows] for i, c in enumerate(cols)}, "files": []}}


def _tenk_html(bundle: Path, doc: str) -> str:
    """A 10-K primary document: a table of contents, then Items 1A, 1B, 3, 4 and 8 with the
    contingencies note, their text being the bundle's sections of that filing (FY2016 has none in
    the bundle and gets a short statement)."""
    folder = bundle / "sec_10k_filings" / "sections" / doc

    def part(name: str, fallback: str) -> str:
        path = folder / name
        text = path.read_text(encoding="utf-8") if path.is_file() else fallback
        return "".join(f"<p>{html.escape(line)}</p>\n" for line in text.splitlines())

    note = folder / "legal_contingencies_note.txt"
    number = re.search(r"\d+", note.read_text(encoding="utf-8").splitlines()[0]) if note.is_file() else None
    next_note = int(number.group(0)) + 1 if number else 15
    toc = "".join(f"<tr><td>Item {n}</td><td>{t}</td><td>{p}</td></tr>" for n, t, p in (
        ("1A", "Risk Factors", 10), ("3", "Legal Proceedings", 13), ("8", "Financial Statements", 54)))
    return ("<html><head><title>10-K</title></head><body>\n"
            f"<div><b>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</b></div><table>{toc}</table>\n"
            + part("item1a_risk_factors.txt", "Item 1A. Risk Factors\nThe Company faces risks.\n")
            + "<p>Item 1B. Unresolved Staff Comments.</p><p>None.</p>\n"
            + part("item3_legal_proceedings.txt", "Item 3. Legal Proceedings\nSee Note 14.\n")
            + "<p>Item 4. Mine Safety Disclosures.</p><p>Not applicable.</p>\n"
            + "<p>Item 8. Financial Statements and Supplementary Data.</p>\n"
            + part("legal_contingencies_note.txt", "NOTE 14. Commitments and Contingencies\nNone material.\n")
            + f"<p>NOTE {next_note}. Stock-Based Compensation</p><p>Not part of the note above.</p>\n</body></html>\n")


@dataclass
class FakeEdgar:
    """The running server: ``url`` (base for EDGAR_BASE_URL and EDGAR_DATA_URL) and ``requests``
    (``(path, user_agent)`` per request)."""

    url: str
    routes: dict[str, bytes]
    requests: list[tuple[str, str]] = field(default_factory=list)


def build_routes(bundle: Path) -> dict[str, bytes]:
    """Path -> body of every response the fake EDGAR serves."""
    routes = {
        "/files/company_tickers.json": json.dumps({"0": {"cik_str": CIK, "ticker": TICKER, "title": NAME},
                                                   "1": {"cik_str": 4962, "ticker": "AXP", "title": "AMERICAN EXPRESS CO"}}),
        f"/submissions/CIK{CIK:010d}.json": json.dumps(_submissions()),
        f"/api/xbrl/companyfacts/CIK{CIK:010d}.json": json.dumps(_companyfacts(bundle)),
    }
    for doc, (acc, _filed, prim) in TEN_KS.items():
        folder = f"/Archives/edgar/data/{CIK}/{acc.replace('-', '')}"
        items = [{"name": f"{acc}-index.htm", "type": "text.gif", "size": ""},
                 {"name": prim, "type": "text.gif", "size": "900000"},
                 {"name": "R1.htm", "type": "text.gif", "size": "4000"}]
        routes[f"{folder}/index.json"] = json.dumps({"directory": {"item": items, "name": folder, "parent-dir": ""}})
        routes[f"{folder}/{prim}"] = _tenk_html(bundle, doc)
    return {k: v.encode("utf-8") for k, v in routes.items()}


@contextmanager
def fake_edgar(bundle: Path) -> Iterator[FakeEdgar]:
    """Serve the fake EDGAR on 127.0.0.1 (a free port) for the ``with`` block. Unknown paths get
    404; a request without a User-Agent gets 403, as EDGAR answers undeclared clients."""
    state = FakeEdgar("", build_routes(bundle))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            agent = self.headers.get("User-Agent", "")
            state.requests.append((path, agent))
            body = state.routes.get(path)
            status = 403 if not agent else (200 if body is not None else 404)
            payload = body if status == 200 and body is not None else b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if path.endswith(".json") else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
