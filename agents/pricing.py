"""What a model call costs in USD: the pricing table and the one cost formula.

Prices are USD per million tokens, per model, with where they came from and when. The cost of a
call, with :class:`chainproof.agents.calls.Usage` (``cached_input_tokens`` ⊆ ``input_tokens``,
``reasoning_tokens`` ⊆ ``output_tokens``)::

    (input_tokens - cached_input_tokens) · input + cached_input_tokens · cached_input
        + output_tokens · output                                  (all / 1,000,000)

Reasoning tokens are billed as the output tokens they are part of, so they are counted once. This is
how OpenAI's usage reports them (``prompt_tokens_details.cached_tokens`` ⊆ ``prompt_tokens``,
``completion_tokens_details.reasoning_tokens`` ⊆ ``completion_tokens``) and the computation given in
the OpenAI developer forum thread "How to correct compute the cost of an o1 model API call"
(community.openai.com/t/1099176).

Local models (a name starting ``local:``, see :mod:`chainproof.agents.models`) cost 0 and their tokens are
still counted. A model with no price is *unknown*: :func:`cost_usd` returns ``None``, never 0.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # pragma: no cover - typing only; agents.calls imports langchain-core (slow CLI start)
    from chainproof.agents.calls import Usage

LOCAL_PREFIX = "local:"
PER_TOKENS = 1_000_000
_SNAPSHOT = re.compile(r"^(.+)-\d{4}-\d{2}-\d{2}$")


class Price(BaseModel):
    """One model's price, USD per million tokens. ``source`` (a URL or document) and ``date``
    (when the price was read, YYYY-MM-DD) say where the numbers come from."""

    input: float = Field(ge=0, description="USD per 1M input tokens not served from the provider's prompt cache")
    cached_input: float = Field(ge=0, description="USD per 1M cached input tokens")
    output: float = Field(ge=0, description="USD per 1M output tokens (reasoning tokens included)")
    source: str = Field(min_length=1)
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


_OPENAI_SOURCE = (
    "OpenAI API pricing, https://developers.openai.com/api/docs/pricing (standard tier), as transcribed by "
    "https://chatgptpricing-akr.pages.dev/api-pricing and the CommitBrief wiki 'Provider OpenAI' "
    "(github.com/CommitBrief/commitbrief/wiki/Provider-OpenAI), which agree; OpenAI's page itself could not be read"
)


def default_prices() -> dict[str, Price]:
    """The shipped table: only models whose standard-tier prices two independent transcriptions of
    OpenAI's pricing page agree on (read 2026-11-29). Add or override models in ``chainproof.toml``
    (``[pricing."MODEL"]``); check the current prices before relying on these."""
    return {
        "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60, source=_OPENAI_SOURCE, date="2026-11-29"),
        "gpt-4o": Price(input=2.50, cached_input=1.25, output=10.00, source=_OPENAI_SOURCE, date="2026-11-29"),
    }


def is_local(model: str) -> bool:
    """True for the embedded model's label (``local:<gguf name>``)."""
    return model.startswith(LOCAL_PREFIX)


def price_of(model: str, table: dict[str, Price]) -> Price | None:
    """The price of ``model``: an exact entry, else the entry whose name plus a ``-YYYY-MM-DD``
    snapshot suffix is ``model`` (OpenAI reports ``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``).
    None when the table has no price (a local model has no entry: it is free, see :func:`cost_usd`)."""
    if model in table:
        return table[model]
    snapshot = _SNAPSHOT.match(model)
    if snapshot and snapshot.group(1) in table:
        return table[snapshot.group(1)]
    return None


def cost_usd(model: str, usage: Usage, table: dict[str, Price]) -> float | None:
    """USD for ``usage`` on ``model`` (formula in the module docstring); 0.0 for a local model;
    None when ``model`` has no price in ``table`` (unknown, never a silent 0)."""
    if is_local(model):
        return 0.0
    price = price_of(model, table)
    if price is None:
        return None
    uncached = usage.input_tokens - usage.cached_input_tokens
    total = uncached * price.input + usage.cached_input_tokens * price.cached_input + usage.output_tokens * price.output
    return round(total / PER_TOKENS, 10)


def sum_costs(costs: list[float | None]) -> float | None:
    """The sum of priced costs, or None (unknown) when any is None. 0.0 for no costs."""
    if any(c is None for c in costs):
        return None
    return round(float(sum(c for c in costs if c is not None)), 10)
