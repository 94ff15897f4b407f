"""Dossiers, the input folders of due-diligence runs: ``dossier build`` (from a data bundle),
``dossier fetch`` (from SEC EDGAR) and ``dossier import`` (from the analyst's own 10-K/10-Q files)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import console, dossier_app
from chainproof.errors import InputError

_MARKET_HELP = {
    "prices": "CSV 'date,close': the company's daily closes (USD).",
    "benchmark": "CSV 'date,close': the benchmark's daily closes (e.g. the S&P 500).",
    "rates": "CSV 'month,rf_pct': monthly risk-free rate in percent per month (YYYY-MM).",
    "peers": "CSV 'ticker,name,sector,price,pe,ps,pb,ev_ebitda,market_cap,ebitda,is_target' (one row is_target=true).",
}
PricesOpt = Annotated[Optional[Path], typer.Option(help=_MARKET_HELP["prices"])]
BenchmarkOpt = Annotated[Optional[Path], typer.Option(help=_MARKET_HELP["benchmark"])]
RatesOpt = Annotated[Optional[Path], typer.Option(help=_MARKET_HELP["rates"])]
PeersOpt = Annotated[Optional[Path], typer.Option(help=_MARKET_HELP["peers"])]
ForceOpt = Annotated[bool, typer.Option(help="Replace an --out folder that holds files no dossier build wrote "
                                             "as they are now (they are listed first).")]


def _out_checked(out: Path, force: bool) -> None:
    """Refuse an ``--out`` folder holding the user's files unless ``force``; with it, list them."""
    from chainproof.tools.dossier_writer import check_out_dir

    replaced = check_out_dir(out.expanduser().resolve(), force=force)
    if replaced:
        cli.err.print(f"--force: replacing {out} and {len(replaced)} file(s) no build wrote as they are now: "
                      + ", ".join(replaced), highlight=False, soft_wrap=True)


def _as_of(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of: expected a date as YYYY-MM-DD, got {value!r}") from None


def _market(prices: Path | None, benchmark: Path | None, rates: Path | None, peers: Path | None) -> dict[str, Path]:
    given = {"prices.csv": prices, "benchmark.csv": benchmark, "rates.csv": rates, "peers.csv": peers}
    return {k: v for k, v in given.items() if v is not None}


@dossier_app.command("build")
def dossier_build(
    bundle: Annotated[Path, typer.Option(help="Root of a data bundle laid out like the public data set described in the README (sec_10k_filings/, market_prices/, ...).")],
    ticker: Annotated[str, typer.Option(help="Company ticker.")],
    as_of: Annotated[str, typer.Option("--as-of", help="YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="Folder to write the dossier into.")],
    force: ForceOpt = False,
) -> None:
    """Build a dossier folder for a company from a data bundle."""
    from chainproof.tools.dossier_builder import build_dossier

    when = _as_of(as_of)
    cli.store_settings()  # input_file_max_mb for the bundle's files
    _out_checked(out, force)
    path = build_dossier(bundle, ticker.upper(), when, out, force=force)
    console.print(f"dossier written to {path}")


@dossier_app.command("fetch")
def dossier_fetch(
    ticker: Annotated[str, typer.Option(help="Company ticker, as EDGAR's company_tickers.json lists it.")],
    as_of: Annotated[str, typer.Option("--as-of", help="YYYY-MM-DD: only filings filed on or before this date are used.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder to write the dossier into (default: ./dossiers/TICKER-AS_OF).")] = None,
    prices: PricesOpt = None, benchmark: BenchmarkOpt = None, rates: RatesOpt = None, peers: PeersOpt = None,
    refresh: Annotated[bool, typer.Option(help="Download again what the EDGAR cache already holds.")] = False,
    force: ForceOpt = False,
) -> None:
    """Build a dossier from SEC EDGAR (needs CHAINPROOF_SEC_USER_AGENT='Name email')."""
    from chainproof.tools.dossier_writer import MARKET_FILES, check_inputs_outside
    from chainproof.tools.edgar_fetch import check_user_agent, fetch_dossier

    s = cli.settings()
    check_user_agent(s.sec_user_agent)  # before anything else: say why it is needed
    when = _as_of(as_of)
    target = out or Path("dossiers") / f"{ticker.upper()}-{when.isoformat()}"
    market = _market(prices, benchmark, rates, peers)
    check_inputs_outside(target, ((MARKET_FILES[n], p) for n, p in market.items()))  # before --force lists them
    _out_checked(target, force)
    summary: list[str] = []
    path = fetch_dossier(ticker, when, target, market, user_agent=s.sec_user_agent, cache_dir=s.home / "edgar",
                         refresh=refresh, force=force, summary=summary)
    for line in summary:  # what the dossier lacks (an empty financials.csv)
        console.print(line, highlight=False)
    console.print(f"dossier written to {path}", highlight=False)


@dossier_app.command("import")
def dossier_import(
    ticker: Annotated[str, typer.Option(help="Company ticker.")],
    tenk: Annotated[Path, typer.Option("--10k", help="The 10-K: EDGAR HTML (inline XBRL or not) or text (e.g. pdftotext output).")],
    tenq: Annotated[Optional[list[Path]], typer.Option("--10q", help="A later 10-Q (repeatable); its Part II legal proceedings and risk-factor updates are appended.")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (default: the last price's date).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Company name (default: the 10-K's cover page).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder to write the dossier into (default: ./dossiers/TICKER).")] = None,
    prices: PricesOpt = None, benchmark: BenchmarkOpt = None, rates: RatesOpt = None, peers: PeersOpt = None,
    headlines: Annotated[Optional[Path], typer.Option(help="News headlines CSV: date,headline[,source] (date may be empty).")] = None,
    force: ForceOpt = False,
) -> None:
    """Build a dossier from the analyst's own 10-K (and 10-Q) documents and market CSVs."""
    from chainproof.tools.dossier_import import import_dossier, input_files
    from chainproof.tools.dossier_writer import check_inputs_outside

    target = out or Path("dossiers") / ticker.upper()
    when = _as_of(as_of) if as_of else None
    cli.store_settings()  # input_file_max_mb for the documents and market files
    market = _market(prices, benchmark, rates, peers)
    check_inputs_outside(target, input_files(tenk, list(tenq or ()), market, headlines))  # before --force lists them
    _out_checked(target, force)
    summary: list[str] = []
    path = import_dossier(ticker, tenk, list(tenq or ()), market, target,
                          as_of=when, name=name, headlines=headlines, force=force, summary=summary)
    for line in summary:  # what each 10-Q added, or that it had nothing for a part
        console.print(line, highlight=False)
    console.print(f"dossier written to {path}", highlight=False)
