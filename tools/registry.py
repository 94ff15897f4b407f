"""LangChain tool wrappers for the due-diligence computations.

``DUE_DILIGENCE_TOOLS`` holds six :class:`~langchain_core.tools.StructuredTool` objects:

=====================  ===========================================  ===========================
tool name              args                                         returns (JSON-ready dict)
=====================  ===========================================  ===========================
``financial_health``   dossier, as_of                               FinancialHealth
``legal_passages``     dossier, as_of, chunk, chunks (default 3)    LegalChunk (retrieved paragraphs)
``legal_matters``      dossier, as_of, top_n (default 8), readings  LegalReview (readings: the map
                       (the map steps' texts, default none)         steps' citations, checked)
``headline_sentiment`` dossier, as_of                               SentimentSummary
``peer_comparison``    dossier, as_of                               PeerComparison
``market_risk``        dossier, as_of                               MarketRisk
``risk_scorecard``     financials, legal, sentiment, peers, risk    Scorecard
                       (the five result dicts above)
=====================  ===========================================  ===========================

``dossier`` is the path of a dossier folder, or the ticker of a bundled one (e.g. ``"MMM"``). Loaded
dossiers are cached per (folder, file mtimes/sizes), so the five data tools parse the CSVs once.
Bad arguments raise: pydantic ``ValidationError`` naming the field for a malformed value,
:class:`chainproof.tools.dossier.DossierError` (a ValueError) for a missing/invalid dossier or an as_of outside
its data, ValueError naming the field for a risk_scorecard input that is not the matching tool result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chainproof.tools.dossier import Dossier, check_as_of, load_dossier, resolve_dossier
from chainproof.tools.financials import FinancialHealth, financial_health
from chainproof.tools.legal import LegalReview, legal_matters
from chainproof.tools.legal_passages import legal_chunk
from chainproof.tools.market_risk import MarketRisk, market_risk
from chainproof.tools.peers import PeerComparison, peer_comparison
from chainproof.tools.scorecard import risk_scorecard
from chainproof.tools.sentiment import SentimentSummary, headline_sentiment

__all__ = ["DUE_DILIGENCE_TOOLS", "get_tool", "tool_names", "load_dossier_cached", "clear_dossier_cache"]

_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Dossier] = OrderedDict()
_lock = threading.Lock()


def _signature(folder: Path) -> tuple:
    sig = []
    for p in sorted([*folder.glob("*.csv"), folder / "dossier.toml", *folder.glob("filings/*.txt")]):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        sig.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(sig)


def load_dossier_cached(dossier: str | Path) -> Dossier:
    """Load a dossier (folder path or bundled ticker) through a small LRU cache keyed on the folder and
    its files' mtimes and sizes; an edited file invalidates the entry. Raises :class:`DossierError`."""
    folder = resolve_dossier(None, dossier)
    key = (str(folder), _signature(folder))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    loaded = load_dossier(folder)
    with _lock:
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def clear_dossier_cache() -> None:
    """Forget all cached dossiers."""
    with _lock:
        _cache.clear()


# ---------------------------------------------------------------------------------------------
# Argument schemas
# ---------------------------------------------------------------------------------------------
_DOSSIER_DESC = ("Path to a dossier folder (holding dossier.toml, financials.csv, prices.csv, ...), "
                 "or the ticker of a bundled dossier such as 'MMM'.")
_AS_OF_DESC = "Analysis date YYYY-MM-DD; only data dated on or before it is used. Must lie inside the price data."


class DossierArgs(BaseModel):
    """Arguments of the dossier-based tools."""

    model_config = ConfigDict(extra="forbid")
    dossier: str = Field(min_length=1, description=_DOSSIER_DESC)
    as_of: date = Field(description=_AS_OF_DESC)


class LegalArgs(DossierArgs):
    top_n: int = Field(8, ge=1, le=25, description="How many matters to return, most material first (1-25).")
    readings: list[str] = Field(default_factory=list, max_length=12,
                                description="Readings of retrieved paragraphs, lines '[section ¶n] note: \"quote\"'; "
                                            "their citations are checked against the filing.")


class LegalChunkArgs(DossierArgs):
    chunk: int = Field(ge=1, le=12, description="Which chunk of the retrieved paragraphs (1 = the most relevant).")
    chunks: int = Field(3, ge=1, le=12, description="Into how many chunks the retrieved paragraphs are dealt.")


class ScorecardArgs(BaseModel):
    """Arguments of risk_scorecard: the dict results of the five other tools."""

    model_config = ConfigDict(extra="forbid")
    financials: dict[str, Any] = Field(description="Result of the financial_health tool.")
    legal: dict[str, Any] = Field(description="Result of the legal_matters tool.")
    sentiment: dict[str, Any] = Field(description="Result of the headline_sentiment tool.")
    peers: dict[str, Any] = Field(description="Result of the peer_comparison tool.")
    risk: dict[str, Any] = Field(description="Result of the market_risk tool.")


# ---------------------------------------------------------------------------------------------
# Tool functions (return JSON-ready dicts)
# ---------------------------------------------------------------------------------------------
def _checked(dossier: str, as_of: date) -> Dossier:
    d = load_dossier_cached(dossier)
    check_as_of(d, as_of)
    return d


def _financial_health(dossier: str, as_of: date) -> dict:
    return financial_health(_checked(dossier, as_of), as_of).model_dump(mode="json")


def _legal_matters(dossier: str, as_of: date, top_n: int = 8, readings: list[str] | None = None) -> dict:
    return legal_matters(_checked(dossier, as_of), top_n=top_n, readings=readings or ()).model_dump(mode="json")


def _legal_passages(dossier: str, as_of: date, chunk: int, chunks: int = 3) -> dict:
    return legal_chunk(_checked(dossier, as_of).texts, chunk, chunks).model_dump(mode="json")


def _headline_sentiment(dossier: str, as_of: date) -> dict:
    return headline_sentiment(_checked(dossier, as_of), as_of).model_dump(mode="json")


def _peer_comparison(dossier: str, as_of: date) -> dict:
    return peer_comparison(_checked(dossier, as_of), as_of).model_dump(mode="json")


def _market_risk(dossier: str, as_of: date) -> dict:
    return market_risk(_checked(dossier, as_of), as_of).model_dump(mode="json")


def _parse(field: str, model: type[BaseModel], value: dict, producer: str) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(root)"
        raise ValueError(f"risk_scorecard: field {field!r} is not a {producer} result "
                         f"({exc.error_count()} problems; first: {field}.{where}: {first['msg']})") from None


def _risk_scorecard(financials: dict, legal: dict, sentiment: dict, peers: dict, risk: dict) -> dict:
    return risk_scorecard(
        _parse("financials", FinancialHealth, financials, "financial_health"),
        _parse("legal", LegalReview, legal, "legal_matters"),
        _parse("sentiment", SentimentSummary, sentiment, "headline_sentiment"),
        _parse("peers", PeerComparison, peers, "peer_comparison"),
        _parse("risk", MarketRisk, risk, "market_risk"),
    ).model_dump(mode="json")


def _tool(func: Callable[..., dict], name: str, schema: type[BaseModel], description: str) -> StructuredTool:
    return StructuredTool.from_function(func=func, name=name, args_schema=schema, description=description)


DUE_DILIGENCE_TOOLS: list[BaseTool] = [
    _tool(_financial_health, "financial_health", DossierArgs,
          "Financial health of the target from its 10-K figures for the fiscal years ended before as_of: "
          "revenue growth and CAGR, operating/net/FCF margins, current ratio, debt/equity, liabilities/equity, "
          "interest coverage, free cash flow (USD millions) and red flags with thresholds."),
    _tool(_legal_passages, "legal_passages", LegalChunkArgs,
          "One chunk of the paragraphs of the target's risk factors, legal proceedings and legal note most "
          "relevant to legal and regulatory exposure (BM25 through SQLite FTS5), each with its citation "
          "'section ¶n'; chunk 1 holds the most relevant. Sized for a small model's prompt."),
    _tool(_legal_matters, "legal_matters", LegalArgs,
          "Top legal and regulatory matters in the target's risk factors, legal proceedings and legal note, "
          "ranked by a materiality score (litigation/regulator terms, USD amounts, plaintiff counts, "
          "'material adverse' language); each with its citation 'section ¶n', title, score, amounts in USD "
          "millions and an excerpt; with readings, their citations checked against the filing."),
    _tool(_headline_sentiment, "headline_sentiment", DossierArgs,
          "Bullish/bearish/neutral labels for the target's news headlines (finance lexicon), with counts, "
          "shares and net score; headlines dated after as_of are excluded, undated ones counted separately."),
    _tool(_peer_comparison, "peer_comparison", DossierArgs,
          "Target's P/E, P/S, P/B and EV/EBITDA against its peer group's snapshot: peer median, peer count, "
          "target percentile and premium/discount to the median."),
    _tool(_market_risk, "market_risk", DossierArgs,
          "Market risk of the target's stock over the 5 years to as_of: total and annualised return, volatility, "
          "Sharpe, beta and correlation vs the S&P 500, historical and parametric 1-day VaR, CVaR, max drawdown."),
    _tool(_risk_scorecard, "risk_scorecard", ScorecardArgs,
          "Combine the results of financial_health, legal_matters, headline_sentiment, peer_comparison and "
          "market_risk into a 0-100 risk score, the contributing factors with evidence keys, and a suggested "
          "recommendation: proceed, renegotiate or walk_away."),
]

_BY_NAME = {t.name: t for t in DUE_DILIGENCE_TOOLS}


def tool_names() -> list[str]:
    """Names of the due-diligence tools, in pipeline order."""
    return list(_BY_NAME)


def get_tool(name: str) -> BaseTool:
    """The tool called ``name``; KeyError naming the available tools otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r}; available: {', '.join(_BY_NAME)}") from None
