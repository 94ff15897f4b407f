"""Effort routing and the reasoning cache on the due-diligence graph: tokens and USD.

    python bench/effort_cost.py [--json]

Runs the due-diligence graph on the bundled 3M dossier (as of 2018-02-08) three times against one
fresh audit store, each until it pauses for approval (every model step of the chain has run):

1. **routed** — the routing policy decides each step's effort (static efforts of the plan steps,
   rules, complexity), reasoning cache on and empty;
2. **all high** — ``effort_override="high"`` for every step, cache off (steps whose routed effort
   was already high would otherwise be answered from run 1's cache);
3. **routed again** — the same input as (1): every model step is answered by the reasoning cache.

Models are scripted (:class:`chainproof.agents.scripted.ScriptedChatModel`, one per effort) and report OpenAI-
shaped ``usage_metadata``: input tokens = prompt characters / 4, output tokens = answer
characters / 4 plus reasoning tokens, and reasoning tokens scaled by effort (:data:`REASONING`:
low 0, medium 256, high 1024 — the shape of o-series usage, not a measurement). Costs use the
shipped price of ``gpt-4o-mini`` (``agents/pricing.py``, source and date there) for every call.
Target: routing cuts total tokens against all-high; the second routed run makes no model call.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.costs import cost_report
from chainproof.settings import Settings

INPUTS = {"company": "MMM", "as_of": "2018-02-08"}
MODEL = "gpt-4o-mini"
REASONING = {"low": 0, "medium": 256, "high": 1024}
REVIEW = json.dumps({"decision": "continue", "reason": "The plan still serves the goal.", "drift": "none"})
DECISION = json.dumps({
    "decision": "proceed", "confidence": 0.7, "summary": "Healthy margins, contained legal exposure, moderate market risk.",
    "reasons": [{"text": "Interest coverage is high and free cash flow is positive.", "evidence": ["financials"]},
                {"text": "Market risk is moderate relative to the benchmark.", "evidence": ["market_risk"]}]})


def _answer(messages: list[BaseMessage]) -> str:
    prompt = str(messages[-1].content)
    if "Review the run against its ORIGINAL goal" in prompt:
        return REVIEW
    if "Recommend one decision" in prompt:
        return DECISION
    return "The figures are as the tool reports them; nothing is computed here. " * 2


def scripted(effort: str) -> ScriptedChatModel:
    """A model answering every prompt, with usage whose reasoning tokens scale with ``effort``."""

    def reply(messages: list[BaseMessage]) -> AIMessage:
        text = _answer(messages)
        n_in = sum(len(str(m.content)) for m in messages) // 4
        reasoning = REASONING[effort]
        n_out = len(text) // 4 + reasoning
        return AIMessage(content=text, usage_metadata={
            "input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out,
            "input_token_details": {"cache_read": 0}, "output_token_details": {"reasoning": reasoning}})

    return ScriptedChatModel(replies=[reply], repeat_last=True, model_name=MODEL)


def _run(app: Chainproof, label: str, effort: str | None, cache: bool = True) -> dict[str, Any]:
    result = app.start("due-diligence", INPUTS, effort=effort, cache=cache)
    _, total = cost_report(app.audit, run_id=result.run_id)
    steps = [s for s in app.audit.records_of(result.run_id, Step) if s.effort]
    return {"label": label, "run_id": result.run_id, "status": result.status, **total.as_dict(),
            "efforts": [{"step": s.step_no, "node": s.node, "title": s.title, "effort": s.effort,
                         "reason": s.effort_reason} for s in steps]}


def measure() -> dict[str, Any]:
    """The three runs (module docstring) and the routed / all-high ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        models = StaticModels({e: scripted(e) for e in REASONING})
        with Chainproof(settings, models=models) as app:
            runs = [_run(app, "routed", None), _run(app, "all high", "high", cache=False), _run(app, "routed again (cache)", None)]
    routed, high = runs[0], runs[1]
    return {
        "graph": "due-diligence", "inputs": INPUTS, "model": MODEL, "reasoning_tokens_by_effort": REASONING,
        "runs": runs,
        "routed_over_all_high": {
            "total_tokens": round(routed["total_tokens"] / high["total_tokens"], 3),
            "reasoning_tokens": round(routed["reasoning_tokens"] / high["reasoning_tokens"], 3),
            "usd": round(routed["usd"] / high["usd"], 3) if routed["usd"] is not None and high["usd"] else None,
        },
    }


def _print(data: dict[str, Any]) -> None:
    head = f"{'run':<24}{'calls':>6}{'hits':>6}{'input':>9}{'output':>9}{'reasoning':>11}{'total':>9}{'saved':>9}{'USD':>12}"
    print(f"Due diligence {data['inputs']['company']} as of {data['inputs']['as_of']}, scripted usage, "
          f"priced as {data['model']}")
    print(head)
    print("-" * len(head))
    for r in data["runs"]:
        usd = "unknown" if r["usd"] is None else f"{r['usd']:.6f}"
        print(f"{r['label']:<24}{r['calls']:>6}{r['cache_hits']:>6}{r['input_tokens']:>9}{r['output_tokens']:>9}"
              f"{r['reasoning_tokens']:>11}{r['total_tokens']:>9}{r['saved_tokens']:>9}{usd:>12}")
    ratio = data["routed_over_all_high"]
    print(f"\nrouted / all high: total tokens {ratio['total_tokens']:.3f}, reasoning tokens "
          f"{ratio['reasoning_tokens']:.3f}, USD {ratio['usd']}")
    print("\nrouted efforts:")
    for e in data["runs"][0]["efforts"]:
        print(f"  step {e['step']:>2} {e['node']:<8} {e['title'][:40]:<40} {e['effort']:<6} {e['reason']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    data = measure()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print(data)


if __name__ == "__main__":
    main()
