"""Signing in and out, API tokens, accounts (admins) and the sign-in record (admins, auditors).

``POST /api/login`` sets the session cookie (``HttpOnly; Secure; SameSite=Strict``) and a CSRF
cookie the page's script reads (``Secure; SameSite=Strict``, not HttpOnly), and returns the CSRF
token, which every state-changing session request sends as ``X-CSRF-Token``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from chainproof.checkpoints.accounts import Principal
from chainproof.checkpoints.auth_log import auth_events, verify_auth_log
from chainproof.web._json import jsonable
from chainproof.web._security import CSRF_COOKIE, NAME_MAX_CHARS, SESSION_COOKIE, from_this_site, principal, role

router = APIRouter(prefix="/api", tags=["accounts"])
Me = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(role("admin"))]


PASSWORD_MAX_CHARS = 1024
"""The longest password accepted (argon2 hashes any length; this only bounds the work)."""
Name = Annotated[str, Field(max_length=NAME_MAX_CHARS)]


class Login(BaseModel):
    username: Name
    password: str = Field(repr=False, max_length=PASSWORD_MAX_CHARS)


class NewToken(BaseModel):
    label: Name | None = None


class NewAccount(BaseModel):
    username: Name
    password: str = Field(repr=False, max_length=PASSWORD_MAX_CHARS)
    roles: list[Name] = Field(max_length=50)
    display_name: Name | None = None
    department: Name | None = None


class AccountChange(BaseModel):
    roles: list[Name] | None = Field(default=None, max_length=50)
    disabled: bool | None = None


def _me(who: Principal) -> dict[str, Any]:
    return {"username": who.username, "display_name": who.display_name, "roles": sorted(who.roles),
            "department": who.department, "via": who.via}


@router.post("/login", summary="Sign in: session cookie and CSRF token")
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """403 for a sign-in a browser sent from another site (``_security.from_this_site``)."""
    from_this_site(request)
    store, secure = request.app.state.accounts, request.app.state.settings.auth.secure_cookies
    who = store.login(body.username, body.password, client=request.client.host if request.client else None)
    session, csrf, who = store.open_session(who)
    ttl = int(store.settings.session_ttl_s)
    response.set_cookie(SESSION_COOKIE, session, max_age=ttl, httponly=True, secure=secure, samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, secure=secure, samesite="strict", path="/")
    return {"account": _me(who), "csrf_token": csrf}


@router.post("/logout", summary="End this session (needs its CSRF token)")
def logout(request: Request, response: Response, who: Me) -> dict[str, Any]:
    if who.credential_id is not None and who.via == "session":
        request.app.state.accounts.revoke(who.credential_id, actor=who)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"signed_out": who.username}


@router.get("/me", summary="The signed-in account")
def me(who: Me) -> dict[str, Any]:
    return _me(who)


@router.post("/tokens", status_code=201, summary="A new API token (shown once)")
def new_token(body: NewToken, request: Request, who: Me) -> dict[str, Any]:
    token, cid = request.app.state.accounts.issue_token(who, body.label)
    return {"token": token, "credential_id": cid, "label": body.label}


@router.get("/tokens", summary="Your API tokens (never their secrets)")
def tokens(request: Request, who: Me) -> list[dict[str, Any]]:
    return jsonable(request.app.state.accounts.tokens(who))


@router.delete("/tokens/{credential_id}", summary="Revoke a token (yours; admins any)")
def revoke(credential_id: str, request: Request, who: Me) -> dict[str, Any]:
    request.app.state.accounts.revoke(credential_id, actor=who)
    return {"revoked": credential_id}


@router.get("/accounts", summary="Accounts (admins)")
def accounts(request: Request, who: Admin) -> list[dict[str, Any]]:
    return [jsonable({"username": a.username, "display_name": a.display_name, "roles": list(a.roles),
                      "department": a.department, "disabled": a.disabled, "created_at": a.created_at})
            for a in request.app.state.accounts.accounts()]


@router.post("/accounts", status_code=201, summary="Add an account (admins)")
def add_account(body: NewAccount, request: Request, who: Admin) -> dict[str, Any]:
    a = request.app.state.accounts.add(body.username, body.password, body.roles, display_name=body.display_name,
                                       department=body.department, actor=who.username)
    return {"username": a.username, "roles": list(a.roles), "department": a.department}


@router.patch("/accounts/{username}", summary="Change an account's roles, or disable / enable it (admins)")
def change_account(username: str, body: AccountChange, request: Request, who: Admin) -> dict[str, Any]:
    store = request.app.state.accounts
    account = store.get(username)
    if body.roles is not None:
        account = store.set_roles(username, body.roles, actor=who.username)
    if body.disabled is not None:
        account = store.set_disabled(username, body.disabled, actor=who.username)
    return {"username": account.username, "roles": list(account.roles), "disabled": account.disabled}


@router.get("/auth-events", summary="Sign-ins, failures, tokens, account changes; and their chain's verify result")
def events(request: Request, who: Annotated[Principal, Depends(role("admin", "auditor"))],
           username: str | None = None, after_seq: int = 0, limit: int = 200) -> dict[str, Any]:
    engine = request.app.state.accounts.engine
    check = verify_auth_log(engine)
    return jsonable({"verify": check.__dict__, "events": auth_events(engine, username=username, after_seq=after_seq,
                                                                        limit=limit)})


__all__ = ["router"]
