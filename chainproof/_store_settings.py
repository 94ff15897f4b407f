"""The part of the settings that locates the stores: what read-only CLI commands load.

:class:`StoreSettings` holds the settings a command that only reads the audit store needs (the
home and storage URLs, the extra secret patterns, the budgets ``chainproof costs`` shows), with the
sources and precedence of :class:`chainproof.settings.Settings`, which extends it with every other
setting (models, routing, pricing, approval policies, …). So ``runs``, ``show``, ``verify``,
``pending``, ``costs`` and ``export`` start without building those models; each setting is defined
once, here or in :mod:`chainproof.settings`, with one name, default and validation message.
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
    SettingsError,
    TomlConfigSettingsSource,
)

from chainproof.checkpoints.audit_hashing import Redactor
from chainproof.errors import ConfigError
from chainproof.graphs.budget_settings import BudgetSettings


def _default_home() -> Path:
    return Path(os.environ.get("CHAINPROOF_HOME", Path.home() / ".chainproof")).expanduser()


class LogSettings(BaseModel):
    """``[log]``: signed tree heads of the audit store's Merkle log (``checkpoints/log_heads.py``).

    ``key_file``: the Ed25519 signing key (PEM, mode 0600; created on first use; default
    ``$CHAINPROOF_HOME/keys/log-signing.key``) — keep it where the database's writers cannot read it.
    ``public_keys_dir``: every public key by key id (default ``$CHAINPROOF_HOME/keys/public``).
    ``head_sinks``: append-only files the heads are published to (default
    ``$CHAINPROOF_HOME/heads/heads.jsonl``; ``[]`` for none). ``sign_heads``: sign and publish a head
    at every run's pause and completion (``chainproof log head`` signs one on demand either way)."""

    sign_heads: bool = True
    key_file: Path | None = None
    public_keys_dir: Path | None = None
    head_sinks: list[Path] | None = None


class TrustSettings(BaseModel):
    """``[trust]``: the operator key, the trust anchor outside the database (README "Threat model").

    ``key_file``: the operator's Ed25519 private key (PEM, mode 0600; default
    ``$CHAINPROOF_HOME/keys/operator.key``), which countersigns every grant row (accounts,
    sessions and API tokens, approver keys, approval policies, store settings;
    :mod:`chainproof.checkpoints.grants`). Commands that write grants need it; ``chainproof keys
    operator`` creates or rotates it, and a store's creator gets one made on first use.
    ``public_keys_dir``: the operator public keys this host trusts (PEM or raw base64 files, any
    name ending ``.pub``; default ``$CHAINPROOF_HOME/keys/operator-public``). Every process that
    reads grants needs it; keep both where the database's writers cannot write."""

    key_file: Path | None = None
    public_keys_dir: Path | None = None


class ApprovalsSettings(BaseModel):
    """``[approvals]``: options a store takes when it is created.

    ``require_signature`` (default true): a store created with it requires every approve, reject
    and edit to carry an Ed25519 signature of a registered approver key, for every graph without
    its own stored policy (README "Signed decisions"). It is read once, by the process that creates
    the store (like an ``initdb`` option), and recorded in the store (``store_settings``); afterwards
    a caller's TOML or environment changes nothing, and only an admin's audited
    ``chainproof policy set --store require_signature=…`` does. A store created before this option
    existed keeps unsigned decisions until an admin turns them on."""

    require_signature: bool = True


class StoreSettings(BaseSettings):
    """Where the stores are, and what read-only commands read (see the module docstring); sources
    and precedence as documented in :mod:`chainproof.settings`."""

    model_config = SettingsConfigDict(env_prefix="CHAINPROOF_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the audit store.")
    checkpoint_url: str | None = Field(
        default=None, description="LangGraph checkpointer: a SQLite file path or a postgresql:// URL."
    )
    reports_dir: Path | None = None
    input_file_max_mb: float = Field(
        default=32.0, gt=0, description="Largest input file (MiB) a command reads: inputs files, proposals, tree heads, "
        "dossier and market files, 10-K documents (chainproof/tools/input_files.py).")
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    approvals: ApprovalsSettings = Field(default_factory=ApprovalsSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    secret_patterns: list[str] = Field(
        default_factory=list,
        description="Extra regular expressions whose matches are redacted everywhere Chainproof writes, on top "
        "of the built-in credential patterns (checkpoints/redaction.py).",
    )

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
            try:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            except ValueError as exc:  # tomllib.TOMLDecodeError
                raise ConfigError(f"{toml_path.resolve()}: not valid TOML ({exc})") from None
        elif "CHAINPROOF_CONFIG" in os.environ:
            raise ConfigError(f"CHAINPROOF_CONFIG={toml_path}: no such file")
        return tuple(sources)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except SettingsError as exc:  # e.g. CHAINPROOF_GRAPHS='not json'
            raise ConfigError(f"{exc} (a CHAINPROOF_* variable holding a list or table must be JSON)") from None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'audit.sqlite'}"

    @property
    def resolved_checkpoint_url(self) -> str:
        return self.checkpoint_url or str(self.home / "checkpoints.sqlite")

    @property
    def resolved_reports_dir(self) -> Path:
        return self.reports_dir or self.home / "reports"

    def log_keys(self) -> Any:
        """The log's :class:`chainproof.checkpoints.log_heads.LogKeys` (imports ``cryptography``)."""
        from chainproof.checkpoints.log_heads import LogKeys

        return LogKeys(self.log.key_file or self.home / "keys" / "log-signing.key",
                       self.log.public_keys_dir or self.home / "keys" / "public")

    def operator_trust(self) -> Any:
        """The :class:`chainproof.checkpoints.grants.OperatorTrust` of ``trust`` (imports ``cryptography``)."""
        from chainproof.checkpoints.grants import OperatorTrust

        return OperatorTrust(self.trust.key_file or self.home / "keys" / "operator.key",
                             self.trust.public_keys_dir or self.home / "keys" / "operator-public")

    def head_sinks(self) -> list[Any]:
        """The configured head sinks (:class:`chainproof.checkpoints.log_heads.FileSink`)."""
        from chainproof.checkpoints.log_heads import FileSink

        paths = self.log.head_sinks if self.log.head_sinks is not None else [self.home / "heads" / "heads.jsonl"]
        return [FileSink(p) for p in paths]

    def head_publisher(self) -> Any:
        """``publish(engine) -> head`` signing and publishing the store's tree head (keys and sinks
        above), or None when ``log.sign_heads`` is off."""
        if not self.log.sign_heads:
            return None
        import functools

        from chainproof.checkpoints.log_heads import publish_head

        return functools.partial(publish_head, keys=self.log_keys(), sinks=self.head_sinks())

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


NOT_SETTINGS = frozenset({"config", "debug"})
"""``CHAINPROOF_*`` variables that are not settings: the TOML file's path, the CLI's traceback switch."""


def only_store_settings_given() -> bool:
    """True when the environment (``CHAINPROOF_*``) and the TOML file set nothing but
    :class:`StoreSettings` fields. Every other setting then has its default, which is valid, so
    validating :class:`chainproof.settings.Settings` would find nothing more; otherwise read-only
    commands load the full settings, and a bad value anywhere is reported as before. A TOML file
    that cannot be read counts as setting something (the full settings report it)."""
    fields = StoreSettings.model_fields
    for var in os.environ:
        name = var.lower()
        if name.startswith("chainproof_"):
            key = name.removeprefix("chainproof_").split("__", 1)[0]
            if key not in fields and key not in NOT_SETTINGS:
                return False
    toml_path = Path(os.environ.get("CHAINPROOF_CONFIG", "chainproof.toml"))
    if toml_path.is_file():
        import tomllib

        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return False
        return all(key in fields for key in data)
    return True


__all__ = ["NOT_SETTINGS", "ApprovalsSettings", "LogSettings", "StoreSettings", "TrustSettings", "only_store_settings_given"]
