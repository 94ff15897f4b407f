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

import re
from datetime import date
from importlib import resources
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.dossier_files import load_dossier, read_meta
from chainproof.tools.dossier_model import (
    FINANCIAL_METRICS,
    MAX_DAYS_AFTER_LAST_PRICE,
    MIN_HISTORY_DAYS,
    Dossier,
    DossierMeta,
    FinancialRow,
    Headline,
    PeerRow,
    PricePoint,
    RatePoint,
    fiscal_year_end_date,
)

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
    "bundled_root",
    "bundled_tickers",
    "resolve_dossier",
    "locate_dossier",
    "check_as_of",
    "fiscal_year_end_date",
]


def bundled_root() -> Path:
    """The folder of the dossiers shipped with Chainproof (``tools/dossiers/``)."""
    return Path(str(resources.files(__package__ or "chainproof.tools") / "dossiers"))


def bundled_tickers() -> list[str]:
    """Tickers of the dossiers shipped under ``tools/dossiers/``, sorted."""
    root = bundled_root()
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
    return bundled_root() / key


_TICKER_RE = re.compile(r"[A-Za-z][A-Za-z0-9.\-]{0,9}")


def resolve_dossier(ticker: str | None, path: str | Path | None = None) -> Path:
    """The dossier folder to load, resolved to an absolute path.

    * ``ticker`` and ``path`` (a run's ``--company`` and ``--dossier``): the folder ``path``, whose
      dossier.toml must name ``ticker``;
    * ``ticker`` only: the bundled dossier of ``ticker``;
    * ``path`` only (a tool's ``dossier`` argument): the folder ``path`` if it exists, else, when
      ``path`` looks like a ticker, the bundled dossier of that ticker.

    Raises :class:`DossierError`: folder not found, a ticker mismatch, or no bundled dossier (the
    message lists the bundled tickers)."""
    if path is None:
        if ticker is None:
            raise DossierError("no dossier: expected a ticker or a dossier folder")
        return bundled_dossier(ticker)
    if ticker is None:
        return _folder_or_bundled(str(path))
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DossierError(f"dossier folder not found: {folder} (expected a folder holding dossier.toml)")
    meta = read_meta(folder.resolve())
    if meta.ticker != ticker.strip().upper():
        raise DossierError(f"dossier.toml in {folder}: ticker is {meta.ticker!r}; expected {ticker.strip().upper()!r}")
    return folder.resolve()


def locate_dossier(value: str, *, home: Path, local: bool = True) -> str:
    """The dossier a run's ``dossier`` argument names, as the CLI and the web app read it (the one
    place both resolve it, through ``chainproof._start.located_dossiers``):

    * a path (it holds a ``/``, starts with ``~`` or is ``.``/``..``): returned as given, the graph
      reads it (and the web app checks it is inside its input folders);
    * a bare name: a folder of that name in the working directory when ``local`` (the CLI, not the
      web app, whose working directory is the server's), else ``home/dossiers/NAME``
      (``$CHAINPROOF_HOME/dossiers``), else the bundled dossier of that ticker; the folder found.

    Raises :class:`DossierError` naming ``dossier`` and the three places looked in, never a path
    (the message reaches web clients)."""
    given = value.strip()
    if "/" in given or "\\" in given or given.startswith("~") or given in (".", "..") or not given:
        return given
    if local and Path(given).is_dir():
        return given
    if (home / "dossiers" / given / "dossier.toml").is_file():
        return str(home / "dossiers" / given)
    key = given.upper()
    if _TICKER_RE.fullmatch(given) and key in bundled_tickers():
        return str(bundled_root() / key)
    where = "a folder in the working directory, " if local else ""
    raise DossierError(f"dossier: {given[:100]!r} is not {where}a dossier folder under $CHAINPROOF_HOME/dossiers, "
                       f"nor the ticker of a bundled dossier (bundled: {', '.join(bundled_tickers()) or 'none'})")


def _folder_or_bundled(dossier: str) -> Path:
    path = Path(dossier).expanduser()
    if path.is_dir():
        return path.resolve()
    if _TICKER_RE.fullmatch(dossier.strip()):
        try:
            return bundled_dossier(dossier)
        except DossierError as exc:
            raise DossierError(f"dossier={dossier!r} is not a folder and {exc}") from None
    raise DossierError(f"dossier={dossier!r}: folder not found (expected a dossier folder holding dossier.toml, "
                       "or the ticker of a bundled dossier)")


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
