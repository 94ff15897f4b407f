"""Alembic environment for the audit store.

Chainproof runs migrations programmatically (``checkpoints.audit.upgrade_schema``) with an open
connection in ``config.attributes["connection"]``; the ``alembic`` CLI works too with
``-x url=sqlite:///path`` for autogenerate during development.
"""

from alembic import context
from sqlalchemy import create_engine

from chainproof.checkpoints.audit_schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///alembic-dev.sqlite")
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
