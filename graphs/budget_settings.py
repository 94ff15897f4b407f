"""``[budgets]`` settings (:class:`BudgetSettings`), apart from the cost guards in
:mod:`chainproof.graphs.budgets` so that the settings (and read-only CLI commands such as
``chainproof costs``) load it without the guards' imports."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BudgetSettings(BaseModel):
    """``[budgets]`` in ``chainproof.toml``. ``run_usd``: default budget of every run (``--budget-usd``
    sets one run's); ``departments``: monthly USD per department or project (``--department``);
    ``alert_share``: share of a budget at which an alert is recorded (0-1, default 0.8)."""

    run_usd: float | None = Field(default=None, gt=0)
    departments: dict[str, float] = Field(default_factory=dict)
    alert_share: float = Field(default=0.8, gt=0, le=1)


__all__ = ["BudgetSettings"]
