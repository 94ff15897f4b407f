"""The pages' shared machinery: templates, who is signed in, CSRF on forms, errors as pages, and
signing in and out.

* Templates are Jinja2 files in ``chainproof/web/templates`` with autoescaping on for every
  template, so recorded text (model output, tool results, comments, edited fields) is always
  shown as text; static files (CSS, the live-run script) are served from ``/static``. Pages are
  sent with :data:`~chainproof.web._security.PAGE_CSP`: no inline script or style at all.
* A page authenticates with the session cookie only (the same session as the JSON API; a
  missing or expired one redirects to ``/login?next=PATH``). Roles and run visibility are the
  API's (``_security.sees``, ``_routes_runs.visible_run``).
* Every form that changes state posts the session's CSRF token as the hidden field ``csrf``
  (the value of the ``chainproof_csrf`` cookie set at sign-in), checked like the API's
  ``X-CSRF-Token`` header; a post without it is refused (403) and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined

from chainproof.checkpoints.accounts import Principal
from chainproof.errors import GrantNotTrusted, InputError, LoginThrottled, NotAuthenticated, NotPermitted
from chainproof.web._security import (
    CSRF_COOKIE,
    NAME_MAX_CHARS,
    PAGE_CSP,
    SESSION_COOKIE,
    TEXT_MAX_CHARS,
    from_this_site,
)

router = APIRouter(include_in_schema=False)
_ENV = Environment(loader=PackageLoader("chainproof.web", "templates"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def _when(value: Any) -> str:
    if not value:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(value: Any) -> str:
    """A recorded value as text: strings as they are, anything else as indented JSON."""
    import json

    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


_ENV.filters.update(when=_when, shown=_shown)


def render(request: Request, template: str, status: int = 200, who: Principal | None = None, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``me`` (the signed-in account or None) and
    ``csrf`` (the session's CSRF token for forms), sent with the pages' CSP."""
    html = _ENV.get_template(template).render(me=who, csrf=request.cookies.get(CSRF_COOKIE, ""),
                                              path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": PAGE_CSP})


def viewer(request: Request) -> Principal:
    """The account of the request's session cookie (dependency); ``NotAuthenticated`` without one."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated("session: sign in first")
    return request.app.state.accounts.authenticate(cookie, "session")


def need(who: Principal, *roles: str) -> Principal:
    """``who`` if it holds one of ``roles``, else ``NotPermitted`` naming them."""
    if not who.has(*roles):
        raise NotPermitted(f"roles: this page needs one of {', '.join(roles)}; {who.username} has "
                           f"{', '.join(sorted(who.roles)) or 'none'}")
    return who


JSON_FIELDS = frozenset({"edited", "inputs_json"})
"""Form fields holding a whole JSON document: limited by the request body limit only."""


async def posted(request: Request) -> dict[str, str]:
    """The posted form's text fields (dependency; the last value of a repeated name wins).
    ``InputError`` naming the field and the limit for a field longer than
    :data:`~chainproof.web._security.TEXT_MAX_CHARS` characters (but :data:`JSON_FIELDS`)."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    for name, value in fields.items():
        if len(value) > TEXT_MAX_CHARS and name not in JSON_FIELDS:
            raise InputError(f"{name[:NAME_MAX_CHARS]}: at most {TEXT_MAX_CHARS:,} characters, got {len(value):,}")
    return fields


Form = Annotated[dict[str, str], Depends(posted)]


def poster(request: Request, form: dict[str, str]) -> Principal:
    """The session's account for a state-changing form, whose ``csrf`` field must be the
    session's CSRF token (``NotPermitted`` otherwise: nothing is changed)."""
    who = viewer(request)
    if not request.app.state.accounts.check_csrf(who, form.get("csrf")):
        raise NotPermitted("csrf: missing or wrong CSRF token for this session; nothing was changed")
    return who


def page_error(request: Request, status: int, detail: str) -> Response:
    """An error on a page: to the sign-in page when not signed in, else the error page."""
    if status == 401:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    who = None
    try:
        who = viewer(request)
    except NotAuthenticated:
        pass
    return render(request, "error.html", status, who, code=status, detail=detail)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://...``: no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/runs"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    """Sign in with the form's username and password: the API's session and CSRF cookies, then to ``next``."""
    from_this_site(request)  # 403 for a sign-in sent from another site (login CSRF)
    store, secure = request.app.state.accounts, request.app.state.settings.auth.secure_cookies
    username, target = form.get("username", ""), _safe_next(form.get("next"))
    try:
        who = store.login(username, form.get("password", ""), client=request.client.host if request.client else None)
    except (NotAuthenticated, LoginThrottled, GrantNotTrusted) as exc:
        code = 429 if isinstance(exc, LoginThrottled) else 403 if isinstance(exc, GrantNotTrusted) else 401
        return render(request, "login.html", code, next=target, error=str(exc), username=username)
    session, csrf, who = store.open_session(who)
    ttl = int(store.settings.session_ttl_s)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, session, max_age=ttl, httponly=True, secure=secure, samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, secure=secure, samesite="strict", path="/")
    return response


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    who = poster(request, form)
    if who.credential_id is not None:
        request.app.state.accounts.revoke(who.credential_id, actor=who)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


def install(app: FastAPI) -> None:
    """Mount the static files and every page router on ``app``."""
    from importlib.resources import files

    from chainproof.web import _pages_review, _pages_runs, _pages_sla

    app.mount("/static", StaticFiles(directory=str(files("chainproof.web") / "static")), name="static")
    for module in (_pages_runs, _pages_review, _pages_sla):
        app.include_router(module.router)
    app.include_router(router)


__all__ = ["Form", "install", "need", "page_error", "poster", "render", "viewer"]
