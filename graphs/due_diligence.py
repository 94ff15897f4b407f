"""The flagship graph: due diligence on a company as of a date.

Plan: financial health → legal and risk factors → news sentiment → industry comparison →
market risk → quantitative risk scorecard, each a tool call (numbers come from ``tools/``, never
from the model) followed by the model's interpretation; then the model's recommendation
(``proceed`` / ``renegotiate`` / ``walk_away``) with reasons that cite evidence keys, which a
named person approves or rejects before the Markdown report is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from chainproof.agents.structured import Clip
from chainproof.errors import DossierError
from chainproof.graphs.approval_policy import ApprovalPolicy, FieldBelow, FieldEquals
from chainproof.graphs.dd_charts import render_charts
from chainproof.graphs.dd_report import render_report
from chainproof.graphs.debate import debate_step
from chainproof.graphs.prompting import compact_json
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from chainproof.tools.dossier import check_as_of, load_dossier, resolve_dossier
from chainproof.tools.registry import DUE_DILIGENCE_TOOLS

FINDING_IDS = ("financials", "legal", "sentiment", "peers", "market_risk", "scorecard")
#: sections longer than this (characters, all three together) are read paragraph by paragraph
#: (map steps) before the legal step; shorter ones are carried whole enough by its excerpts
LONG_SECTIONS_CHARS = 12_000
DEBATE_ROUNDS = 2  # rounds of the optional cross-examination (--debate)
LEGAL_CHUNKS = 3  # map steps: 3 chunks of <= 2,000 characters (tools.legal_passages)
READ_INSTRUCTION = (
    "For each paragraph below that states a material legal or regulatory matter (a lawsuit, investigation, "
    "fine, settlement, recall or regulation with real exposure), write one line: [cite] the matter in a few "
    'words: "5 to 15 words copied exactly from that paragraph". Use the cite given with the paragraph, e.g. '
    '[legal_note ¶12]. Skip paragraphs without such a matter; write none if no paragraph has one.')


class EvidencedReason(BaseModel):
    """One reason, with the evidence keys it rests on: a finding id (``financials``, ``legal``,
    ``sentiment``, ``peers``, ``market_risk``, ``scorecard``), optionally with a field of that
    finding's data (``market_risk.hist_var95_1d``)."""

    text: Annotated[str, Clip(300, "one or two sentences")]
    evidence: list[str] = Field(min_length=1, max_length=4)


class Recommendation(BaseModel):
    """The decision put to the approver. ``confidence`` is 0–1."""

    decision: Literal["proceed", "renegotiate", "walk_away"]
    confidence: float = Field(ge=0.0, le=1.0)
    summary: Annotated[str, Clip(600, "two or three sentences")]
    reasons: list[EvidencedReason] = Field(min_length=1, max_length=4)


def _has_field(data: Any, name: str) -> bool:
    if isinstance(data, dict):
        return name in data or any(_has_field(v, name) for v in data.values())
    if isinstance(data, list):
        return any(_has_field(v, name) for v in data)
    return False


def check_evidence(decision: Recommendation, findings: Mapping[str, dict[str, Any] | None]) -> None:
    """Raise ``ValueError`` naming each evidence key that matches no finding or no field of it.
    ``findings``: finding id -> its kept data (None when not kept), in state order."""
    bad = []
    for reason in decision.reasons:
        for key in reason.evidence:
            head, _, field = key.partition(".")
            if head not in findings or (field and not _has_field(findings[head] or {}, field.split(".")[-1])):
                bad.append(key)
    if bad:
        raise ValueError(
            f"evidence keys {bad} do not exist; use a finding id from {list(findings)} "
            "optionally followed by a field of its data, e.g. 'market_risk.hist_var95_1d'"
        )


class DueDiligenceInputs(BaseModel):
    """The inputs of a due-diligence run (``chainproof run due-diligence --company MMM --as-of 2018-02-08``)."""

    company: str = Field(min_length=1, description="ticker, e.g. MMM")
    as_of: date = Field(description="the analysis date, YYYY-MM-DD: only data known by then is used")
    dossier: str | None = Field(default=None, description="dossier folder (default: the bundled dossier of the ticker)")
    debate: bool = Field(default=False, description="cross-examine the evidence before the recommendation: two "
                                                    "analysts argue for and against for two rounds, then a judge")


class DueDiligence(ChainSpec[Recommendation]):
    """Due diligence on a company as of a date: financial health, legal and risk factors, news
    sentiment, peers and market risk, then a recommendation a named person approves."""

    name = "due-diligence"
    inputs_model = DueDiligenceInputs
    path_inputs = ("dossier",)
    decision_schema = Recommendation
    max_steps = 60
    decide_effort = "high"
    system_prompt = (
        "You are a due-diligence analyst. Use only the facts given. Never calculate or invent numbers: "
        "quote figures exactly as the tool results state them. Ratios, margins, growth rates, returns, "
        "volatility, VaR and drawdowns are fractions: 0.0226 means 2.26 %, not 0.02 %. Amounts are in USD "
        "millions. Be brief and concrete."
    )

    def tools(self):
        return list(DUE_DILIGENCE_TOOLS)

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``company``: ticker; ``as_of``: YYYY-MM-DD within the dossier's data; ``dossier``: optional
        folder (default: the bundled dossier of the ticker). Raises ``ValueError`` (``DossierError``)."""
        given = inputs.get("company")
        if not isinstance(given, str) or not given.strip():
            raise ValueError(f"company: expected a ticker such as MMM, got {given!r}"[:200])
        company = given.strip().upper()
        raw = inputs.get("as_of")
        try:
            as_of = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        except ValueError:
            raise ValueError(f"as_of: expected a date as YYYY-MM-DD, got {raw!r}") from None
        if set(inputs) - set(DueDiligenceInputs.model_fields):
            unknown = sorted(set(inputs) - set(DueDiligenceInputs.model_fields))
            raise ValueError(f"{unknown[0]}: not an input of due-diligence; expected {list(DueDiligenceInputs.model_fields)}")
        try:
            folder = resolve_dossier(company, inputs.get("dossier"))
        except DossierError as exc:  # no dossier given: the ticker names the bundled one
            raise (DossierError(f"company: {exc}") if inputs.get("dossier") is None else exc) from None
        dossier = load_dossier(folder)
        check_as_of(dossier, as_of)
        if dossier.meta.as_of and as_of < dossier.meta.as_of:
            raise ValueError(
                f"as_of: {as_of.isoformat()} is before the date this dossier was assembled for "
                f"({dossier.meta.as_of.isoformat()}): its filing texts and peer snapshot may describe later events. "
                "Build a dossier for the earlier date (chainproof dossier build ...) or use a later as_of.")
        debate = inputs.get("debate", False)
        if not isinstance(debate, bool):
            raise ValueError(f"debate: expected true or false, got {debate!r}")
        return {"company": company, "company_name": dossier.meta.name, "as_of": as_of.isoformat(),
                "dossier": str(Path(folder).resolve()), **({"debate": True} if debate else {})}

    def subject(self, inputs: dict[str, Any]) -> str | None:
        """The ticker, shown by ``chainproof runs``."""
        return inputs.get("company")

    def goal(self, inputs: dict[str, Any]) -> str:
        return (
            f"Due diligence on {inputs['company_name']} ({inputs['company']}) as of {inputs['as_of']}: assess "
            "financial health, legal and risk factors, news sentiment, industry position and market risk, then "
            "recommend proceed, renegotiate or walk away with evidenced reasons."
        )

    @staticmethod
    def long_sections(inputs: dict[str, Any]) -> bool:
        """Whether the dossier's filing sections are long enough (> :data:`LONG_SECTIONS_CHARS`
        characters) to be read paragraph by paragraph: then the plan retrieves the legal paragraphs
        (BM25), the model reads them in :data:`LEGAL_CHUNKS` map steps whose prompts stay within
        :data:`~chainproof.tools.legal_passages.PROMPT_BUDGET_TOKENS` tokens (2,500 by characters / 4),
        and the legal step (the reduce) checks every citation. Raises :class:`DossierError`."""
        return sum(len(t) for t in load_dossier(inputs["dossier"]).texts.values()) > LONG_SECTIONS_CHARS

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        base = {"dossier": "{inputs.dossier}", "as_of": "{inputs.as_of}"}
        quote = "Quote figures exactly as given; do not calculate."
        reads = [PlanStep(id=f"legal_read_{k}", title=f"Read legal paragraphs {k}/{LEGAL_CHUNKS}", kind="tool",
                          tool="legal_passages", args={**base, "chunk": k, "chunks": LEGAL_CHUNKS}, effort="medium",
                          keep_data=True, prompt_fields=["paragraphs"], instruction=READ_INSTRUCTION)
                 for k in range(1, LEGAL_CHUNKS + 1)] if self.long_sections(inputs) else []
        return [
            PlanStep(id="financials", title="Financial health", kind="tool", tool="financial_health", args=base,
                     effort="medium", keep_data=True, prompt_fields=["years", "revenue_cagr", "flags"],
                     instruction=f"In 2-3 sentences, say what the figures show about growth, margins, liquidity, leverage and free cash flow, and name any flags. {quote}"),
            *reads,
            PlanStep(id="legal", title="Legal and risk factors", kind="tool", tool="legal_matters",
                     args={**base, "top_n": 6}, effort="high", keep_data=True, prompt_fields=["matters"],
                     args_from_summaries={"readings": [r.id for r in reads]} if reads else {},
                     instruction="In 2-3 sentences, name the most material legal or regulatory matters and why they "
                                 "matter for a buyer or lender" + (", citing each as [section ¶n]." if reads else ".")),
            # no static effort: the routing rule "summarise" sends it to low
            PlanStep(id="sentiment", title="News sentiment", kind="tool", tool="headline_sentiment", args=base,
                     keep_data=True,
                     prompt_fields=["n_scored", "n_bullish", "n_bearish", "n_neutral", "net_score", "notes"],
                     instruction=f"In 1-2 sentences, summarise the tone of the headlines. {quote}"),
            PlanStep(id="peers", title="Industry comparison", kind="tool", tool="peer_comparison", args=base,
                     effort="low", keep_data=True, prompt_fields=["peers", "multiples"],
                     instruction=f"In 1-2 sentences, say whether the company is valued at a premium or discount to peers. {quote}"),
            PlanStep(id="market_risk", title="Market risk", kind="tool", tool="market_risk", args=base,
                     effort="medium", keep_data=True, prompt_fields=[
                         "window_start", "window_end", "hist_var95_1d", "hist_cvar95_1d", "ann_volatility",
                         "sharpe_ratio", "beta_vs_benchmark", "max_drawdown", "total_price_return"],
                     instruction=f"In 2 sentences, describe the stock's risk: VaR, CVaR, volatility, Sharpe ratio, beta and maximum drawdown. {quote}"),
            PlanStep(id="scorecard", title="Quantitative risk scorecard", kind="tool", tool="risk_scorecard",
                     args_from_findings={"financials": "financials", "legal": "legal", "sentiment": "sentiment",
                                         "peers": "peers", "risk": "market_risk"},
                     effort="medium", keep_data=True, prompt_fields=["total_score", "recommendation", "factors"],
                     instruction="In 2 sentences, explain the score and which factors drive it."),
            *([self.cross_examination(inputs)] if inputs.get("debate") else []),
        ]

    @staticmethod
    def cross_examination(inputs: dict[str, Any]) -> PlanStep:
        """The optional debate before the recommendation (``--debate``): an analyst for proceeding
        and one against argue for :data:`DEBATE_ROUNDS` rounds over the cited findings, then a judge
        (:func:`chainproof.graphs.debate.debate_step`)."""
        return debate_step(
            "cross_examination", "Cross-examination",
            f"Should a buyer proceed with {inputs['company_name']} ({inputs['company']}) as of {inputs['as_of']} on "
            "this evidence, or renegotiate or walk away?",
            [("proceed", "argue that the buyer should proceed: the evidence supports the deal as it stands"),
             ("caution", "argue that the buyer should renegotiate or walk away: the evidence shows material risks")],
            rounds=DEBATE_ROUNDS, evidence=["financials", "legal", "market_risk", "scorecard"], effort="medium")

    def decision_prompt(self, view: ChainView) -> str:
        scorecard = view.data("scorecard")
        debated = view.finding("cross_examination")
        return (
            "Recommend one decision: proceed, renegotiate or walk_away. Give a confidence between 0 and 1, a "
            "one-paragraph summary, and 2-4 reasons. Each reason lists evidence keys: a finding id from "
            f"{list(FINDING_IDS)}, optionally with a field name, e.g. 'market_risk.hist_var95_1d'. "
            "Do not compute new numbers. Keep the summary to 2-3 sentences and each reason to 1-2 sentences.\n"
            'Example shape: {"decision": "renegotiate", "confidence": 0.6, "summary": "...", '
            '"reasons": [{"text": "...", "evidence": ["legal"]}, {"text": "...", "evidence": ["market_risk.beta_vs_benchmark"]}]}'
            "\n\nQuantitative scorecard (JSON): "
            + compact_json({k: scorecard.get(k) for k in ("total_score", "recommendation", "factors")}, max_chars=1500)
            + (f"\n\nCross-examination (finding id cross_examination): {debated.summary}" if debated else "")
        )

    def check_decision(self, decision: Recommendation, view: ChainView) -> None:
        check_evidence(decision, {f.step_id: f.data for f in view.findings})

    def fallback_decision(self, view: ChainView, errors: list[str]) -> Recommendation:
        """The scorecard's suggestion, with its top factors as reasons (used when the model gave no
        valid recommendation; the decide step records ``fallback: true`` and the errors)."""
        card = view.data("scorecard")
        factors = sorted(card.get("factors") or [], key=lambda f: -abs(f.get("points", 0)))[:4]
        reasons = [
            EvidencedReason(text=str(f.get("note") or f.get("code"))[:600].ljust(10, "."),
                            evidence=[str(f.get("evidence_key") or "scorecard")])
            for f in factors
        ] or [EvidencedReason(text="Quantitative scorecard total score.", evidence=["scorecard"])]
        return Recommendation(
            decision=card.get("recommendation") or "renegotiate",
            confidence=0.5,  # the scorecard gives no confidence; 0.5 marks "no model judgement"
            summary=(f"Scorecard recommendation (score {card.get('total_score', '?')}/100); "
                     "the model gave no valid recommendation, so the quantitative scorecard's is proposed."),
            reasons=reasons,
        )

    def approval_policy(self) -> ApprovalPolicy:
        """Every recommendation needs a named approver; a walk-away recommendation or a confidence
        below 0.5 (0.5 is also the fallback's "no model judgement" value) are flagged to the approver
        as reasons. A rejection ends the run with a rejected report."""
        return ApprovalPolicy(nodes=["decide"], on_reject="end", conditions=[
            FieldEquals(field="decision", value="walk_away"), FieldBelow(field="confidence", threshold=0.5)])

    def approval_question(self, decision: Recommendation, view: ChainView) -> str:
        """The question, with the quantitative scorecard's suggestion when it differs from the
        model's recommendation (the approver should see the disagreement)."""
        inputs = view.inputs
        question = (f"Approve the recommendation '{decision.decision}' for {inputs['company_name']} "
                    f"({inputs['company']}) as of {inputs['as_of']}?")
        card = view.data("scorecard")
        if card.get("recommendation") and card["recommendation"] != decision.decision:
            question += (f" Note: the quantitative scorecard suggests '{card['recommendation']}' "
                         f"(risk score {card.get('total_score')}/100).")
        return question

    def render_report(self, view: ChainView) -> str:
        return render_report(view)

    def report_charts(self, view: ChainView) -> dict[str, str]:
        """The price, financials, peers and legal charts (:mod:`chainproof.graphs.dd_charts`)."""
        return render_charts(view)
