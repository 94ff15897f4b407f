"""Opening the audit database: engines, the schema revision check and Alembic migrations.

Read-only commands check that the schema is current (:func:`check_schema`: one ``SELECT`` of the
``alembic_version`` row, compared with :data:`HEAD_REVISION`) instead of running migrations, so
they neither import Alembic nor take its locks. Migrations (:func:`upgrade_schema`) run when a
store is created, on write commands, and from ``chainproof db upgrade``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.pool import StaticPool

from chainproof.errors import SchemaOutdated

MEMORY_URL = "sqlite:///:memory:"

#: The newest Alembic revision in ``checkpoints/migrations/versions``; a test checks that it
#: equals Alembic's head, so a new migration cannot be added without updating it.
HEAD_REVISION = "0011"

#: Ordered revisions this code knows, oldest first (to tell "older" from "newer than this code").
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011")


def normalise_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> ``postgresql+psycopg://`` (psycopg 3); else unchanged."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, pool_size: int | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, a 30 s busy timeout and ``BEGIN IMMEDIATE`` transactions
    (so two processes appending to one run serialise instead of failing). PostgreSQL connections
    are named ``chainproof-audit`` (``pg_stat_activity.application_name``); ``pool_size``: at most
    that many, no overflow (a thread waits up to 30 s for one; default: SQLAlchemy's 5 + 10)."""
    url = normalise_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        from chainproof._private_files import private_file

        private_file(url.removeprefix("sqlite:///"))  # 0600 in a 0700 folder when Chainproof creates it
    if url in (MEMORY_URL, "sqlite://"):
        # one shared connection, or every checkout would see its own empty database
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.startswith("postgresql"):
        sized = {"pool_size": pool_size, "max_overflow": 0} if pool_size else {}
        engine = create_engine(url, connect_args={"application_name": "chainproof-audit"}, **sized)
    else:
        engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling is turned off so BEGIN IMMEDIATE can be issued
        # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL with synchronous=NORMAL (https://www.sqlite.org/pragma.html#pragma_synchronous):
            # a commit survives the process being killed at any point, and the database stays
            # consistent after a power loss, which may drop the last commits; the commit no
            # longer waits for an fsync. The checkpointer keeps SQLite's default (FULL).
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover - trivial
            # on the DB-API connection: the same statement without a Core execution around it
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")

    return engine


def upgrade_schema(engine: Engine, *, require_signature: bool = True, trust: Any = None) -> None:
    """Bring the database to the newest Alembic revision (idempotent). Imports Alembic. On
    PostgreSQL the upgrade holds a transaction-level advisory lock, so processes opening a new
    database at once (workers starting together) migrate it one after the other instead of racing
    to create the same tables.

    ``require_signature``: whether a store this call *creates* (an empty database) requires signed
    decisions by default: the creator's ``approvals.require_signature`` setting, recorded once in
    ``store_settings`` (revision 0010), like an ``initdb`` option. It is ignored for a store that
    exists: an older store is recorded as not requiring them, and afterwards only an admin changes
    it (``chainproof policy set --store``).

    ``trust``: the creator's :class:`~chainproof.checkpoints.grants.OperatorTrust`. A store this
    call creates has its initial ``store_settings`` rows countersigned with the operator key, which
    is created (``trust.key_file``, 0600) when there is none yet: the creator of a store is its
    first operator (README "Threat model"). Without ``trust`` they stay uncountersigned (refused
    until ``chainproof keys anchor``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('chainproof-audit-migrate'))"))
        found = inspect(conn)
        cfg.attributes["store_created"] = not found.has_table("alembic_version") and not found.has_table("runs")
        cfg.attributes["require_signature"] = require_signature
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if cfg.attributes["store_created"] and trust is not None:
            _countersign_created(conn, trust)


def _countersign_created(conn: Any, trust: Any) -> None:
    """Countersign the ``store_settings`` rows a store's creation wrote (on ``conn``, in its transaction)."""
    from sqlalchemy import select, update

    from chainproof.checkpoints.audit_tables import store_settings

    trust.private_key(create=True)
    for row in conn.execute(select(store_settings)).mappings().all():
        conn.execute(update(store_settings).where(store_settings.c.id == row["id"])
                     .values(**trust.countersign("store_settings", row)))


def schema_revision(engine: Engine) -> str | None:
    """The database's Alembic revision (the ``alembic_version`` row), or None when the database
    has no ``alembic_version`` table (a new, empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_schema(engine: Engine, url: str, *, require_signature: bool = True, trust: Any = None) -> None:
    """Make sure the schema is the one this code reads, without running migrations.

    A database without tables (never used) is created at the head revision (that is creating a
    store, not migrating one; ``require_signature`` as for :func:`upgrade_schema`). Raises :class:`chainproof.errors.SchemaOutdated` (exit 2) naming
    the database, its revision and the command that fixes it when the revision is older than
    :data:`HEAD_REVISION`, or newer than this code knows."""
    found = schema_revision(engine)
    if found == HEAD_REVISION:
        return
    if found is None:
        with engine.connect() as conn:
            empty = not inspect(conn).get_table_names()
        if empty:
            upgrade_schema(engine, require_signature=require_signature, trust=trust)
            return
    where = f"the audit store {url!r} (CHAINPROOF_DATABASE_URL)"
    if found in KNOWN_REVISIONS or found is None:
        raise SchemaOutdated(f"{where} has schema revision {found or 'none'}, this Chainproof reads {HEAD_REVISION}; "
                             f"upgrade it with: chainproof db upgrade")
    raise SchemaOutdated(f"{where} has schema revision {found!r}, newer than this Chainproof knows ({HEAD_REVISION}); "
                         f"upgrade Chainproof (pip install -U chainproof)")


__all__ = ["HEAD_REVISION", "KNOWN_REVISIONS", "MEMORY_URL", "check_schema", "make_engine", "normalise_url",
           "schema_revision", "upgrade_schema"]
