"""Writing a dossier folder (layout in :mod:`chainproof.tools.dossier`) from its parts, for the
commands that assemble one from filings: ``dossier fetch`` (SEC EDGAR) and ``dossier import``
(the analyst's own documents).

The market data (prices, benchmark, rates, peer multiples) is the analyst's: CSV files in the
dossier's own formats, checked by the dossier loader, whose error is prefixed with the option that
named the file. The folder is written to a temporary sibling, loaded back as a check, and only
then swapped in, so a failed build leaves an earlier dossier as it was.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.dossier import check_as_of
from chainproof.tools.dossier_files import load_dossier
from chainproof.tools.input_files import open_text

__all__ = ["DOSSIER_ENTRIES", "MANIFEST", "MARKET_FILES", "DossierParts", "check_inputs_outside", "check_out_dir",
           "replaced_files",
           "staged_folder", "write_csv", "write_dossier"]

DOSSIER_ENTRIES = frozenset({"dossier.toml", "financials.csv", "prices.csv", "benchmark.csv", "rates.csv",
                             "peers.csv", "headlines.csv", "filings"})
#: market file -> the command-line option that names it
MARKET_FILES = {"prices.csv": "--prices", "benchmark.csv": "--benchmark", "rates.csv": "--rates",
                "peers.csv": "--peers"}
_UNITS = ("financials in USD millions except diluted_eps (USD per share); prices in USD; "
          "peers market_cap and ebitda in USD millions; rf_pct in percent per month")


@dataclass
class DossierParts:
    """What goes into a dossier besides the market files: identity, ``financials`` rows
    ``(fiscal_year, metric, value, source)``, ``headlines`` rows ``(date or None, text, source)``,
    filing ``texts`` (``risk_factors``, ``legal_proceedings``, optional ``legal_note``), the
    ``sources`` (one line each, naming where and when it was retrieved) and ``notes``."""

    ticker: str
    name: str
    sector: str
    fiscal_year_end: str  # "MM-DD"
    as_of: date
    financials: list[tuple[int, str, float, str]] = field(default_factory=list)
    headlines: list[tuple[date | None, str, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a UTF-8 CSV with ``\\n`` line ends."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


MANIFEST = ".chainproof-dossier.json"
"""The file a build writes into its dossier folder: the SHA-256 of every file it wrote, so a later
build knows which files are its own, unchanged (replaced freely) and which are not (the user's)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replaced_files(out: Path) -> list[str]:
    """The files of folder ``out`` (relative paths, sorted) that writing a dossier there would
    replace or delete and that no earlier build wrote as they are now: files a build did not
    write, and files changed since (marked ``(changed)``). Empty when ``out`` does not exist, is
    empty, or holds an earlier build's files unchanged. Raises :class:`DossierError` when ``out``
    is not a folder."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise DossierError(f"--out {out}: a file, not a folder")
    try:
        recorded = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        recorded = {}
    found = []
    for path in sorted(p for p in out.rglob("*") if not p.is_dir()):
        rel = path.relative_to(out).as_posix()
        if rel != MANIFEST and recorded.get(rel) != _digest(path):
            found.append(f"{rel} (changed)" if rel in recorded else rel)
    return found


def check_out_dir(out: Path, *, force: bool = False) -> list[str]:
    """:func:`replaced_files` of ``out``, which must be empty unless ``force``: raises
    :class:`DossierError` naming the first files (and ``--force``) otherwise."""
    replaced = replaced_files(out)
    if replaced and not force:
        shown = ", ".join(replaced[:5]) + (f" and {len(replaced) - 5} more" if len(replaced) > 5 else "")
        raise DossierError(f"--out {out}: holds {len(replaced)} file(s) no dossier build wrote as they are now "
                           f"({shown}); nothing was written; give --force to replace the folder")
    return replaced


def check_inputs_outside(out: str | Path, inputs: Iterable[tuple[str, str | Path]]) -> None:
    """Refuse an ``out`` folder holding one of the command's own input files (``(option, path)``
    pairs): replacing the folder, even with ``--force``, would delete it. Raises
    :class:`DossierError` naming the option and the file; nothing is written or deleted."""
    root = Path(out).expanduser().resolve()
    for option, path in inputs:
        if root in Path(path).expanduser().resolve().parents:
            raise DossierError(f"--out {out}: holds the command's input file {option} {path}, which replacing the folder "
                               "would delete; nothing was written: give an --out folder that holds none of the inputs")


def _write_manifest(folder: Path) -> None:
    files = {p.relative_to(folder).as_posix(): _digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf-8")


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write into; when the block ends without an error it
    replaces ``out``, else it is deleted and ``out`` stays as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        _write_manifest(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def dossier_toml(*, ticker: str, name: str, sector: str, fiscal_year_end: str, as_of: date, peer_date: date,
                 sources: Sequence[str], notes: Sequence[str]) -> str:
    """The text of a dossier's ``dossier.toml`` (the format :func:`chainproof.tools.dossier_files.load_dossier`
    reads): identity, currency and ``_UNITS``, fiscal year end (``MM-DD``), ``as_of`` and the peer
    snapshot date, every source, and the notes joined as sentences (empty when there are none)."""
    return "\n".join([
        f"ticker = {json.dumps(ticker)}",
        f"name = {json.dumps(name, ensure_ascii=False)}",
        f"sector = {json.dumps(sector, ensure_ascii=False)}",
        'currency = "USD"',
        f"units = {json.dumps(_UNITS)}",
        f"fiscal_year_end = {json.dumps(fiscal_year_end)}",
        f"as_of = {as_of.isoformat()}",
        f"peer_snapshot_date = {peer_date.isoformat()}",
        "sources = [\n" + "".join(f"  {json.dumps(x, ensure_ascii=False)},\n" for x in sources) + "]",
        f"notes = {json.dumps('. '.join(n.rstrip('.') for n in notes) + '.' if notes else '', ensure_ascii=False)}",
    ]) + "\n"


def _market_source(option: str, path: Path) -> str:
    return f"{MARKET_FILES_BY_OPTION[option]}: analyst's file {path} ({option})"


MARKET_FILES_BY_OPTION = {v: k for k, v in MARKET_FILES.items()}


def write_dossier(parts: DossierParts, market: Mapping[str, Path], out_dir: str | Path, *, force: bool = False) -> Path:
    """Write ``parts`` and the analyst's ``market`` files (``{"prices.csv": path, ...}``, all four
    of :data:`MARKET_FILES`) into ``out_dir``; returns its resolved path.

    Raises :class:`DossierError`: a market file missing or invalid (named with its option, e.g.
    ``--peers FILE: peers.csv line 3: ...``), a required filing text absent, or an ``out_dir``
    holding files no build wrote as they are now (unless ``force``, see :func:`check_out_dir`), or
    prices that do not cover ``parts.as_of`` (:func:`chainproof.tools.dossier.check_as_of`)."""
    out = Path(out_dir).expanduser().resolve()
    check_out_dir(out, force=force)
    missing = [f"{opt} FILE" for name, opt in MARKET_FILES.items() if name not in market]
    if missing:
        raise DossierError(f"market data missing: {', '.join(missing)} (the dossier needs the target's daily "
                           "prices, the benchmark's, monthly risk-free rates and peer multiples)")
    for name, path in market.items():
        if not Path(path).is_file():
            raise DossierError(f"{MARKET_FILES[name]} {path}: file not found")
    check_inputs_outside(out, ((MARKET_FILES[name], path) for name, path in market.items()))
    with staged_folder(out) as tmp:
        (tmp / "filings").mkdir()
        for name, path in market.items():
            shutil.copyfile(path, tmp / name)
        write_csv(tmp / "financials.csv", ("fiscal_year", "metric", "value", "source"),
                  [(fy, m, format(v, ".12g"), s) for fy, m, v, s in parts.financials])
        write_csv(tmp / "headlines.csv", ("date", "headline", "source"),
                  [(d.isoformat() if d else "", text, src) for d, text, src in parts.headlines])
        for key, text in parts.texts.items():
            (tmp / "filings" / f"{key}.txt").write_text(text, encoding="utf-8")
        sources = [*parts.sources, *(_market_source(MARKET_FILES[n], Path(p)) for n, p in market.items())]
        peer_date = _peer_date(tmp / "peers.csv", parts.as_of)
        toml = dossier_toml(ticker=parts.ticker, name=parts.name, sector=parts.sector,
                            fiscal_year_end=parts.fiscal_year_end, as_of=parts.as_of, peer_date=peer_date,
                            sources=sources, notes=parts.notes)
        (tmp / "dossier.toml").write_text(toml, encoding="utf-8")
        try:
            dossier = load_dossier(tmp)
        except DossierError as exc:
            option = next((MARKET_FILES[n] for n in MARKET_FILES if str(exc).startswith(n)), None)
            raise DossierError(f"{option} {market[MARKET_FILES_BY_OPTION[option]]}: {exc}" if option else str(exc)) from None
        try:  # a dossier whose prices do not reach its as_of could never be analysed: say so now
            check_as_of(dossier, parts.as_of)
        except DossierError as exc:
            raise DossierError(f"--prices {market['prices.csv']} does not cover --as-of: {exc}") from None
    return out


def _peer_date(peers: Path, as_of: date) -> date:
    """The snapshot date of the analyst's peer multiples: ``as_of`` (they are the analyst's view as
    of the dossier's date; a ``snapshot_date`` column, when the file has one, wins)."""
    rows = csv.DictReader(open_text(peers, "--peers", "utf-8-sig"))
    dates = {(row.get("snapshot_date") or "").strip() for row in rows} - {""}
    try:
        return max(date.fromisoformat(d) for d in dates) if dates else as_of
    except ValueError:
        raise DossierError(f"--peers {peers.name}: snapshot_date {sorted(dates)[0]!r} is not a date (expected YYYY-MM-DD)") from None
