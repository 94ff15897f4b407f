"""Who is asking, and may they: authentication, CSRF, roles, run visibility, error mapping and
the security headers of every response.

* A request authenticates with ``Authorization: Bearer <API token>`` (scripts, the CLI) or the
  session cookie a sign-in set (``HttpOnly``, ``Secure``, ``SameSite=Strict``). A session request
  that changes state (any method but GET, HEAD, OPTIONS) must carry the session's CSRF token in
  the ``X-CSRF-Token`` header (OWASP's synchronizer token pattern); a bearer token needs none,
  since browsers never attach it on their own.
* Who sees a run: auditors and approvers every run (read-only for auditors), analysts the runs
  of their department (all with ``auth.analysts_see_all_runs``); admins manage accounts only.
* Errors are JSON ``{"error": TYPE, "detail": one line}``: 401 not signed in, 403 not allowed,
  404 unknown, 409 a refused decision or busy run, 422 bad input, 429 throttled sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from chainproof.checkpoints.accounts import AccountStore, Principal
from chainproof.errors import (
    ApprovalRefused,
    ApproverNotAllowed,
    ChainproofError,
    GraphNotFound,
    LoginThrottled,
    NotAuthenticated,
    NotPermitted,
    RunBusy,
    RunNotFound,
    RunNotResumable,
    UserError,
)

SESSION_COOKIE = "chainproof_session"
CSRF_COOKIE = "chainproof_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""The export page has inline CSS and no script at all; nothing else may load."""
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
"""The app's pages: scripts, styles and images from the app's own /static files only (no inline
script or style, no other origin); forms post to the app only."""


def accounts(request: Request) -> AccountStore:
    return request.app.state.accounts


def principal(request: Request) -> Principal:
    """The signed-in account of ``request`` (dependency). ``NotAuthenticated`` without valid
    credentials; ``NotPermitted`` for a session's state-changing request without its CSRF token."""
    store = accounts(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return store.authenticate(header[7:].strip(), "api")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated("credentials: sign in (POST /api/login) or send Authorization: Bearer <API token>")
    who = store.authenticate(cookie, "session")
    if request.method not in SAFE_METHODS and not store.check_csrf(who, request.headers.get(CSRF_HEADER)):
        raise NotPermitted(f"{CSRF_HEADER}: missing or wrong CSRF token for this session; nothing was changed")
    return who


def role(*roles: str) -> Callable[..., Principal]:
    """A dependency: the signed-in account, which must hold one of ``roles`` (else ``NotPermitted``)."""

    def check(who: Principal = Depends(principal)) -> Principal:
        if not who.has(*roles):
            raise NotPermitted(f"roles: this needs one of {', '.join(roles)}; {who.username} has "
                               f"{', '.join(sorted(who.roles)) or 'none'}")
        return who

    return check


def sees(who: Principal, run: Any, see_all: bool) -> bool:
    """Whether ``who`` may read ``run`` (a run header record); rules in the module docstring."""
    if who.has("auditor", "approver"):
        return True
    if who.has("analyst"):
        return see_all or (run.department is not None and run.department == who.department)
    return False


def _status(exc: Exception) -> int:
    if isinstance(exc, LoginThrottled):
        return 429
    if isinstance(exc, NotAuthenticated):
        return 401
    if isinstance(exc, NotPermitted | ApproverNotAllowed):
        return 403
    if isinstance(exc, RunNotFound | GraphNotFound):
        return 404
    if isinstance(exc, ApprovalRefused | RunBusy | RunNotResumable):
        return 409
    if isinstance(exc, UserError | ValueError | ValidationError | RequestValidationError):
        return 422
    return 500


def _line(exc: Exception) -> str:
    if isinstance(exc, ValidationError | RequestValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
    return str(exc).replace("\n", " ")


def install(app: FastAPI, page_error: Callable[[Request, int, str], Any] | None = None) -> None:
    """Register the error handlers and the security-header middleware on ``app``. ``page_error``
    (request, status, one-line detail) answers errors of the pages (paths outside ``/api/``)."""

    async def handle(request: Request, exc: Exception) -> Any:
        code = _status(exc)
        if page_error is not None and not request.url.path.startswith("/api/"):
            return page_error(request, code, _line(exc))
        headers = {"Retry-After": str(int(exc.retry_after_s) + 1)} if isinstance(exc, LoginThrottled) else None
        if code == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": type(exc).__name__, "detail": _line(exc)}, status_code=code, headers=headers)

    for kind in (ChainproofError, ValidationError, ValueError, RequestValidationError):
        app.add_exception_handler(kind, handle)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        html = response.headers.get("content-type", "").startswith("text/html")
        response.headers.setdefault("Content-Security-Policy", HTML_CSP if html else JSON_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "PAGE_CSP", "SESSION_COOKIE", "install", "principal", "role", "sees"]
