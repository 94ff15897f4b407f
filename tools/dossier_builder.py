"""Build a dossier folder (see :mod:`chainproof.tools.dossier`) from a data bundle laid out like the shared
``data/`` bundle::

    sec_10k_filings/{manifest.csv, key_financials.csv, statement_lines.csv, sections/<DOC>/*.txt}
    market_prices/{daily_ohlcv_targets_and_peers_*.csv, daily_close_all_sp500_*.csv.gz, peer_groups.csv}
    market_index_and_rates/{sp500_index_daily_*.csv, fama_french_3factor_monthly_*.csv}
    industry_comparison/sp500_constituents_financials_snapshot_<YYYY-MM-DD>.csv
    news_sentiment/twitter_financial_news_sentiment/subset_mentions_of_12_target_companies.csv

Usage: ``build_dossier(bundle_root, "MMM", date(2018, 2, 8), out_dir)`` or
``python -m chainproof.tools.dossier_builder BUNDLE TICKER AS_OF OUT [--paraphrase-texts --paraphrase-source DIR]``.

Rules (all documented where they are applied):

* **Which 10-Ks**: a 10-K counts as available when its fiscal year ended more than ``filing_lag_days``
  (default 0) before ``as_of``. The bundle has no filing dates; with the default, the FY2017 10-Ks count
  as known on 2018-02-08 (the bundle's suggested demo). The last ``n_years`` (3) fiscal years of the
  latest available 10-K are used, e.g. FY2015-FY2017 for as_of 2018-02-08. A year reported by two
  available filings takes the later (possibly restated) filing.
* **Financials**: ``key_financials.csv`` (``net_income_attributable`` -> ``net_income``;
  ``total_liabilities`` derived as total assets - total equity when the filing prints no total) plus
  label rules over the balance sheet/income statement rows of ``statement_lines.csv`` for
  current assets/liabilities, total debt and interest expense (see ``_LABEL_RULES`` in :mod:`chainproof.tools.data_bundle`). Values in
  thousands (MGM) are converted to millions.
* **Prices**: the target's daily closes dated <= as_of; benchmark = S&P 500 index closes over the same
  span; rates = Fama-French monthly RF for the months from the first price through the last month that
  ended before as_of.
* **Peers**: ``peer_groups.csv`` + the latest snapshot dated <= as_of (else the earliest, flagged in the
  notes). EV/EBITDA only where computable: for the target, EV = market cap + total debt - cash (latest
  fiscal year in the dossier) over the snapshot EBITDA (> 0); peers have no debt/cash data here.
* **Headlines**: the twitter-financial-news subset rows that mention the ticker; undated (empty date).
* **Filings**: sections of the latest available 10-K copied from ``sections/<DOC>/`` -- or, with
  ``paraphrase_texts=True``, hand-written statements of the facts taken from ``paraphrase_source``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

from chainproof.tools.data_bundle import (
    annual_filings,
    filing_financials,
    glob_latest,
    need_file,
    peer_snapshot,
    prices_by_ticker,
    read_rows,
)
from chainproof.tools.dossier import DossierError, load_dossier
from chainproof.tools.dossier_writer import check_out_dir, dossier_toml, staged_folder, write_csv

__all__ = ["build_dossier", "MMM_EXTRA_FINANCIALS", "build_bundled_mmm", "main"]

#: Interest expense of 3M is not on the face of its income statement (it sits inside "Other expense
#: (income), net"); these are the figures of that note table in the FY2017 10-K (Note 5, PDF page 82).
MMM_EXTRA_FINANCIALS: tuple[tuple[int, str, float, str], ...] = (
    (2017, "interest_expense", 322.0, "3M_2017_10K p.82 Note 5 Other expense (income), net: Interest expense"),
    (2016, "interest_expense", 199.0, "3M_2017_10K p.82 Note 5 Other expense (income), net: Interest expense"),
    (2015, "interest_expense", 149.0, "3M_2017_10K p.82 Note 5 Other expense (income), net: Interest expense"),
)

_SECTION_FILES = {"risk_factors": "item1a_risk_factors.txt", "legal_proceedings": "item3_legal_proceedings.txt",
                  "legal_note": "legal_contingencies_note.txt"}
_TWITTER_SUBSET = "news_sentiment/twitter_financial_news_sentiment/subset_mentions_of_12_target_companies.csv"


def _fmt(v: float) -> str:
    return format(v, ".12g")


def build_dossier(bundle_root: str | Path, ticker: str, as_of: date, out_dir: str | Path, *,
                  paraphrase_texts: bool = False, paraphrase_source: str | Path | None = None,
                  n_years: int = 3, filing_lag_days: int = 0,
                  extra_financials: Iterable[tuple[int, str, float, str]] = (), force: bool = False) -> Path:
    """Build the dossier of ``ticker`` as of ``as_of`` from the bundle at ``bundle_root`` into ``out_dir``.

    ``paraphrase_texts=False`` copies the latest available 10-K's sections and the tagged headlines
    verbatim (fine for a user's own folder). ``paraphrase_texts=True`` instead takes
    ``filings/*.txt`` and ``headlines.csv`` from ``paraphrase_source`` (default: the existing
    ``out_dir``), i.e. hand-written statements of the facts, and says so in ``dossier.toml``.
    ``extra_financials``: (fiscal_year, metric, value USD m, source) rows added where the bundle has
    none (e.g. :data:`MMM_EXTRA_FINANCIALS`). The folder is written to a temporary sibling and
    swapped in at the end, then re-loaded with :func:`chainproof.tools.dossier.load_dossier` as a check.
    ``out_dir`` may already exist only if it is empty or holds an earlier build's files unchanged
    (it is then replaced), unless ``force``
    (:func:`chainproof.tools.dossier_writer.check_out_dir`: a user's file is never lost unasked).
    Raises :class:`DossierError` for a missing bundle file, an unknown ticker or an unusable out_dir.
    Returns the resolved ``out_dir``.
    """
    bundle = Path(bundle_root).expanduser().resolve()
    out = Path(out_dir).expanduser().resolve()
    ticker = ticker.strip().upper()
    check_out_dir(out, force=force)
    para_src = Path(paraphrase_source).expanduser().resolve() if paraphrase_source else out
    if paraphrase_texts:
        for rel in ("filings/risk_factors.txt", "filings/legal_proceedings.txt", "headlines.csv"):
            if not (para_src / rel).is_file():
                raise DossierError(f"paraphrase_texts=True needs hand-written {rel} in {para_src}")

    # ---- prices (target must exist) --------------------------------------------------------
    mp = need_file(bundle / "market_prices")
    by_ticker = prices_by_ticker(glob_latest(mp, "daily_ohlcv_targets_and_peers_*.csv"))
    series = by_ticker.get(ticker)
    price_source = "market_prices/daily_ohlcv_targets_and_peers (close; CNuge/kaggle-code, MIT; data provided by IEX)"
    if series is None:
        all_path = next(iter(sorted(mp.glob("daily_close_all_sp500_*.csv.gz"))), None)
        series = prices_by_ticker(all_path).get(ticker) if all_path else None
        price_source = "market_prices/daily_close_all_sp500 (close; CNuge/kaggle-code, MIT; data provided by IEX)"
    if not series:
        raise DossierError(f"data bundle: no prices for ticker {ticker!r} in {mp}")
    prices = sorted((d, c) for d, c in series if date.fromisoformat(d) <= as_of)
    if not prices:
        raise DossierError(f"data bundle: no {ticker} prices on or before {as_of.isoformat()} "
                           f"(data start {min(d for d, _ in series)})")
    first_day = date.fromisoformat(prices[0][0])

    idx_path = glob_latest(need_file(bundle / "market_index_and_rates"), "sp500_index_daily_*.csv")
    bench = []
    for r in read_rows(idx_path):
        d = datetime.strptime(r["Date"], "%m/%d/%Y").date()
        if first_day <= d <= as_of:
            bench.append((d.isoformat(), r["Close"]))
    bench.sort()
    ff_path = glob_latest(bundle / "market_index_and_rates", "fama_french_3factor_monthly_*.csv")
    rates = []
    for r in read_rows(ff_path):
        ym = r["Date"].strip()
        y, m = int(ym[:4]), int(ym[4:6])
        month_end = date(y + (m == 12), m % 12 + 1, 1)  # first day of next month
        if (y, m) >= (first_day.year, first_day.month) and month_end <= as_of:
            rates.append((f"{y:04d}-{m:02d}", r["RF"].strip()))

    # ---- filings and financials ------------------------------------------------------------
    all_docs = annual_filings(bundle, ticker)
    docs = [d for d in all_docs if (as_of - d.fye).days > filing_lag_days]
    extra_financials = tuple(extra_financials)
    fin = filing_financials(bundle, ticker, docs, n_years, extra_financials)
    latest = docs[-1] if docs else None

    # ---- peers -------------------------------------------------------------------------------
    snap_date, snap_path = peer_snapshot(bundle, as_of)
    snap = {r["Symbol"].strip(): r for r in read_rows(snap_path)}
    if ticker not in snap:
        raise DossierError(f"data bundle: {ticker} is not in {snap_path.name}")
    peer_list = [r["peer_ticker"].strip() for r in read_rows(need_file(mp / "peer_groups.csv"))
                 if r["target_ticker"].strip() == ticker]
    fin_map = {(fy, m): v for fy, m, v, _ in fin}
    notes: list[str] = []

    def num(raw: str, scale: float = 1.0) -> str:
        raw = (raw or "").strip()
        return _fmt(float(raw) * scale) if raw else ""

    peer_rows = []
    for t in [ticker] + peer_list:
        s = snap.get(t)
        if s is None:
            notes.append(f"peer {t} is not in the {snap_date.isoformat()} snapshot; left out")
            continue
        ev_ebitda = ""
        if t == ticker:
            fys = [fy for fy in sorted({k[0] for k in fin_map}) if (fy, "total_debt") in fin_map
                   and (fy, "cash_and_equivalents") in fin_map]
            ebitda = float(s["EBITDA"]) / 1e6 if s["EBITDA"].strip() else 0.0
            if fys and ebitda > 0 and s["Market Cap"].strip():
                fy = fys[-1]
                ev = float(s["Market Cap"]) / 1e6 + fin_map[(fy, "total_debt")] - fin_map[(fy, "cash_and_equivalents")]
                ev_ebitda = _fmt(round(ev / ebitda, 4))
                notes.append(f"target EV/EBITDA = (snapshot market cap + FY{fy} total debt - FY{fy} cash) / snapshot EBITDA")
        peer_rows.append([t, s["Name"].strip(), s["Sector"].strip(), num(s["Price"]), num(s["Price/Earnings"]),
                          num(s["Price/Sales"]), num(s["Price/Book"]), ev_ebitda, num(s["Market Cap"], 1e-6),
                          num(s["EBITDA"], 1e-6), "true" if t == ticker else "false"])
    if snap_date > as_of:
        notes.append(f"peer snapshot {snap_date.isoformat()} is dated after as_of (no earlier snapshot in the bundle)")

    # ---- headlines -----------------------------------------------------------------------------
    headlines = []
    sub = bundle / _TWITTER_SUBSET
    if not paraphrase_texts and sub.is_file():
        for r in read_rows(sub):
            if ticker in r["matched_tickers"].split(";"):
                headlines.append(["", r["text"], f"twitter-financial-news-sentiment {r['split']} row {r['row_index']} (MIT)"])

    # ---- write to a temporary sibling, then swap ---------------------------------------------
    with staged_folder(out) as tmp:
        (tmp / "filings").mkdir()
        if paraphrase_texts:
            for rel in ("filings/risk_factors.txt", "filings/legal_proceedings.txt", "filings/legal_note.txt",
                        "headlines.csv"):
                if (para_src / rel).is_file():
                    shutil.copyfile(para_src / rel, tmp / rel)
        else:
            write_csv(tmp / "headlines.csv", ("date", "headline", "source"), headlines)
            for key, fname in _SECTION_FILES.items():
                src = bundle / "sec_10k_filings" / "sections" / latest.name / fname if latest else None
                if src is not None and src.is_file():
                    shutil.copyfile(src, tmp / "filings" / f"{key}.txt")
                elif key != "legal_note":
                    (tmp / "filings" / f"{key}.txt").write_text(
                        f"No 10-K of {ticker} for a fiscal year ending before {as_of.isoformat()} is in the data bundle.\n",
                        encoding="utf-8")
        write_csv(tmp / "financials.csv", ("fiscal_year", "metric", "value", "source"),
                   [(fy, m, _fmt(v), s) for fy, m, v, s in fin])
        write_csv(tmp / "prices.csv", ("date", "close"), prices)
        write_csv(tmp / "benchmark.csv", ("date", "close"), bench)
        write_csv(tmp / "rates.csv", ("month", "rf_pct"), rates)
        write_csv(tmp / "peers.csv", ("ticker", "name", "sector", "price", "pe", "ps", "pb", "ev_ebitda",
                                       "market_cap", "ebitda", "is_target"), peer_rows)

        doc_txt = latest.name if latest else "no available 10-K"
        if latest is None:
            notes.append(f"no 10-K with a fiscal year ending before {as_of.isoformat()}: financials.csv is empty "
                         f"(bundle has: {', '.join(d.name for d in all_docs) or 'none'})")
        if paraphrase_texts:
            notes.insert(0, f"filings/*.txt and headlines.csv are our own short statements of the facts in {doc_txt} "
                            "and in the tagged headlines; no filing or news text is copied. Numbers are facts "
                            "from the sources. Headlines are undated")
        else:
            notes.insert(0, (f"filings/*.txt are sections of {doc_txt} copied from the SEC filing text (pdftotext)"
                             if latest else "filings/*.txt are placeholders (no 10-K available)")
                         + "; headlines.csv rows are copied from twitter-financial-news-sentiment and are undated")
        extra_used = sorted({m for fy, m, v, src in fin if any(src == e[3] for e in extra_financials)})
        if extra_used:
            notes.append(f"{', '.join(extra_used)} added from the filing notes (not on the statement face)")
        if headlines or paraphrase_texts:
            notes.append("the tagged headlines date from about 2019-2020 (per the dataset card), so they may "
                         "post-date as_of")
        notes.append(f"10-K availability: fiscal year ended more than {filing_lag_days} days before as_of "
                     "(the bundle has no filing dates)")
        sources = [
            f"financials.csv: sec_10k_filings/key_financials.csv and statement_lines.csv ({doc_txt}; "
            "SEC public filings via patronus-ai/financebench PDFs)",
            f"prices.csv: {price_source}",
            f"benchmark.csv: market_index_and_rates/{idx_path.name} (S&P 500 index; arch package data, NCSA)",
            f"rates.csv: market_index_and_rates/{ff_path.name} (Fama-French RF, percent per month; Ken French Data Library via arch)",
            f"peers.csv: market_prices/peer_groups.csv + industry_comparison/{snap_path.name} (datahub, ODC-PDDL)",
            "headlines.csv: " + ("hand-written paraphrases of twitter-financial-news-sentiment headlines (MIT)"
                                 if paraphrase_texts else "news_sentiment/twitter_financial_news_sentiment subset (MIT)"),
            "filings/: " + (f"hand-written statements of the facts in {doc_txt}" if paraphrase_texts
                            else f"sec_10k_filings/sections/{doc_txt}/"),
        ]
        s = snap[ticker]
        fye = latest.fye.strftime("%m-%d") if latest else "12-31"
        toml = dossier_toml(ticker=ticker, name=s["Name"].strip(), sector=s["Sector"].strip(), fiscal_year_end=fye,
                            as_of=as_of, peer_date=snap_date, sources=sources, notes=notes)
        (tmp / "dossier.toml").write_text(toml, encoding="utf-8")
        load_dossier(tmp)  # validate what we wrote before swapping it in
    return out


def build_bundled_mmm(bundle_root: str | Path, out_dir: str | Path | None = None) -> Path:
    """Rebuild the shipped example ``tools/dossiers/MMM`` (3M as of 2018-02-08) in place, keeping its
    hand-written filing statements and headlines (``paraphrase_texts=True``)."""
    target = Path(out_dir) if out_dir else Path(__file__).resolve().parent / "dossiers" / "MMM"
    return build_dossier(bundle_root, "MMM", date(2018, 2, 8), target, paraphrase_texts=True,
                         extra_financials=MMM_EXTRA_FINANCIALS)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m chainproof.tools.dossier_builder BUNDLE TICKER AS_OF OUT [--paraphrase-texts]``."""
    ap = argparse.ArgumentParser(prog="python -m chainproof.tools.dossier_builder", description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("ticker")
    ap.add_argument("as_of", type=date.fromisoformat)
    ap.add_argument("out", type=Path)
    ap.add_argument("--paraphrase-texts", action="store_true")
    ap.add_argument("--paraphrase-source", type=Path)
    ap.add_argument("--filing-lag-days", type=int, default=0)
    args = ap.parse_args(argv)
    extra = MMM_EXTRA_FINANCIALS if args.ticker.upper() == "MMM" else ()
    try:
        path = build_dossier(args.bundle, args.ticker, args.as_of, args.out, paraphrase_texts=args.paraphrase_texts,
                             paraphrase_source=args.paraphrase_source, filing_lag_days=args.filing_lag_days,
                             extra_financials=extra)
    except DossierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
