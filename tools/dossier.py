"""The *dossier*: one company's due-diligence input as of a date, as a folder of plain files.

Layout of a dossier folder (all text UTF-8)::

    dossier.toml             ticker, name, sector, currency ("USD"), units, fiscal_year_end ("MM-DD"),
                             peer_snapshot_date, sources (list of strings), notes (free text);
                             optional: as_of (the date the dossier was assembled for)
    financials.csv           fiscal_year,metric,value,source   (USD millions; diluted_eps in USD/share)
    prices.csv               date,close                        (target's daily close, USD)
    benchmark.csv            date,close                        (S&P 500 index level)
    rates.csv                month,rf_pct                      (monthly risk-free rate in percent, YYYY-MM,
                                                                Fama-French ``RF`` convention)
    peers.csv                ticker,name,sector,price,pe,ps,pb,ev_ebitda,market_cap,ebitda,is_target
                             (market_cap and ebitda in USD millions; empty cell = not available)
    headlines.csv            date,headline,source              (date may be empty = undated)
    filings/risk_factors.txt
    filings/legal_proceedings.txt
    filings/legal_note.txt   (optional)

:func:`load_dossier` validates everything up front and raises :class:`DossierError` naming the file,
the line/column or field, what was found and what was expected. Loading never writes anything.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from chainproof.errors import DossierError

__all__ = [
    "DossierError",
    "DossierMeta",
    "FinancialRow",
    "PricePoint",
    "RatePoint",
    "PeerRow",
    "Headline",
    "Dossier",
    "FINANCIAL_METRICS",
    "MIN_HISTORY_DAYS",
    "MAX_DAYS_AFTER_LAST_PRICE",
    "load_dossier",
    "bundled_dossier",
    "bundled_tickers",
    "resolve_dossier",
    "check_as_of",
    "fiscal_year_end_date",
]


#: Metrics accepted in ``financials.csv`` (USD millions unless noted).
FINANCIAL_METRICS: Mapping[str, str] = {
    "revenue": "net sales / total revenues, USD millions",
    "operating_income": "operating income as printed, USD millions",
    "net_income": "net income attributable to the parent, USD millions",
    "total_assets": "USD millions, fiscal year end",
    "total_liabilities": "USD millions, fiscal year end",
    "total_equity": "shareholders' equity, USD millions, fiscal year end",
    "current_assets": "USD millions, fiscal year end",
    "current_liabilities": "USD millions, fiscal year end",
    "total_debt": "short-term borrowings + current portion of long-term debt + long-term debt, USD millions",
    "interest_expense": "positive number, USD millions",
    "operating_cash_flow": "USD millions",
    "capital_expenditures": "negative, as printed in the cash-flow statement, USD millions",
    "cash_and_equivalents": "USD millions, fiscal year end",
    "diluted_eps": "USD per share",
}

#: check_as_of: trading days of price history required strictly before ``as_of``.
MIN_HISTORY_DAYS = 60
#: check_as_of: ``as_of`` may be at most this many calendar days after the last price.
MAX_DAYS_AFTER_LAST_PRICE = 10

_REQUIRED_META = ("ticker", "name", "sector", "currency", "units", "fiscal_year_end",
                  "peer_snapshot_date", "sources", "notes")
_TEXT_FILES = {"risk_factors": True, "legal_proceedings": True, "legal_note": False}  # name -> required


# --------------------------------------------------------------------------------------------
# Data classes (a loaded dossier is read-only and never goes into graph state itself)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DossierMeta:
    """Contents of ``dossier.toml``."""

    ticker: str
    name: str
    sector: str
    currency: str
    units: str
    fiscal_year_end: str  # "MM-DD"
    peer_snapshot_date: date
    sources: tuple[str, ...]
    notes: str
    as_of: date | None = None


@dataclass(frozen=True)
class FinancialRow:
    """One ``financials.csv`` row: ``value`` in USD millions (``diluted_eps`` in USD/share)."""

    fiscal_year: int
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class PricePoint:
    """A daily close (``prices.csv`` / ``benchmark.csv``)."""

    date: date
    close: float


@dataclass(frozen=True)
class RatePoint:
    """Monthly risk-free rate: ``rf_pct`` percent per month for calendar month ``year``-``month``."""

    year: int
    month: int
    rf_pct: float

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class PeerRow:
    """One ``peers.csv`` row; ``None`` = not available. market_cap/ebitda in USD millions."""

    ticker: str
    name: str
    sector: str
    price: float | None
    pe: float | None
    ps: float | None
    pb: float | None
    ev_ebitda: float | None
    market_cap: float | None
    ebitda: float | None
    is_target: bool


@dataclass(frozen=True)
class Headline:
    """One ``headlines.csv`` row; ``date`` is ``None`` when undated."""

    date: date | None
    headline: str
    source: str


@dataclass(frozen=True, eq=False)
class Dossier:
    """A validated, loaded dossier (see module docstring for the file formats)."""

    path: Path
    meta: DossierMeta
    financials: tuple[FinancialRow, ...]
    prices: tuple[PricePoint, ...]  # ascending by date, unique dates
    benchmark: tuple[PricePoint, ...]  # ascending by date, unique dates
    rates: tuple[RatePoint, ...]  # ascending by month
    peers: tuple[PeerRow, ...]
    headlines: tuple[Headline, ...]
    texts: Mapping[str, str]  # risk_factors, legal_proceedings, legal_note ("" when absent)
    _fin_index: Mapping[tuple[int, str], FinancialRow] = field(default_factory=dict, repr=False)

    @property
    def ticker(self) -> str:
        return self.meta.ticker

    def financial(self, metric: str, fiscal_year: int) -> float | None:
        """Value of ``metric`` for ``fiscal_year`` or ``None`` when the row is absent."""
        row = self._fin_index.get((fiscal_year, metric))
        return None if row is None else row.value

    def financial_source(self, metric: str, fiscal_year: int) -> str | None:
        """``source`` text of the (fiscal_year, metric) row, or ``None`` when absent."""
        row = self._fin_index.get((fiscal_year, metric))
        return None if row is None else row.source

    def fiscal_years(self) -> list[int]:
        """All fiscal years with at least one financials row, ascending."""
        return sorted({r.fiscal_year for r in self.financials})

    def fiscal_year_end(self, fiscal_year: int) -> date:
        """Date on which ``fiscal_year`` ends (from ``fiscal_year_end`` MM-DD)."""
        return fiscal_year_end_date(self.meta.fiscal_year_end, fiscal_year)

    @property
    def target_peer(self) -> PeerRow | None:
        """The peers.csv row with is_target=true (exactly one in a loaded dossier)."""
        return next((p for p in self.peers if p.is_target), None)


def fiscal_year_end_date(mm_dd: str, fiscal_year: int) -> date:
    """``date(fiscal_year, MM, DD)``; Feb 29 falls back to Feb 28 in non-leap years."""
    month, day = (int(x) for x in mm_dd.split("-"))
    try:
        return date(fiscal_year, month, day)
    except ValueError:
        return date(fiscal_year, month, 28)


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _parse_float(text: str, where: str, column: str, *, allow_empty: bool = False) -> float | None:
    raw = text.strip()
    if raw == "":
        if allow_empty:
            return None
        raise DossierError(f"{where}: {column} is empty; expected a number")
    cleaned = raw.replace(",", "")
    if not _NUM_RE.match(cleaned):
        raise DossierError(f"{where}: {column}={raw!r} is not a number")
    value = float(cleaned)
    if not math.isfinite(value):
        raise DossierError(f"{where}: {column}={raw!r} is not a finite number")
    return value


def _parse_date(text: str, where: str, column: str) -> date:
    raw = text.strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise DossierError(f"{where}: {column}={raw!r} is not a date (expected YYYY-MM-DD)") from None


def _read_csv(folder: Path, name: str, columns: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Read ``folder/name``; check the header has ``columns``. Returns [(where, row)] where
    ``where`` is ``"<name> line <n>"`` (1-based physical line; the header is line 1)."""
    path = folder / name
    if not path.is_file():
        raise DossierError(f"missing file {name} in {folder}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DossierError(f"{name}: not valid UTF-8 text ({exc})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DossierError(f"{name}: empty file; expected a header line '{','.join(columns)}'")
    reader.fieldnames = header
    missing = [c for c in columns if c not in header]
    if missing:
        raise DossierError(
            f"{name}: missing column {', '.join(repr(c) for c in missing)} "
            f"(found columns: {', '.join(header)}; expected: {', '.join(columns)})")
    rows: list[tuple[str, dict[str, str]]] = []
    try:
        for row in reader:
            where = f"{name} line {reader.line_num}"
            if None in row:  # more cells than header columns
                raise DossierError(f"{where}: {len(header) + len(row[None])} cells but the header has "
                                   f"{len(header)} columns")
            if all((v or "").strip() == "" for v in row.values()):
                continue  # blank line
            rows.append((where, {k: (v if v is not None else "") for k, v in row.items()}))
    except csv.Error as exc:
        raise DossierError(f"{name} line {reader.line_num}: unreadable CSV ({exc})") from None
    return rows


def _read_series(folder: Path, name: str) -> tuple[PricePoint, ...]:
    rows = _read_csv(folder, name, ("date", "close"))
    if not rows:
        raise DossierError(f"{name}: no data rows; expected daily 'date,close' rows")
    seen: dict[date, str] = {}
    points = []
    for where, row in rows:
        d = _parse_date(row["date"], where, "date")
        close = _parse_float(row["close"], where, "close")
        assert close is not None
        if close <= 0:
            raise DossierError(f"{where}: close={row['close'].strip()!r} must be > 0")
        if d in seen:
            raise DossierError(f"{where}: duplicate date {d.isoformat()} (first on {seen[d]})")
        seen[d] = where
        points.append(PricePoint(d, close))
    points.sort(key=lambda p: p.date)
    return tuple(points)


def _read_meta(folder: Path) -> DossierMeta:
    path = folder / "dossier.toml"
    if not path.is_file():
        raise DossierError(f"missing file dossier.toml in {folder}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DossierError(f"dossier.toml: invalid TOML ({exc})") from None
    for key in _REQUIRED_META:
        if key not in data:
            raise DossierError(f"dossier.toml: missing field {key!r} (required fields: {', '.join(_REQUIRED_META)})")
    for key in ("ticker", "name", "sector", "currency", "units", "fiscal_year_end", "notes"):
        if not isinstance(data[key], str):
            raise DossierError(f"dossier.toml: field {key!r}={data[key]!r} is not a string")
    ticker = data["ticker"].strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9.\-]{0,9}", ticker):
        raise DossierError(f"dossier.toml: field 'ticker'={data['ticker']!r} is not a ticker symbol")
    if data["currency"].strip().upper() != "USD":
        raise DossierError(f"dossier.toml: field 'currency'={data['currency']!r} is not supported; expected 'USD'")
    fye = data["fiscal_year_end"].strip()
    ok = re.fullmatch(r"(\d{2})-(\d{2})", fye)
    if not ok or not (1 <= int(ok.group(1)) <= 12 and 1 <= int(ok.group(2)) <= 31):
        raise DossierError(f"dossier.toml: field 'fiscal_year_end'={fye!r} is not a month-day; expected 'MM-DD'")
    try:
        fiscal_year_end_date(fye, 2001)
    except ValueError:
        raise DossierError(f"dossier.toml: field 'fiscal_year_end'={fye!r} is not a valid month-day") from None

    def as_date(key: str, value: object) -> date:
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            return _parse_date(value, "dossier.toml", f"field {key!r}")
        raise DossierError(f"dossier.toml: field {key!r}={value!r} is not a date (expected YYYY-MM-DD)")

    sources = data["sources"]
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise DossierError(f"dossier.toml: field 'sources' must be a list of strings, found {sources!r}")
    as_of = as_date("as_of", data["as_of"]) if "as_of" in data else None
    return DossierMeta(
        ticker=ticker, name=data["name"].strip(), sector=data["sector"].strip(), currency="USD",
        units=data["units"].strip(), fiscal_year_end=fye,
        peer_snapshot_date=as_date("peer_snapshot_date", data["peer_snapshot_date"]),
        sources=tuple(sources), notes=data["notes"].strip(), as_of=as_of)


def _read_financials(folder: Path) -> tuple[FinancialRow, ...]:
    rows = _read_csv(folder, "financials.csv", ("fiscal_year", "metric", "value", "source"))
    out: list[FinancialRow] = []
    seen: dict[tuple[int, str], str] = {}
    for where, row in rows:
        fy_raw = row["fiscal_year"].strip()
        if not re.fullmatch(r"\d{4}", fy_raw):
            raise DossierError(f"{where}: fiscal_year={fy_raw!r} is not a 4-digit year")
        fy = int(fy_raw)
        metric = row["metric"].strip()
        if metric not in FINANCIAL_METRICS:
            raise DossierError(f"{where}: metric={metric!r} is not a known metric "
                               f"(expected one of: {', '.join(FINANCIAL_METRICS)})")
        value = _parse_float(row["value"], where, "value")
        assert value is not None
        if (fy, metric) in seen:
            raise DossierError(f"{where}: duplicate {metric} for fiscal_year {fy} (first on {seen[(fy, metric)]})")
        seen[(fy, metric)] = where
        out.append(FinancialRow(fy, metric, value, row["source"].strip()))
    out.sort(key=lambda r: (r.fiscal_year, r.metric))
    return tuple(out)


def _read_rates(folder: Path) -> tuple[RatePoint, ...]:
    rows = _read_csv(folder, "rates.csv", ("month", "rf_pct"))
    out: dict[tuple[int, int], RatePoint] = {}
    for where, row in rows:
        raw = row["month"].strip()
        m = re.fullmatch(r"(\d{4})-(\d{2})", raw)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise DossierError(f"{where}: month={raw!r} is not a month (expected YYYY-MM)")
        key = (int(m.group(1)), int(m.group(2)))
        if key in out:
            raise DossierError(f"{where}: duplicate month {raw}")
        rf = _parse_float(row["rf_pct"], where, "rf_pct")
        assert rf is not None
        out[key] = RatePoint(key[0], key[1], rf)
    return tuple(out[k] for k in sorted(out))


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _read_peers(folder: Path, ticker: str) -> tuple[PeerRow, ...]:
    cols = ("ticker", "name", "sector", "price", "pe", "ps", "pb", "ev_ebitda", "market_cap", "ebitda", "is_target")
    rows = _read_csv(folder, "peers.csv", cols)
    out: list[PeerRow] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        t = row["ticker"].strip().upper()
        if not t:
            raise DossierError(f"{where}: ticker is empty")
        if t in seen:
            raise DossierError(f"{where}: duplicate ticker {t} (first on {seen[t]})")
        seen[t] = where
        flag = row["is_target"].strip().lower()
        if flag not in _TRUE | _FALSE:
            raise DossierError(f"{where}: is_target={row['is_target']!r} is not a boolean (expected true/false)")
        nums = {c: _parse_float(row[c], where, c, allow_empty=True)
                for c in ("price", "pe", "ps", "pb", "ev_ebitda", "market_cap", "ebitda")}
        out.append(PeerRow(ticker=t, name=row["name"].strip(), sector=row["sector"].strip(),
                           is_target=flag in _TRUE, **nums))
    targets = [p for p in out if p.is_target]
    if len(targets) != 1:
        raise DossierError(f"peers.csv: {len(targets)} rows have is_target=true; expected exactly 1 (the {ticker} row)")
    if targets[0].ticker != ticker:
        raise DossierError(f"peers.csv: the is_target row is {targets[0].ticker}; expected {ticker} "
                           f"(the ticker in dossier.toml)")
    return tuple(out)


def _read_headlines(folder: Path) -> tuple[Headline, ...]:
    rows = _read_csv(folder, "headlines.csv", ("date", "headline", "source"))
    out = []
    for where, row in rows:
        raw_date = row["date"].strip()
        d = _parse_date(raw_date, where, "date") if raw_date else None
        text = " ".join(row["headline"].split())
        if not text:
            raise DossierError(f"{where}: headline is empty")
        out.append(Headline(d, text, row["source"].strip()))
    return tuple(out)


def _read_texts(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, required in _TEXT_FILES.items():
        path = folder / "filings" / f"{name}.txt"
        if not path.is_file():
            if required:
                raise DossierError(f"missing file filings/{name}.txt in {folder}")
            texts[name] = ""
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DossierError(f"filings/{name}.txt: not valid UTF-8 text ({exc})") from None
    return texts


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def load_dossier(path: str | Path) -> Dossier:
    """Load and validate the dossier folder at ``path``.

    Returns a :class:`Dossier` (prices/benchmark sorted ascending, financial rows indexed by
    (fiscal_year, metric)). Raises :class:`DossierError` for a missing folder or file, invalid TOML,
    a missing/invalid field, a missing CSV column, a non-number/unparseable date/duplicate row, or a
    peers.csv whose ``is_target`` row is not the dossier's ticker. Never writes.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DossierError(f"dossier folder not found: {folder} (expected a folder holding dossier.toml)")
    folder = folder.resolve()
    meta = _read_meta(folder)
    financials = _read_financials(folder)
    prices = _read_series(folder, "prices.csv")
    benchmark = _read_series(folder, "benchmark.csv")
    rates = _read_rates(folder)
    peers = _read_peers(folder, meta.ticker)
    headlines = _read_headlines(folder)
    texts = _read_texts(folder)
    return Dossier(path=folder, meta=meta, financials=financials, prices=prices, benchmark=benchmark,
                   rates=rates, peers=peers, headlines=headlines, texts=texts,
                   _fin_index={(r.fiscal_year, r.metric): r for r in financials})


def _bundled_root() -> Path:
    return Path(str(resources.files(__package__ or "chainproof.tools") / "dossiers"))


def bundled_tickers() -> list[str]:
    """Tickers of the dossiers shipped under ``tools/dossiers/``, sorted."""
    root = _bundled_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "dossier.toml").is_file())


def bundled_dossier(ticker: str) -> Path:
    """Path of the bundled dossier for ``ticker`` (case-insensitive).

    Raises :class:`DossierError` listing the available tickers when none is bundled.
    """
    available = bundled_tickers()
    key = ticker.strip().upper()
    if key not in available:
        raise DossierError(f"no bundled dossier for ticker {ticker!r}; available: {', '.join(available) or '(none)'}")
    return _bundled_root() / key


def resolve_dossier(ticker: str, path: str | Path | None = None) -> Path:
    """Folder to use for ``ticker``: the explicit ``path`` if given (its dossier.toml ticker must equal
    ``ticker``), else the bundled dossier. Raises :class:`DossierError` on a mismatch or unknown ticker."""
    if path is None:
        return bundled_dossier(ticker)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DossierError(f"dossier folder not found: {folder} (expected a folder holding dossier.toml)")
    meta = _read_meta(folder.resolve())
    if meta.ticker != ticker.strip().upper():
        raise DossierError(f"dossier.toml in {folder}: ticker is {meta.ticker!r}; expected {ticker.strip().upper()!r}")
    return folder.resolve()


def check_as_of(dossier: Dossier, as_of: date) -> None:
    """Raise :class:`DossierError` unless ``as_of`` is inside the dossier's price data.

    Needs >= :data:`MIN_HISTORY_DAYS` (60) trading days in prices.csv dated strictly before
    ``as_of``, and ``as_of`` at most :data:`MAX_DAYS_AFTER_LAST_PRICE` (10) calendar days after the
    last price. The message names the data's date range.
    """
    if not isinstance(as_of, date):
        raise DossierError(f"as_of={as_of!r} is not a date (expected YYYY-MM-DD)")
    first, last = dossier.prices[0].date, dossier.prices[-1].date
    span = f"prices.csv for {dossier.ticker} covers {first.isoformat()} to {last.isoformat()}"
    before = sum(1 for p in dossier.prices if p.date < as_of)
    if before < MIN_HISTORY_DAYS:
        raise DossierError(
            f"as_of {as_of.isoformat()} is outside the data: only {before} trading days of prices before it "
            f"(need >= {MIN_HISTORY_DAYS}); {span}")
    if (as_of - last).days > MAX_DAYS_AFTER_LAST_PRICE:
        raise DossierError(
            f"as_of {as_of.isoformat()} is outside the data: {(as_of - last).days} days after the last price "
            f"(allowed: {MAX_DAYS_AFTER_LAST_PRICE}); {span}")
