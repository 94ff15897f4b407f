"""``chainproof serve``: the web app's JSON API over the same stores as the CLI (FastAPI).

A shell over the public API: writes go through :class:`chainproof.app.Chainproof` (start,
decide, resume, fork, replay), reads through the ORM-free
:class:`chainproof.checkpoints.audit_read.AuditReader`; accounts through
:class:`chainproof.checkpoints.accounts.AccountStore`. Routes live in ``_routes_runs``
(graphs, runs, trace, step, events, verify, replay, export, costs, sla, resume, fork),
``_routes_decide`` (pending, decisions) and ``_routes_accounts`` (login, logout, me, tokens,
accounts, auth-events); authentication, CSRF and visibility in ``_security``; live events in
``_sse``; background advancing in ``_runner``. The OpenAPI schema is at ``/openapi.json``.
The pages (``_pages``: sign-in and shared machinery; ``_pages_runs``: runs, new run, live run,
costs; ``_pages_review``: approval inbox, trace; ``_pages_sla``: endpoint SLA) are Jinja2 templates over the same functions and
rules, with static files under ``/static``.

Needs the ``web`` extra: ``pip install "chainproof[web]"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from fastapi import FastAPI

    from chainproof.app import Chainproof


def create_app(engine: Chainproof | None = None, *, workers: int = 4) -> FastAPI:
    """The FastAPI app over ``engine`` (default: ``Chainproof()`` from the settings; opening it
    migrates the audit schema). ``workers``: threads advancing runs in the background. The engine
    is closed when the app shuts down only if the app created it."""
    from fastapi import FastAPI

    from chainproof.app import Chainproof
    from chainproof.checkpoints.accounts import AccountStore
    from chainproof.checkpoints.audit_read import AuditReader
    from chainproof.web import _pages, _routes_accounts, _routes_decide, _routes_runs, _security
    from chainproof.web._runner import Runner

    owned = engine is None
    engine = engine or Chainproof()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            app.state.runner.shutdown()
            app.state.reader.close()
            if owned:
                engine.close()

    app = FastAPI(title="Chainproof", version="1", lifespan=lifespan,
                  description="Start and watch runs, decide approvals as a signed-in account, audit the record.")
    app.state.engine = engine
    app.state.settings = engine.settings
    app.state.reader = AuditReader(engine.settings.resolved_database_url, migrate=False,
                                   trust=engine.settings.operator_trust())
    app.state.accounts = AccountStore(engine.audit.engine, engine.settings.auth)
    app.state.runner = Runner(workers)
    _security.install(app, page_error=_pages.page_error)
    for module in (_routes_accounts, _routes_runs, _routes_decide):
        app.include_router(module.router)
    _pages.install(app)
    return app


def exposure_warning(host: str) -> str | None:
    """The warning for listening on ``host`` beyond this machine (anything but a loopback address
    or ``localhost``), or None: the app speaks plain HTTP, so others must reach it through a
    reverse proxy with TLS (README, "Behind a reverse proxy with TLS")."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return None
    try:
        if ipaddress.ip_address(name).is_loopback:
            return None
    except ValueError:  # a host name: it may resolve to any interface
        pass
    return (f"warning: listening on {host}, beyond this machine, over plain HTTP: passwords, session cookies and "
            "run data would cross the network unencrypted (and Secure cookies are not sent over HTTP). Keep "
            "chainproof serve on 127.0.0.1 behind a reverse proxy with TLS (README: 'Behind a reverse proxy with TLS').")


def proxy_options(settings: Any) -> dict[str, Any]:
    """uvicorn's proxy-header options from ``web.forwarded_allow_ips``: ``X-Forwarded-For`` and
    ``-Proto`` are read only from the addresses listed there, none by default (uvicorn's own
    default, 127.0.0.1, would let every local client spoof the address sign-ins are throttled by)."""
    allowed = [str(ip) for ip in settings.web.forwarded_allow_ips]
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed}


def serve(host: str = "127.0.0.1", port: int = 8000, **uvicorn_options: Any) -> None:
    """Run the app with uvicorn on ``host:port`` until interrupted (127.0.0.1 by default: put a
    reverse proxy with TLS in front to serve others; cookies are ``Secure``). Any other host gets
    :func:`exposure_warning` on stderr first."""
    import sys

    import uvicorn

    warning = exposure_warning(host)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    uvicorn.run(create_app(), host=host, port=port, **uvicorn_options)


__all__ = ["create_app", "exposure_warning", "proxy_options", "serve"]
