"""``chainproof dossier fetch``: a dossier from SEC EDGAR as of a date, through edgartools.

What is read (formats: https://www.sec.gov/search-filings/edgar-application-programming-interfaces):

* ``{base}/files/company_tickers.json``: the ticker's CIK and company name;
* ``{data}/submissions/CIK##########.json``: the filings with form, filing date, report date,
  primary document and (8-K) item numbers; only filings **filed on or before** ``as_of`` are used;
* ``{data}/api/xbrl/companyfacts/CIK##########.json``: the XBRL facts of every filing; the dossier's
  financials follow :mod:`chainproof.tools.xbrl_facts`, each row naming its 10-K's accession number;
* ``{base}/Archives/edgar/data/CIK/ACCESSION/index.json`` (the filing index) and the latest
  10-K's primary document, whose Item 1A, Item 3 and commitments and contingencies note
  (:mod:`chainproof.tools.sec_sections`) become ``filings/*.txt`` as the filing states them;
* 8-K filings become dated headlines: the items they report (Form 8-K's item titles).

HTTP goes through edgartools (``edgar.httprequests.get_with_retry``): its User-Agent is the
identity given (SEC fair-access policy: a declared "Name email" User-Agent and at most 10 requests
per second; edgartools throttles to 9 per second, ``EDGAR_RATE_LIMIT_PER_SEC``), with retries and
back-off. ``EDGAR_BASE_URL`` / ``EDGAR_DATA_URL`` (edgartools' own settings, read when it is
first imported) point it at a mirror, which is how the tests use a fake EDGAR server on 127.0.0.1.

Every response is kept on disk (``cache_dir``, default ``$CHAINPROOF_HOME/edgar``) with its URL and
retrieval time; a second fetch reuses what is there, so an interrupted fetch resumes where it
stopped, and the dossier's ``sources`` name each URL with the time it was retrieved. ``refresh``
downloads again. edgartools' own HTTP cache lives under ``cache_dir/edgartools``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from chainproof.errors import ConfigError, DossierError, EdgarUnavailable
from chainproof.tools.dossier_writer import DossierParts, write_dossier
from chainproof.tools.sec_sections import find_sections, html_to_text
from chainproof.tools.xbrl_facts import ANNUAL_FORMS, facts_from_companyfacts, financial_rows

__all__ = ["EDGAR_8K_ITEMS", "EdgarCache", "check_user_agent", "fetch_dossier"]

_UA = re.compile(r"^\s*\S.*\s+[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
_UA_WHY = ("SEC EDGAR's fair-access policy requires every client to declare a User-Agent with a name and "
           "an email (https://www.sec.gov/os/accessing-edgar-data)")

#: Form 8-K item titles (Form 8-K, General Instructions B and the item list).
EDGAR_8K_ITEMS: Mapping[str, str] = {
    "1.01": "Entry into a Material Definitive Agreement", "1.02": "Termination of a Material Definitive Agreement",
    "1.03": "Bankruptcy or Receivership", "1.05": "Material Cybersecurity Incidents",
    "2.01": "Completion of Acquisition or Disposition of Assets", "2.02": "Results of Operations and Financial Condition",
    "2.03": "Creation of a Direct Financial Obligation", "2.04": "Triggering Events That Accelerate a Financial Obligation",
    "2.05": "Costs Associated with Exit or Disposal Activities", "2.06": "Material Impairments",
    "3.01": "Notice of Delisting or Failure to Satisfy a Listing Rule", "3.02": "Unregistered Sales of Equity Securities",
    "3.03": "Material Modification to Rights of Security Holders",
    "4.01": "Changes in Registrant's Certifying Accountant",
    "4.02": "Non-Reliance on Previously Issued Financial Statements",
    "5.01": "Changes in Control of Registrant", "5.02": "Departure or Appointment of Directors or Officers",
    "5.03": "Amendments to Articles of Incorporation or Bylaws", "5.07": "Submission of Matters to a Vote of Security Holders",
    "7.01": "Regulation FD Disclosure", "8.01": "Other Events", "9.01": "Financial Statements and Exhibits",
}


def check_user_agent(user_agent: str | None) -> str:
    """The stripped User-Agent, or :class:`ConfigError` saying why one is needed."""
    if not user_agent or not user_agent.strip():
        raise ConfigError(f"CHAINPROOF_SEC_USER_AGENT is not set: {_UA_WHY}; set it to 'Name email', "
                          "e.g. CHAINPROOF_SEC_USER_AGENT='Jane Analyst jane@example.com'")
    if not _UA.match(user_agent):
        raise ConfigError(f"CHAINPROOF_SEC_USER_AGENT={user_agent!r} is not 'Name email': {_UA_WHY}")
    return " ".join(user_agent.split())


@dataclass(frozen=True)
class Response:
    """A stored EDGAR response: ``url``, ``body`` bytes and ``retrieved`` (UTC)."""

    url: str
    body: bytes
    retrieved: datetime

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise EdgarUnavailable(f"EDGAR {self.url}: not JSON ({exc})") from None

    @property
    def source(self) -> str:
        return f"{self.url} (retrieved {self.retrieved.isoformat(timespec='seconds')})"


class EdgarCache:
    """EDGAR responses through edgartools, kept under ``root`` (one body file and one ``.json``
    with the URL and retrieval time per URL); see the module docstring."""

    def __init__(self, root: Path, user_agent: str, *, refresh: bool = False) -> None:
        self.root = root
        self.user_agent = user_agent
        self.refresh = refresh
        self.downloads = 0

    def _edgar(self) -> Any:
        os.environ.setdefault("EDGAR_LOCAL_DATA_DIR", str(self.root / "edgartools"))
        import edgar
        import edgar.httprequests

        edgar.set_identity(self.user_agent)
        return edgar

    def get(self, url: str) -> Response:
        """The response of ``url``: from disk when kept, else downloaded (HTTP 200 only) and kept.
        Raises :class:`EdgarUnavailable` naming the URL and the cause, :class:`DossierError` on 404."""
        key = hashlib.sha256(url.encode()).hexdigest()[:40]
        body_path, meta_path = self.root / f"{key}.body", self.root / f"{key}.json"
        if not self.refresh and body_path.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return Response(url, body_path.read_bytes(), datetime.fromisoformat(meta["retrieved"]))
        edgar = self._edgar()
        try:
            resp = edgar.httprequests.get_with_retry(url)
        except Exception as exc:  # edgartools raises httpx and its own types after its retries
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status == 404:
                raise DossierError(f"EDGAR has no {url} (HTTP 404)") from None
            raise EdgarUnavailable(f"EDGAR {url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                                   "(run the same command again to resume)") from exc
        if resp.status_code == 404:
            raise DossierError(f"EDGAR has no {url} (HTTP 404)")
        if resp.status_code != 200:
            raise EdgarUnavailable(f"EDGAR {url}: HTTP {resp.status_code} (run the same command again to resume)")
        now = datetime.now(UTC)
        self.root.mkdir(parents=True, exist_ok=True)
        for path, data in ((body_path, resp.content),
                           (meta_path, json.dumps({"url": url, "retrieved": now.isoformat()}).encode())):
            part = path.with_suffix(path.suffix + ".part")
            part.write_bytes(data)
            part.replace(path)  # whole files only: an interrupted fetch leaves nothing half-written
        self.downloads += 1
        return Response(url, resp.content, now)

    def urls(self) -> Any:
        return self._edgar().urls


def _filings(sub: Mapping[str, Any]) -> list[dict[str, str]]:
    recent = (sub.get("filings") or {}).get("recent") or {}
    cols = ("accessionNumber", "filingDate", "reportDate", "form", "primaryDocument", "items")
    n = len(recent.get("accessionNumber", []))
    return [{c: str((recent.get(c) or [""] * n)[i] or "") for c in cols} for i in range(n)]


def _headline(name: str, f: Mapping[str, str]) -> str:
    items = [i.strip() for i in f["items"].split(",") if i.strip()]
    titles = [EDGAR_8K_ITEMS.get(i, f"Item {i}") for i in items if i != "9.01"] or ["current report"]
    return f"{name} files 8-K: {'; '.join(titles)}"


def fetch_dossier(ticker: str, as_of: date, out_dir: str | Path, market: Mapping[str, Path], *,
                  user_agent: str | None, cache_dir: str | Path, n_years: int = 3, refresh: bool = False,
                  max_8k: int = 40, force: bool = False, summary: list[str] | None = None) -> Path:
    """Build the dossier of ``ticker`` as of ``as_of`` from EDGAR into ``out_dir`` (module
    docstring); ``market`` holds the analyst's ``prices.csv``, ``benchmark.csv``, ``rates.csv`` and
    ``peers.csv`` (:func:`chainproof.tools.dossier_writer.write_dossier`). The latest ``max_8k``
    8-Ks filed in the year before ``as_of`` become headlines. When companyfacts holds no financial
    fact of those 10-Ks, financials.csv is written empty and a note says so (appended to ``summary``
    too, when given, for the command to print).

    Raises :class:`ConfigError` without a "Name email" ``user_agent`` (before any request),
    :class:`DossierError` for an unknown ticker, no 10-K filed by ``as_of``, a missing section or
    bad market file, :class:`EdgarUnavailable` when EDGAR cannot be reached (run again to resume).
    Returns the dossier's resolved path."""
    ua = check_user_agent(user_agent)
    edgar = EdgarCache(Path(cache_dir).expanduser(), ua, refresh=refresh)
    urls = edgar.urls()
    key = ticker.strip().upper()
    tickers = edgar.get(urls.build_company_tickers_url())
    row = next((r for r in tickers.json().values() if str(r.get("ticker", "")).upper() == key), None)
    if row is None:
        raise DossierError(f"ticker {ticker!r} is not in EDGAR's company_tickers.json ({tickers.url})")
    cik = int(row["cik_str"])
    sub = edgar.get(urls.build_submissions_url(cik))
    info = sub.json()
    name = str(info.get("name") or row.get("title") or key)
    filings = [f for f in _filings(info) if f["filingDate"] and date.fromisoformat(f["filingDate"]) <= as_of]
    annual = sorted((f for f in filings if f["form"] in ANNUAL_FORMS and not f["form"].endswith("/A")),
                    key=lambda f: f["filingDate"])
    if not annual:
        raise DossierError(f"EDGAR lists no 10-K of {key} (CIK {cik}) filed on or before {as_of.isoformat()} "
                           f"({sub.url})")
    tenk = annual[-1]
    acc = tenk["accessionNumber"]
    folder = f"data/{cik}/{acc.replace('-', '')}"
    index = edgar.get(urls.build_archive_url(f"{folder}/index.json"))
    names = [i.get("name", "") for i in (index.json().get("directory") or {}).get("item", [])]
    primary = tenk["primaryDocument"] if tenk["primaryDocument"] in names else next(
        (n for n in names if n.lower().endswith((".htm", ".html")) and "index" not in n.lower()), "")
    if not primary:
        raise DossierError(f"the filing index of 10-K {acc} names no HTML document ({index.url})")
    doc = edgar.get(urls.build_archive_url(f"{folder}/{primary}"))
    text = html_to_text(doc.body) if primary.lower().endswith((".htm", ".html")) else doc.body.decode("utf-8", "replace")
    sections = find_sections(text, document=f"10-K {acc} ({doc.url})")
    facts = edgar.get(urls.build_company_facts_url(cik))
    describe = {f["accessionNumber"]: f"{f['form']} {f['accessionNumber']} filed {f['filingDate']}" for f in filings}
    fin = financial_rows(facts_from_companyfacts(facts.json()), as_of, n_years=n_years, describe=describe)
    year_ago = date(as_of.year - 1, as_of.month, min(as_of.day, 28))
    eights = [f for f in filings if f["form"] == "8-K" and date.fromisoformat(f["filingDate"]) > year_ago]
    eights = sorted(eights, key=lambda f: f["filingDate"])[-max_8k:]
    fye = str(info.get("fiscalYearEnd") or "1231")
    notes = [f"financials: XBRL facts of the 10-K filings filed on or before {as_of.isoformat()}, each row naming "
             "its filing's accession number", f"filings/*.txt: sections of 10-K {acc} filed {tenk['filingDate']} "
             "as the filing states them", "headlines.csv: the 8-Ks filed in the year before as_of (their items)"]
    if not fin:
        empty = (f"no XBRL financial facts of a 10-K filed on or before {as_of.isoformat()} in companyfacts "
                 f"({facts.source}): financials.csv is empty")
        notes.append(empty)
        if summary is not None:
            summary.append(empty)
    if "legal_note" not in sections:
        notes.append(f"10-K {acc} has no commitments and contingencies note heading; filings/legal_note.txt is absent")
    parts = DossierParts(
        ticker=key, name=name, sector=str(info.get("sicDescription") or "unknown"),
        fiscal_year_end=f"{fye[:2]}-{fye[2:4]}", as_of=as_of, financials=fin,
        headlines=[(date.fromisoformat(f["filingDate"]), _headline(name, f),
                    f"8-K {f['accessionNumber']} filed {f['filingDate']}") for f in eights],
        texts={k: s.text for k, s in sections.items()},
        sources=[f"company_tickers: {tickers.source}", f"submissions: {sub.source}",
                 f"financials.csv: companyfacts {facts.source}", f"filing index: {index.source}",
                 f"filings/: 10-K {acc} {doc.source}"],
        notes=notes)
    return write_dossier(parts, market, out_dir, force=force)
