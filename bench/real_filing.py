"""Real-filing benchmark: a due-diligence run on 3M's FY2017 10-K with the embedded model.

Builds 3M's dossier as of 2018-02-08 from the shared bundle (``../shared/data``: the FY2017 10-K's
Item 1A, Item 3 and contingencies note as the filing states them, figures, prices), runs the
``due-diligence`` graph on it with the embedded model (Qwen2.5-Coder-1.5B through llama.cpp; the
``[local]`` extra) up to its approval pause, and prints from the run's audit record:

* tokens read (input tokens), output tokens, model calls and wall time of the **legal/risk part**
  (the map steps that read the retrieved paragraphs, ``legal_read_*``, and the legal step) and of
  the **whole run**; target: the whole run under 10 minutes on 2 cores (issue 15);
* **recall** of a hand-made list of 3M's material legal matters in FY2017 (:data:`MATTERS`, from
  the contingencies note of the 10-K; each matter is named by words any mention of it uses): the
  share of matters named by the legal finding (its summary and the matters it ranks) and, apart,
  by the model's readings whose citations hold.

``--home DIR`` keeps the run's store for ``chainproof show`` / ``replay`` afterwards.

Usage: ``python bench/real_filing.py [--bundle DIR] [--home DIR] [--json]`` (about 10 minutes on 2 cores; never in CI).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from chainproof.agents.config import LocalModelSettings
from chainproof.agents.local_weights import local_model_path
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step
from chainproof.settings import Settings
from chainproof.tools.dossier_builder import build_dossier

BUNDLE = Path(__file__).resolve().parents[2] / "shared" / "data"
AS_OF = date(2018, 2, 8)
TARGET_S = 600.0
#: 3M's material legal matters in its FY2017 10-K (contingencies note), each with the words that name it
MATTERS: dict[str, tuple[str, ...]] = {
    "respirator mask / asbestos litigation": ("respirator", "asbestos"),
    "Aearo Technologies' respirator liabilities": ("aearo",),
    "Minnesota's natural resource damages suit over PFCs": ("minnesota", "natural resource"),
    "PFC contamination and remediation (Decatur, Cottage Grove, EPA)": ("pfc", "pfas", "pfoa", "pfos", "perfluor",
                                                                        "decatur", "cottage grove"),
    "Bair Hugger warming blanket product liability": ("bair hugger",),
    "Lava Ultimate dental crown claims": ("lava ultimate", "lava"),
    "West Virginia Attorney General's respirator suit": ("west virginia",),
}


def recall(text: str) -> tuple[float, list[str]]:
    """The share of :data:`MATTERS` that ``text`` names, and the names found."""
    low = text.lower()
    found = [name for name, words in MATTERS.items() if any(w in low for w in words)]
    return round(len(found) / len(MATTERS), 3), found


def _part(steps: list[Step], calls: list[ModelCallRecord], legal: set[int]) -> dict[str, Any]:
    mine = [c for c in calls if c.step_no in legal]
    return {"input_tokens": sum(c.input_tokens for c in mine), "output_tokens": sum(c.output_tokens for c in mine),
            "model_calls": len(mine), "seconds": round(sum(s.duration_s or 0.0 for s in steps if s.step_no in legal), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE, help="the shared data bundle (default ../shared/data)")
    parser.add_argument("--home", type=Path, help="keep the run's store here (CHAINPROOF_HOME) to inspect it "
                                                   "afterwards with chainproof show/replay; default: a temporary one")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if not (args.bundle / "sec_10k_filings").is_dir():
        print(f"data bundle not found: {args.bundle} (give --bundle)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_dossier(args.bundle, "MMM", AS_OF, Path(tmp) / "MMM")
        local = LocalModelSettings(gguf_path=local_model_path())  # the default cache's file, not a copy per run
        home = args.home.expanduser().resolve() if args.home else Path(tmp) / "home"
        with Chainproof(Settings(home=home, local=local)) as app:
            started = time.perf_counter()
            run = app.start("due-diligence", {"company": "MMM", "as_of": AS_OF.isoformat(), "dossier": str(folder)},
                            cache=False)
            wall = round(time.perf_counter() - started, 1)
            steps = app.audit.records_of(run.run_id, Step)
            calls = app.audit.records_of(run.run_id, ModelCallRecord)
            legal_steps = {s.step_no for s in steps if str((s.inputs or {}).get("plan_step", "")).startswith("legal")}
            parts = {"whole_run": {**_part(steps, calls, {s.step_no for s in steps}), "seconds": wall},
                     "legal_part": _part(steps, calls, legal_steps)}
    legal = (run.state.get("findings") or {}).get("legal") or {}
    data = legal.get("data") or {}
    finding_text = " ".join([legal.get("summary", ""), *(m.get("title", "") + " " + m.get("excerpt", "")
                                                         for m in data.get("matters", []))])
    readings = " ".join(r.get("note", "") + " " + r.get("quote", "") for r in data.get("readings", []) if r.get("holds"))
    found_recall, found = recall(finding_text)
    read_recall, read = recall(readings)
    results = {
        "status": run.status, "wall_s": wall, "target_s": TARGET_S, "meets_target": wall < TARGET_S,
        **parts, "legal_steps": sorted(legal_steps),
        "recall_legal_finding": found_recall, "matters_found": found,
        "recall_readings": read_recall, "matters_in_readings": read,
        "readings_holding": sum(1 for r in data.get("readings", []) if r.get("holds")),
        "readings_refused": sum(1 for r in data.get("readings", []) if not r.get("holds")),
        "refused_why": dict(Counter(r.get("problem") for r in data.get("readings", []) if not r.get("holds"))),
        "run_id": run.run_id, "matters": list(MATTERS)}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"3M FY2017 10-K, due diligence as of {AS_OF} with the embedded model: {run.status} in {wall} s\n")
    print("| part | input tokens | output tokens | model calls | seconds |")
    print("|---|---|---|---|---|")
    for name, key in (("legal/risk (map steps + legal step)", "legal_part"), ("whole run", "whole_run")):
        p = results[key]
        print(f"| {name} | {p['input_tokens']:,} | {p['output_tokens']:,} | {p['model_calls']} | {p['seconds']} |")
    print(f"\nWhole run under {TARGET_S:.0f} s: {'yes' if results['meets_target'] else 'NO'}")
    print(f"Recall of {len(MATTERS)} hand-listed material matters: legal finding {found_recall:.2f} ({', '.join(found)}); "
          f"readings with holding citations {read_recall:.2f} ({results['readings_holding']} hold, "
          f"{results['readings_refused']} refused: {results['refused_why']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
