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

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from chainproof._store_settings import StoreSettings
from chainproof.agents.config import LocalModelSettings, ModelSettings
from chainproof.agents.pricing import Price, default_prices
from chainproof.checkpoints.auth_settings import AuthSettings
from chainproof.checkpoints.reasoning_cache import DEFAULT_TTL_S
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.routing import RoutingSettings


class CacheSettings(BaseModel):
    """``[cache]``: the reasoning cache (``enabled``; entries live ``ttl_s`` seconds, default 24 h).
    A run can opt out (``--no-cache``), a graph per step or node (``ChainSpec.uncached``);
    zero-data-retention runs never use it (it stores model text)."""

    enabled: bool = True
    ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0)


QUEUE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A queue name: 1 to 64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit (so
never DBOS's own ``_dbos_...`` queues), e.g. ``chainproof-runs``."""


def check_queue_name(value: str) -> str:
    """``value`` when it matches :data:`QUEUE_NAME`; else ``ValueError`` saying what is expected."""
    import re

    if not isinstance(value, str) or not re.fullmatch(QUEUE_NAME, value):
        raise ValueError(f"expected a queue name of 1 to 64 letters, digits, '.', '_' or '-' starting with a letter "
                         f"or digit (not DBOS's own _dbos_ queues), got {value!r}")
    return value


class QueueLimits(BaseModel):
    """``[workers.queue_limits.NAME]``: limits on queue NAME that hold across every worker (DBOS
    keeps them with the queue in PostgreSQL and counts starts there).

    ``runs_per_period`` / ``period_s``: at most that many runs (workflows) start in any rolling
    window of ``period_s`` seconds (DBOS queue ``limiter``; e.g. 600 per 60 s = 600 runs/minute).
    ``global_concurrency``: at most that many runs of the queue advance at once on all workers
    together (DBOS ``global_concurrency``). Per-request model limits are ``model.rpm``/``tpm``."""

    runs_per_period: int | None = Field(default=None, ge=1)
    period_s: float = Field(default=60.0, gt=0)
    global_concurrency: int | None = Field(default=None, ge=1)


class WorkerSettings(BaseModel):
    """``[workers]``: runs submitted to DBOS queues in PostgreSQL and advanced by ``chainproof
    worker`` processes (``chainproof.workers``).

    ``queue``: the queue ``submit`` uses and workers listen to when none is named. The queues a
    run may be submitted to or a worker may listen to are ``queue`` and the names of
    ``queue_limits`` (a ``[workers.queue_limits.NAME]`` table declares queue NAME, even empty);
    names match :data:`QUEUE_NAME`. ``concurrency``:
    runs one worker advances at once (DBOS ``worker_concurrency``; default 10, LangGraph Platform's
    default of concurrent runs per instance); DBOS keeps it with the queue in the database, so the
    worker started last sets it for every worker on that queue. ``polling_interval_s``: how often
    a worker looks for runs (DBOS's default, 1 s). ``system_database_url``: DBOS's system database
    (default: ``database_url``, in its own ``dbos`` schema). ``executor_id``: this worker's name in
    DBOS (default ``HOST-PID``). ``shutdown_grace_s``: how long a stopping worker lets the runs it
    advances reach their next pause or end. ``queue_limits``: fleet-wide limits per queue name
    (:class:`QueueLimits`). ``scheduler_polling_interval_s``: how often a worker looks for new or
    removed schedules (``chainproof schedule``; DBOS's default, 30 s).
    ``heartbeat_s``: how often a worker records that it is
    alive; ``recovery_after_s``: how long a worker may be silent before another recovers its
    workflows (DBOS recovery of its executor id; :mod:`chainproof._heartbeats`). A dead worker's runs
    continue within about ``recovery_after_s + heartbeat_s``. The defaults (5 s, 30 s: six missed
    beats) are Chainproof's own choice: the issue names no figure; 30 s matches the run lock's
    TCP keepalive give-up time (``chainproof._locks``), after which a vanished host's lock is free.
    ``pool_size``: on PostgreSQL, the most connections each of a process's three pools opens (DBOS's
    system database ``sys_db_pool_size``, the LangGraph checkpointer's psycopg pool, the audit
    store's SQLAlchemy pool, no overflow); default ``2 + ceil(concurrency / 4)`` (5 at the default
    concurrency): a run holds a connection only for the statement it runs, so the N runs of a
    worker share a few (see :attr:`resolved_pool_size` and README "Running many runs", "Sizing")."""

    queue: str = Field(default="chainproof-runs", min_length=1)
    concurrency: int = Field(default=10, ge=1)
    polling_interval_s: float = Field(default=1.0, gt=0)
    system_database_url: str | None = None
    executor_id: str | None = None
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    queue_limits: dict[str, QueueLimits] = Field(default_factory=dict)
    scheduler_polling_interval_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=5.0, gt=0)
    recovery_after_s: float = Field(default=30.0, gt=0)
    pool_size: int | None = Field(default=None, ge=1)

    @property
    def resolved_pool_size(self) -> int:
        """``pool_size``, else ``2 + ceil(concurrency / 4)`` connections per pool."""
        return self.pool_size or 2 + -(-self.concurrency // 4)

    @field_validator("queue")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        return check_queue_name(value)

    @field_validator("queue_limits")
    @classmethod
    def _queue_names(cls, value: dict[str, QueueLimits]) -> dict[str, QueueLimits]:
        for name in value:
            check_queue_name(name)
        return value

    @property
    def known_queues(self) -> list[str]:
        """The declared queues: ``queue`` and the names of ``queue_limits``, sorted."""
        return sorted({self.queue, *self.queue_limits})


class WebSettings(BaseModel):
    """``[web]``: limits of ``chainproof serve`` (the CLI is not affected).

    ``input_dirs``: folders whose files and subfolders runs started from the web app may name in
    their path inputs (dossier, document, portfolio), besides the bundled dossiers and
    ``$CHAINPROOF_HOME/dossiers``, which are always allowed; default none. ``max_body_bytes``: the
    largest request body, in bytes (1 MiB; a larger one is refused with 413 before it is read).
    ``forwarded_allow_ips``: the addresses (a reverse proxy's) whose ``X-Forwarded-For`` /
    ``X-Forwarded-Proto`` uvicorn believes (its ``forwarded_allow_ips``); default none, so no client
    can pick the address sign-ins are throttled and recorded by (uvicorn's own default trusts
    127.0.0.1, i.e. every local client)."""

    input_dirs: list[Path] = Field(default_factory=list)
    max_body_bytes: int = Field(default=2**20, ge=1024)
    forwarded_allow_ips: list[str] = Field(default_factory=list)

    def input_roots(self, home: Path) -> list[Path]:
        """Every folder web-started runs may read: the bundled dossiers, ``home/dossiers`` and
        :attr:`input_dirs`."""
        from chainproof.tools.dossier import bundled_root

        return [bundled_root(), home / "dossiers", *self.input_dirs]


class Settings(StoreSettings):
    """All Chainproof settings; see the module docstring for sources and precedence. The home,
    storage URLs, ``budgets`` and ``secret_patterns`` are defined in
    :class:`chainproof._store_settings.StoreSettings` (what read-only commands load)."""

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
    cache: CacheSettings = Field(default_factory=CacheSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    graphs: list[str] = Field(
        default_factory=list,
        description="Extra graphs as 'package.module:attribute' paths (a ChainSpec subclass, instance or "
        "factory), on top of those registered through the 'chainproof.graphs' entry-point group.",
    )

    sec_user_agent: str | None = Field(
        default=None,
        description="'Name email' sent as the User-Agent to SEC EDGAR by `chainproof dossier fetch` (required: "
        "SEC fair-access policy, https://www.sec.gov/os/accessing-edgar-data).",
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


__all__ = ["CacheSettings", "Settings", "WebSettings", "WorkerSettings"]
