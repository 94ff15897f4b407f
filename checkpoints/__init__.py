"""Persistence: the LangGraph checkpointer factory (``saver``), the hash-chained audit store
(``audit``, ``audit_writer``, ``audit_schema``, ``audit_hashing``, ``audit_db``, Alembic
``migrations``), ``verify``, the JSON ``export`` and the reasoning cache's table. Used through
:mod:`chainproof`; importing this package imports nothing heavy."""

__all__: list[str] = []
