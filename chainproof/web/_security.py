"""Who is asking, and may they: authentication, CSRF, roles, run visibility, error mapping and
the security headers of every response.

* A request authenticates with ``Authorization: Bearer <API token>`` (scripts, the CLI) or the
  session cookie a sign-in set (``HttpOnly``, ``Secure``, ``SameSite=Strict``). A session request
  that changes state (any method but GET, HEAD, OPTIONS) must carry the session's CSRF token in
  the ``X-CSRF-Token`` header (OWASP's synchronizer token pattern); a bearer token needs none,
  since browsers never attach it on their own.
* Who sees a run: auditors and approvers every run (read-only for auditors), analysts the runs
  they started and those of their department (all with ``auth.analysts_see_all_runs``); admins
  manage accounts only.
* Signing in (``POST /api/login`` and the sign-in form) is refused (403) when the browser says
  the request comes from another site: an ``Origin`` (else ``Referer``) header whose host is not
  the request's ``Host``, or ``Origin: null`` (OWASP CSRF Prevention Cheat Sheet, "Verifying
  Origin with Standard Headers"; login CSRF). A client that sends neither (a script) is not a
  browser acting for someone else and may sign in. Pages are sent with ``Referrer-Policy:
  same-origin`` so that the browser sends the real ``Origin`` with the app's own forms.
* Request bodies are limited to ``web.max_body_bytes`` (413, before the rest is read); text
  fields have their own limits (:data:`TEXT_MAX_CHARS`, :data:`NAME_MAX_CHARS`), and an error
  never echoes more than :data:`DETAIL_MAX_CHARS` characters of what was sent.
* Errors are JSON ``{"error": TYPE, "detail": one line}``: 401 not signed in, 403 not allowed,
  404 unknown, 409 a refused decision or busy run, 413 too large a body, 422 bad input, 429
  throttled sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from chainproof.checkpoints.accounts import AccountStore, Principal
from chainproof.checkpoints.redaction import redact
from chainproof.errors import (
    ApprovalRefused,
    ApproverNotAllowed,
    ChainproofError,
    GrantNotTrusted,
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


TEXT_MAX_CHARS = 4000
"""The longest free text a person types: a decision's comment or reason, a form field."""
NAME_MAX_CHARS = 200
"""The longest name: a graph, department, token label, display name, request id."""
DETAIL_MAX_CHARS = 1000
"""The longest error detail sent back (a value quoted in an error is cut, never echoed whole)."""


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


def from_this_site(request: Request) -> None:
    """Refuse (``NotPermitted``) a request a browser sent from another site: its ``Origin`` is
    ``null`` or names another host than ``Host``, or, without ``Origin``, its ``Referer`` does.
    Used on sign-in, where no session CSRF token exists yet (see the module docstring)."""
    from urllib.parse import urlsplit

    host = request.headers.get("host", "").lower()
    origin, referer = request.headers.get("origin"), request.headers.get("referer")
    source = origin if origin is not None else referer
    if source is None:
        return
    if source.strip().lower() == "null" or urlsplit(source.strip()).netloc.lower() != host:
        raise NotPermitted(f"{'Origin' if origin is not None else 'Referer'}: a sign-in from another site "
                           f"({source[:100]!r}) is refused; sign in on this site's own page")


def sees(who: Principal, run: Any, see_all: bool) -> bool:
    """Whether ``who`` may read ``run`` (a run header record); rules in the module docstring."""
    if who.has("auditor", "approver"):
        return True
    if who.has("analyst"):
        return (see_all or run.started_by == who.username
                or (run.department is not None and run.department == who.department))
    return False


def _status(exc: Exception) -> int:
    if isinstance(exc, LoginThrottled):
        return 429
    if isinstance(exc, NotAuthenticated):
        return 401
    if isinstance(exc, NotPermitted | ApproverNotAllowed | GrantNotTrusted):
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
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
    else:
        text = str(exc).replace("\n", " ")
    text = redact(text)  # it may quote what was sent (an edit's field or key): never a credential, and before the cut
    return text if len(text) <= DETAIL_MAX_CHARS else text[:DETAIL_MAX_CHARS] + "… (cut)"


class BodyLimit:
    """ASGI middleware: a request whose body is larger than ``max_bytes`` gets 413 (by its
    ``Content-Length`` before anything is read, else as soon as the streamed body passes it)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        await JSONResponse({"error": "BodyTooLarge", "detail": _TooLarge(self.max_bytes).detail}, status_code=413)(
            {"type": "http"}, _no_receive, send)


class _TooLarge(HTTPException):
    """Raised while the body is read (FastAPI passes an ``HTTPException`` through its body parsing)."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"body: larger than the {max_bytes:,} bytes a request may hold (setting web.max_body_bytes)")


async def _no_receive() -> Any:  # pragma: no cover - a JSONResponse never reads
    return {"type": "http.disconnect"}


def install(app: FastAPI, page_error: Callable[[Request, int, str], Any] | None = None) -> None:
    """Register the error handlers and the security-header middleware on ``app``. ``page_error``
    (request, status, one-line detail) answers errors of the pages (paths outside ``/api/``)."""

    redactor = app.state.settings.redactor  # an error may quote what was sent (a field, a key): no credential echoed

    async def handle(request: Request, exc: Exception) -> Any:
        code = _status(exc)
        detail = redactor(_line(exc))
        if page_error is not None and not request.url.path.startswith("/api/"):
            return page_error(request, code, detail)
        headers = {"Retry-After": str(int(exc.retry_after_s) + 1)} if isinstance(exc, LoginThrottled) else None
        if code == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": type(exc).__name__, "detail": detail}, status_code=code, headers=headers)

    for kind in (ChainproofError, ValidationError, ValueError, RequestValidationError):
        app.add_exception_handler(kind, handle)
    app.add_middleware(BodyLimit, max_bytes=app.state.settings.web.max_body_bytes)

    async def too_large(request: Request, exc: Exception) -> Any:
        return JSONResponse({"error": "BodyTooLarge", "detail": str(getattr(exc, "detail", exc))}, status_code=413)

    app.add_exception_handler(_TooLarge, too_large)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        html = response.headers.get("content-type", "").startswith("text/html")
        response.headers.setdefault("Content-Security-Policy", HTML_CSP if html else JSON_CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "DETAIL_MAX_CHARS", "NAME_MAX_CHARS", "PAGE_CSP", "SESSION_COOKIE",
           "TEXT_MAX_CHARS", "BodyLimit", "from_this_site", "install", "principal", "role", "sees"]
