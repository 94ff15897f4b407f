"""Chainproof configuration (pydantic-settings).

Sources, highest precedence first (pydantic-settings' order):

1. keyword arguments (tests, the CLI);
2. environment variables with the prefix ``CHAINPROOF_`` and ``__`` between nested fields,
   e.g. ``CHAINPROOF_MODEL__PROVIDER=openai``, ``CHAINPROOF_MODEL__BASE_URL=http://127.0.0.1:8000/v1``;
3. a TOML file: ``$CHAINPROOF_CONFIG`` if set, else ``./chainproof.toml`` if it exists;
4. the defaults below.

Paths default under ``CHAINPROOF_HOME`` (``~/.chainproof``): the audit database
``audit.sqlite``, the LangGraph checkpointer ``checkpoints.sqlite``, reports in ``reports/``
and the assembled local model in ``models/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from chainproof.agents.config import LocalModelSettings, ModelSettings
from chainproof.agents.pricing import Price, default_prices
from chainproof.checkpoints.audit_hashing import Redactor
from chainproof.checkpoints.reasoning_cache import DEFAULT_TTL_S
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.budgets import BudgetSettings
from chainproof.graphs.routing import RoutingSettings


class CacheSettings(BaseModel):
    """``[cache]``: the reasoning cache (``enabled``; entries live ``ttl_s`` seconds, default 24 h).
    A run can opt out (``--no-cache``), a graph per step or node (``ChainSpec.uncached``);
    zero-data-retention runs never use it (it stores model text)."""

    enabled: bool = True
    ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0)


def _default_home() -> Path:
    return Path(os.environ.get("CHAINPROOF_HOME", Path.home() / ".chainproof")).expanduser()


class Settings(BaseSettings):
    """All Chainproof settings; see the module docstring for sources and precedence."""

    model_config = SettingsConfigDict(env_prefix="CHAINPROOF_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the audit store.")
    checkpoint_url: str | None = Field(
        default=None, description="LangGraph checkpointer: a SQLite file path or a postgresql:// URL."
    )
    reports_dir: Path | None = None
    model: ModelSettings = Field(default_factory=ModelSettings)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    approval_policies: dict[str, ApprovalPolicy] = Field(
        default_factory=dict, description="Approval policy per graph name; replaces the graph's own policy."
    )
    approver_roles: dict[str, list[str]] = Field(
        default_factory=dict, description="Roles per approver name, for policies that allow 'role:ROLE'."
    )
    zdr: bool = Field(
        default=False,
        description="Zero data retention for every run: store hashes and short redacted excerpts of prompt "
        "and model text instead of the text (a run can also opt in alone: `chainproof run ... --zdr`).",
    )
    pricing: dict[str, Price] = Field(
        default_factory=default_prices,
        description="USD per 1M tokens per model ({input, cached_input, output, source, date}); entries given "
        "in settings are added to (or replace) the shipped ones. Local models cost 0; others without a price "
        "are recorded as unknown cost.",
    )
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    graphs: list[str] = Field(
        default_factory=list,
        description="Extra graphs as 'package.module:attribute' paths (a ChainSpec subclass, instance or "
        "factory), on top of those registered through the 'chainproof.graphs' entry-point group.",
    )
    secret_patterns: list[str] = Field(
        default_factory=list,
        description="Extra regular expressions whose matches are redacted everywhere Chainproof writes, on top "
        "of API keys, Bearer tokens and api_key=/Authorization: values.",
    )

    @field_validator("pricing", mode="before")
    @classmethod
    def _over_shipped_prices(cls, value: Any) -> Any:
        return {**default_prices(), **value} if isinstance(value, dict) else value

    @field_validator("graphs")
    @classmethod
    def _graph_paths(cls, value: list[str]) -> list[str]:
        for i, path in enumerate(value):
            module, _, attr = path.partition(":")
            if not module or not attr:
                raise ValueError(f"graphs[{i}]: expected 'package.module:attribute', got {path!r}")
        return value

    @field_validator("secret_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        Redactor(value)  # raises ValueError naming secret_patterns[i]
        return value

    @property
    def redactor(self) -> Redactor:
        return Redactor(self.secret_patterns)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("CHAINPROOF_CONFIG", "chainproof.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif "CHAINPROOF_CONFIG" in os.environ:
            raise FileNotFoundError(f"CHAINPROOF_CONFIG={toml_path}: no such file")
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'audit.sqlite'}"

    @property
    def resolved_checkpoint_url(self) -> str:
        return self.checkpoint_url or str(self.home / "checkpoints.sqlite")

    @property
    def resolved_reports_dir(self) -> Path:
        return self.reports_dir or self.home / "reports"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"
