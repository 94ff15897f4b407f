"""Check a product's gross margin against a target, and ask a person to approve the verdict."""

from typing import Literal

from pydantic import BaseModel, Field

from chainproof import ChainSpec, PlanStep, tool


@tool
def gross_margin(revenue: float, cost: float) -> dict:
    """Gross profit and gross margin (a fraction) of revenue and cost, in the same currency."""
    return {"gross_profit": revenue - cost, "margin": round((revenue - cost) / revenue, 4)}


@tool
def margin_gap(margin: dict, target: float) -> dict:
    """How far the gross margin is from the target margin (fractions); positive = above target."""
    return {"target": target, "gap": round(margin["margin"] - target, 4), "meets_target": margin["margin"] >= target}


@tool
def target_price(cost: float, target: float) -> dict:
    """The price at which the cost gives exactly the target gross margin."""
    return {"price": round(cost / (1 - target), 2)}


class Inputs(BaseModel):
    product: str = Field(min_length=1, description="product name")
    revenue: float = Field(gt=0, description="revenue per unit")
    cost: float = Field(ge=0, description="cost per unit")
    target: float = Field(default=0.3, gt=0, lt=1, description="target gross margin, a fraction")


class Verdict(BaseModel):
    decision: Literal["accept", "reprice"]
    reason: str = Field(min_length=3)


class MarginCheck(ChainSpec[Verdict]):
    """Check a product's gross margin against a target; a person approves accept or reprice."""

    name = "margin-check"
    inputs_model = Inputs
    decision_schema = Verdict
    review_every = 2  # a goal review after every two plan steps

    def tools(self):
        return [gross_margin, margin_gap, target_price]

    def subject(self, inputs):
        return inputs["product"]

    def goal(self, inputs):
        return f"Decide whether {inputs['product']} meets a {inputs['target']:.0%} gross margin or must be repriced."

    def plan(self, inputs):
        return [
            PlanStep(id="margin", title="Gross margin", kind="tool", tool="gross_margin", keep_data=True,
                     args={"revenue": "{inputs.revenue}", "cost": "{inputs.cost}"},
                     instruction="State the gross margin."),
            PlanStep(id="gap", title="Gap to target", kind="tool", tool="margin_gap", keep_data=True,
                     args={"target": "{inputs.target}"}, args_from_findings={"margin": "margin"},
                     instruction="Say whether the margin meets the target."),
            PlanStep(id="price", title="Target price", kind="tool", tool="target_price", keep_data=True,
                     args={"cost": "{inputs.cost}", "target": "{inputs.target}"},
                     instruction="State the price that meets the target."),
        ]

    def decision_prompt(self, view):
        gap = view.data("gap")["gap"]
        return f"The margin gap to the target is {gap}. Answer accept or reprice, with a reason."

    def render_report(self, view):
        verdict = view.decision_as(Verdict)
        answer = view.approval or {}
        return (f"# Margin check: {view.inputs['product']}\n\n"
                f"Decision: {verdict.decision} ({answer.get('action', 'no answer')} by {answer.get('approver')})\n\n"
                f"Gross margin: {view.data('margin')['margin']}; price for the target: {view.data('price')['price']}\n")
