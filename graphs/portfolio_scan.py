"""The portfolio scan: ``portfolio-scan`` rates every position of a portfolio file and the
portfolio as a whole, and fans out one ``position-risk`` run per position; both raise alerts.

Written with the public API only (:class:`~chainproof.graphs.spec.ChainSpec`, tools), like
``due_diligence``. The numbers come from ``tools/portfolio.py`` (market risk and headline
sentiment from each position's dossier, the portfolio's historical VaR and CVaR); the model only
words the summary, and its rating must equal the computed one (else the computed rating is the
decision: scripted and small models give the same result). Neither graph asks for approval: a
scheduled scan runs unattended, and its alerts (:meth:`ChainSpec.alerts`, recorded in the report
step) are what people look at (``chainproof alerts``).

Fan-out: on workers (audit store and checkpointer on PostgreSQL), the ``position_runs`` step
submits one ``position-risk`` run per position to the workers' queue (``Chainproof.submit``) and
records their run ids; any worker advances them. The child run ids are derived from the scan's
run id and the position (:func:`position_run_id`), so a step that runs again submits nothing twice. Without PostgreSQL the step records that no
child runs were submitted and why; the scan's own per-position ratings are complete either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from chainproof.agents.structured import Clip
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.prompting import compact_json
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from chainproof.tools.dossier import resolve_dossier
from chainproof.tools.portfolio import (
    RiskThresholds,
    portfolio_dossiers,
    portfolio_risk,
    position_risk,
    read_portfolio,
)

Rating = Literal["low", "medium", "high"]
_THRESHOLDS = tuple(RiskThresholds.model_fields)


class RiskDecision(BaseModel):
    """The rating (it must equal the computed one) and a short summary."""

    rating: Rating
    summary: Annotated[str, Clip(400, "one or two sentences")]


class PositionRiskInputs(RiskThresholds):
    """One position: ``ticker``, ``as_of`` (YYYY-MM-DD), ``weight`` (fraction), ``dossier`` (folder;
    default: the bundled dossier of the ticker) and the thresholds of :class:`RiskThresholds`."""

    ticker: str = Field(min_length=1, description="ticker, e.g. MMM")
    as_of: date
    weight: float = Field(default=1.0, gt=0, le=1, description="the position's fraction of the portfolio")
    dossier: str | None = None


class PortfolioScanInputs(RiskThresholds):
    """``portfolio``: CSV of ``ticker,weight[,dossier]``; ``as_of``: YYYY-MM-DD; ``fan_out``: submit a
    ``position-risk`` run per position (needs workers); the thresholds of :class:`RiskThresholds`."""

    portfolio: str = Field(min_length=1, description="portfolio CSV: ticker,weight[,dossier]")
    as_of: date
    fan_out: bool = True


def _thresholds(**values: Any) -> RiskThresholds:
    return RiskThresholds(**{k: v for k, v in values.items() if k in _THRESHOLDS})


class ThresholdArgs(RiskThresholds):
    as_of: date


class PositionArgs(ThresholdArgs):
    dossier: str


class PortfolioArgs(ThresholdArgs):
    portfolio: str


def _position_risk(dossier: str, as_of: date, **thresholds: float) -> dict:
    return position_risk(dossier, as_of, _thresholds(**thresholds))


def _portfolio_risk(portfolio: str, as_of: date, **thresholds: float) -> dict:
    return portfolio_risk(portfolio, as_of, _thresholds(**thresholds))


def position_run_id(parent_run_id: str, index: int, ticker: str) -> str:
    """The run id of the ``position-risk`` run a scan ``parent_run_id`` submits for its position
    ``index`` (0-based line of the portfolio file) ``ticker``: 12 hex digits of a SHA-256, so the
    same scan submitting again gets the same ids (and ``Chainproof.submit`` records nothing twice)."""
    return hashlib.sha256(f"{parent_run_id}/{index}/{ticker}".encode()).hexdigest()[:12]


def fan_out(app: Any, parent_run_id: str, portfolio: str, as_of: date, thresholds: dict[str, Any]) -> dict[str, str]:
    """Submit one ``position-risk`` run per position of ``portfolio`` for the scan
    ``parent_run_id``; ``{ticker: run_id}``. Idempotent: the run ids are
    :func:`position_run_id`, and submitting a run id again enqueues the same DBOS workflow
    (``RUN:start``), so a retried step (a DBOS step retry, a worker's recovery) adds no run."""
    submitted = {}
    for i, p in enumerate(read_portfolio(portfolio)):
        inputs = {"ticker": p.ticker, "as_of": as_of.isoformat(), "weight": p.weight, "dossier": p.dossier,
                  **{k: v for k, v in thresholds.items() if k in _THRESHOLDS}}
        submitted[p.ticker] = app.submit("position-risk", inputs, run_id=position_run_id(parent_run_id, i, p.ticker)).run_id
    return submitted


def _position_runs(portfolio: str, as_of: date, **thresholds: float) -> dict:
    """Submit one ``position-risk`` run per position (:func:`fan_out`, for the scan whose node
    calls it: LangGraph's ``thread_id``); ``{"submitted": {ticker: run_id}}``, or
    ``{"submitted": {}, "skipped": reason}`` where runs cannot be submitted (no PostgreSQL)."""
    from contextlib import nullcontext

    from langgraph.config import get_config

    from chainproof.app import Chainproof
    from chainproof.errors import WorkersUnavailable
    from chainproof.workers import require_postgres, serving_app

    parent = get_config()["configurable"]["thread_id"]  # the scan's run id
    worker = serving_app()  # on a worker: its settings and models; else this process's settings
    with nullcontext(worker) if worker is not None else Chainproof() as app:
        try:
            require_postgres(app.settings, "portfolio-scan fan-out")
        except WorkersUnavailable as exc:
            return {"submitted": {}, "skipped": str(exc)}
        return {"submitted": fan_out(app, parent, portfolio, as_of, thresholds)}


PORTFOLIO_TOOLS = [
    StructuredTool.from_function(_position_risk, name="position_risk", args_schema=PositionArgs,
                                 description="One position's one-day 95 % VaR and CVaR, volatility, maximum "
                                             "drawdown, headline sentiment, breached thresholds and rating."),
    StructuredTool.from_function(_portfolio_risk, name="portfolio_risk", args_schema=PortfolioArgs,
                                 description="Every position's risk and rating, and the portfolio's historical "
                                             "one-day 95 % VaR and CVaR."),
    StructuredTool.from_function(_position_runs, name="position_runs", args_schema=PortfolioArgs,
                                 description="Submit one position-risk run per position to the workers."),
]
_ARGS = {"as_of": "{inputs.as_of}", **{k: f"{{inputs.{k}}}" for k in _THRESHOLDS}}


class _RiskSpec(ChainSpec[RiskDecision]):
    """What both graphs share: no approval, no goal reviews, a decision checked against the rating."""

    decision_schema = RiskDecision
    review_every = 0
    decide_effort = "low"
    max_steps = 10
    system_prompt = ("You are a risk analyst. Use only the figures given; quote them exactly. Fractions: "
                     "0.0226 means 2.26 %.")

    def tools(self):
        return list(PORTFOLIO_TOOLS)

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def computed(self, view: ChainView) -> tuple[Rating, str]:
        raise NotImplementedError

    def decision_prompt(self, view: ChainView) -> str:
        rating, facts = self.computed(view)
        return (f'Give the rating "{rating}" (computed from the thresholds) and a one or two sentence summary. '
                f'Answer as JSON: {{"rating": "{rating}", "summary": "..."}}\n\nFigures (JSON): {facts}')

    def check_decision(self, decision: RiskDecision, view: ChainView) -> None:
        rating, _ = self.computed(view)
        if decision.rating != rating:
            raise ValueError(f"rating: the thresholds give {rating!r}, not {decision.rating!r}")

    def fallback_decision(self, view: ChainView, errors: list[str]) -> RiskDecision:
        """The computed rating with the figures as the summary (the model gave no valid answer)."""
        rating, facts = self.computed(view)
        return RiskDecision(rating=rating, summary=f"Computed rating {rating}: {facts}"[:400])


class PositionRisk(_RiskSpec):
    """One position's risk as of a date: market risk and headline sentiment from its dossier, rated
    against thresholds; a high rating raises an alert."""

    name = "position-risk"
    inputs_model = PositionRiskInputs
    path_inputs = ("dossier",)

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        values = super().validate_inputs(inputs)
        values["ticker"] = values["ticker"].strip().upper()
        values["dossier"] = str(resolve_dossier(values["ticker"], values.get("dossier")))
        return values

    def subject(self, inputs: dict[str, Any]) -> str | None:
        return inputs.get("ticker")

    def goal(self, inputs: dict[str, Any]) -> str:
        return f"Rate the risk of the {inputs['ticker']} position as of {inputs['as_of']} and alert when it is high."

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return [PlanStep(id="risk", title="Position risk", kind="tool", tool="position_risk", interpret=False,
                         keep_data=True, args={**_ARGS, "dossier": "{inputs.dossier}"},
                         instruction="Rate the position's risk.")]

    def computed(self, view: ChainView) -> tuple[Rating, str]:
        data = view.data("risk")
        return data["rating"], compact_json(data, max_chars=800)

    def alerts(self, view: ChainView) -> list[dict[str, Any]]:
        data = view.data("risk")
        if data["rating"] != "high":
            return []
        return [{"level": "high", "subject": data["ticker"],
                 "message": f"{data['ticker']} rated high: breaches {', '.join(data['breaches'])}",
                 "figures": {k: data[k] for k in ("hist_var95_1d", "max_drawdown", "net_score")}}]

    def render_report(self, view: ChainView) -> str:
        data, decision = view.data("risk"), view.decision or {}
        return (f"# Position risk: {data['ticker']} as of {view.inputs['as_of']}\n\n"
                f"**Rating: {decision.get('rating')}** ({', '.join(data['breaches']) or 'no breach'})\n\n"
                f"{decision.get('summary', '')}\n\n"
                f"- one-day 95 % VaR {data['hist_var95_1d']:.4f}, CVaR {data['hist_cvar95_1d']:.4f}\n"
                f"- annualised volatility {data['ann_volatility']:.4f}, maximum drawdown {data['max_drawdown']:.4f}\n"
                f"- headline net score {data['net_score']:.3f} over {data['n_headlines']} headlines\n")


class PortfolioScan(_RiskSpec):
    """Scan a portfolio file as of a date: every position's risk rating, the portfolio's one-day VaR
    and CVaR, one position-risk run per position on the workers; alerts on high risk."""

    name = "portfolio-scan"
    inputs_model = PortfolioScanInputs
    path_inputs = ("portfolio",)

    def input_paths(self, inputs: dict[str, Any]) -> Iterator[tuple[str, Path]]:
        """The portfolio file, then (read only once the caller let the file pass) each row's
        ``dossier`` folder as :func:`read_portfolio` resolves it (from the file's folder)."""
        for field, path in super().input_paths(inputs):
            yield field, path
            if field == "portfolio" and path.is_file():
                for line, given in portfolio_dossiers(path):
                    yield f"portfolio line {line}: dossier", path.parent / Path(given).expanduser()

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        values = super().validate_inputs(inputs)
        read_portfolio(values["portfolio"])  # DossierError (exit 2) naming the file, line and field
        values["portfolio"] = str(Path(values["portfolio"]).expanduser().resolve())
        return values

    def subject(self, inputs: dict[str, Any]) -> str | None:
        return Path(inputs.get("portfolio", "")).name or None

    def goal(self, inputs: dict[str, Any]) -> str:
        return (f"Scan the portfolio {inputs['portfolio']} as of {inputs['as_of']}: rate each position, compute the "
                "portfolio's one-day VaR and CVaR, and alert on high risk.")

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        args = {**_ARGS, "portfolio": "{inputs.portfolio}"}
        steps = [PlanStep(id="risk", title="Portfolio risk", kind="tool", tool="portfolio_risk", interpret=False,
                          keep_data=True, args=args, instruction="Rate every position and the portfolio.")]
        if inputs.get("fan_out", True):
            steps.append(PlanStep(id="runs", title="Position runs", kind="tool", tool="position_runs",
                                  interpret=False, keep_data=True, args=args, depends_on=["risk"],
                                  instruction="Submit one position-risk run per position."))
        return steps

    def computed(self, view: ChainView) -> tuple[Rating, str]:
        data = view.data("risk")
        ratings = [p["rating"] for p in data["positions"]]
        rating: Rating = ("high" if data["portfolio"]["alert"] or "high" in ratings
                          else "medium" if "medium" in ratings else "low")
        facts = {"portfolio": data["portfolio"], "ratings": {p["ticker"]: p["rating"] for p in data["positions"]}}
        return rating, compact_json(facts, max_chars=800)

    def alerts(self, view: ChainView) -> list[dict[str, Any]]:
        data = view.data("risk")
        runs = view.data("runs").get("submitted", {})
        out = []
        if data["portfolio"]["alert"]:
            out.append({"level": "high", "subject": "portfolio",
                        "message": f"portfolio one-day 95 % VaR {data['portfolio']['hist_var95_1d']:.4f} over "
                                   f"{view.inputs['portfolio_var95_high']}",
                        "figures": {k: data["portfolio"][k] for k in ("hist_var95_1d", "hist_cvar95_1d")}})
        for p in data["positions"]:
            if p["rating"] == "high":
                out.append({"level": "high", "subject": p["ticker"], "position_run": runs.get(p["ticker"]),
                            "message": f"{p['ticker']} (weight {p['weight']}) rated high: breaches "
                                       f"{', '.join(p['breaches'])}"})
        return out

    def render_report(self, view: ChainView) -> str:
        data, decision = view.data("risk"), view.decision or {}
        runs = view.data("runs").get("submitted", {})
        pf = data["portfolio"]
        lines = [f"# Portfolio scan as of {view.inputs['as_of']}", "",
                 f"**Rating: {decision.get('rating')}**. {decision.get('summary', '')}", "",
                 f"Portfolio one-day 95 % VaR {pf['hist_var95_1d']:.4f}, CVaR {pf['hist_cvar95_1d']:.4f} "
                 f"({pf['n_days']} days, {pf['window_start']} to {pf['window_end']}).", "",
                 "| ticker | weight | VaR 95 % | max drawdown | net sentiment | rating | position run |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {p['ticker']} | {p['weight']} | {p['hist_var95_1d']:.4f} | {p['max_drawdown']:.4f} | "
                  f"{p['net_score']:.3f} | {p['rating']} | {runs.get(p['ticker'], '-')} |" for p in data["positions"]]
        return "\n".join(lines) + "\n"
