"""Reading a dossier folder (layout in :mod:`chainproof.tools.dossier`): every file is parsed and
validated up front, and a :class:`DossierError` names the file, the line/column or field, what was
found and what was expected. Loading never writes anything.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.dossier_model import (
    FINANCIAL_METRICS,
    Dossier,
    DossierMeta,
    FinancialRow,
    Headline,
    PeerRow,
    PricePoint,
    RatePoint,
    fiscal_year_end_date,
)
from chainproof.tools.input_files import read_text

__all__ = ["load_dossier", "read_meta"]

_REQUIRED_META = ("ticker", "name", "sector", "currency", "units", "fiscal_year_end",
                  "peer_snapshot_date", "sources", "notes")
_TEXT_FILES = {"risk_factors": True, "legal_proceedings": True, "legal_note": False}  # name -> required


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
    text = read_text(path, "", "utf-8-sig")
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


def read_meta(folder: Path) -> DossierMeta:
    """The validated ``dossier.toml`` of ``folder``; raises :class:`DossierError`."""
    path = folder / "dossier.toml"
    if not path.is_file():
        raise DossierError(f"missing file dossier.toml in {folder}")
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
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
        texts[name] = read_text(path)
    return texts


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
    meta = read_meta(folder)
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
