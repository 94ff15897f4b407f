"""Accounts, roles, sessions and API tokens, kept in the audit database.

The small interface the rest of Chainproof sees is :class:`Principal`: who is acting, with which
roles, signed in how. :meth:`chainproof.app.Chainproof.decide` takes one and records
:meth:`Principal.as_record` with the decision (a signature over the decision can be attached to
that record later without touching this module).

* Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` defaults, RFC 9106's
  second recommended option) and re-hashed on sign-in when those parameters change. A password
  must have at least 15 characters (NIST SP 800-63B-4, §3.1.1.2, for a password used alone).
* Sessions and API tokens are random secrets (``secrets.token_urlsafe(32)``: 256 bits) of the form
  ``cp<kind>_<credential id>_<secret>``; only the secret's SHA-256 is stored (a fast hash is enough
  for a high-entropy secret; OWASP Session Management Cheat Sheet), compared in constant time.
  Both can be revoked; sessions also expire (``auth.session_ttl_s``).
* Browser sessions carry a CSRF token (OWASP's synchronizer token pattern): stored hashed beside
  the session and checked on every state-changing request by the web app.
* Failed sign-ins are throttled per client address and account, and per client address, from the
  record itself (``auth_events``), across processes and restarts: after
  ``auth.login_max_failures`` failures for one username from one address within
  ``auth.login_window_s`` seconds, that address may not try that username, and after
  ``auth.login_max_failures_per_client`` failures from one address (any usernames: password
  spraying), that address may not sign in at all, until the oldest failure leaves the window.
  Someone else's failures never lock an account out for its owner at another address (the lockout
  denial of service of a per-account counter; OWASP Authentication Cheat Sheet, "Account
  Lockout"); django-axes throttles the same way with ``AXES_LOCKOUT_PARAMETERS =
  [["username", "ip_address"], "ip_address"]``. What this does not stop is guessing one account's
  password from many addresses at ``login_max_failures`` guesses per address and window; the
  15-character minimum password is what makes that hopeless.
* Usernames are case-insensitive: "Dana" and "dana" are one account (a second differing only in
  case is refused; signing in and every lookup ignore case; the account keeps the case it was
  created with).
* Every sign-in, failure, sign-out, token and account change is an ``auth_events`` row
  (:mod:`chainproof.checkpoints.auth_log`).
* Accounts and credentials are grants, countersigned by the operator key when written
  (:mod:`chainproof.checkpoints.grants`; ``OperatorKeyMissing`` without it) and refused
  (``GrantNotTrusted``) at sign-in and every session or token check when the countersignature does
  not verify: a database writer can add no account, role, password, session or token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, insert, select, update

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints import grants
from chainproof.checkpoints.auth_log import append_auth_event, aware, failures_since
from chainproof.checkpoints.auth_settings import AuthSettings
from chainproof.errors import InputError, LoginThrottled, NotAuthenticated, OperatorKeyMissing

ROLES = ("analyst", "approver", "auditor", "admin")
"""The app's roles: ``analyst`` starts and watches runs, ``approver`` decides (subject to each
graph's approval policy), ``auditor`` reads, verifies, replays and exports, ``admin`` manages
accounts. Other role names an account holds are policy roles (``role:credit-committee``)."""
MIN_PASSWORD_CHARS = 15
Via = Literal["session", "token", "password"]


@dataclass(frozen=True)
class Principal:
    """A signed-in account: ``username`` (what policies' ``approvers`` name), ``roles`` (app and
    policy roles), ``department`` (analysts see its runs), ``via`` (session, token or password) and
    the ``credential_id`` used."""

    account_id: str
    username: str
    display_name: str
    roles: frozenset[str]
    department: str | None
    via: Via
    credential_id: str | None = None

    def has(self, *roles: str) -> bool:
        """True when the account holds any of ``roles``."""
        return bool(self.roles & set(roles))

    def as_record(self) -> dict[str, Any]:
        """What a decision records about who made it (no secret)."""
        return {"account_id": self.account_id, "username": self.username, "via": self.via,
                "credential_id": self.credential_id, "roles": sorted(self.roles)}


@dataclass(frozen=True)
class Account:
    """An account as listed (never with its password hash)."""

    account_id: str
    username: str
    display_name: str
    roles: tuple[str, ...]
    department: str | None
    disabled: bool
    created_at: datetime


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    clean = sorted({r.strip() for r in roles if r.strip()})
    if not clean or not set(clean) & set(ROLES):
        raise InputError(f"roles: expected at least one of {', '.join(ROLES)} (policy roles may be added), got {list(roles)!r}")
    return clean


class AccountStore:
    """Accounts, credentials and their record in the audit database on ``engine`` (schema
    revision 0006 or later). Errors: ``InputError`` (bad username, password or roles; a duplicate
    or unknown account), ``NotAuthenticated`` (bad credentials), ``LoginThrottled``."""

    def __init__(self, engine: Engine, settings: AuthSettings | None = None):
        from argon2 import PasswordHasher

        self.engine = engine
        self.settings = settings or AuthSettings()
        self._hasher = PasswordHasher()
        self._dummy: str | None = None  # a hash to verify against for unknown usernames (same work)

    # ------------------------------------------------------------------ accounts
    def add(self, username: str, password: str, roles: list[str], *, display_name: str | None = None,
            department: str | None = None, actor: str | None = None) -> Account:
        """Create an account. ``username``: 1–100 characters without spaces, unique whatever the
        case; ``password``: at least :data:`MIN_PASSWORD_CHARS` characters."""
        username = username.strip()
        if not username or len(username) > 100 or any(c.isspace() for c in username):
            raise InputError(f"username: expected 1-100 characters without spaces, got {username!r}")
        if len(password) < MIN_PASSWORD_CHARS:
            raise InputError(f"password: expected at least {MIN_PASSWORD_CHARS} characters, got {len(password)}")
        clean = _check_roles(roles)
        same = self._matches(username)
        if same:
            raise InputError(f"username: an account {same[0]['username']!r} already exists (usernames ignore case)")
        row = {"account_id": uuid.uuid4().hex, "username": username, "display_name": display_name or username,
               "roles": clean, "department": department, "password_hash": self._hasher.hash(password),
               "disabled": False, "created_at": datetime.now(UTC)}
        row.update(grants.countersigned(self.engine, "accounts", row))
        with self.engine.begin() as conn:
            conn.execute(insert(t.accounts).values(**row))
        append_auth_event(self.engine, "account_added", username=username, actor=actor,
                          detail={"roles": clean, "department": department})
        return self._account(row)

    def accounts(self) -> list[Account]:
        """Every account, by username."""
        with self.engine.connect() as conn:
            return [self._account(dict(r._mapping)) for r in conn.execute(select(t.accounts).order_by(t.accounts.c.username))]

    def has_admin(self) -> bool:
        """Whether an enabled admin account countersigned by the operator key exists (the first one
        is made by ``chainproof users add``)."""
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(t.accounts))]
        return any("admin" in r["roles"] and not r["disabled"] and grants.is_trusted(self.engine, "accounts", r)
                   for r in rows)

    def _check_an_admin_remains(self, username: str) -> None:
        """Refuse to disable or demote ``username`` when it is the last enabled admin."""
        others = [a for a in self.accounts() if "admin" in a.roles and not a.disabled and a.username != username]
        if not others and any(a.username == username and "admin" in a.roles and not a.disabled for a in self.accounts()):
            raise InputError(f"username: {username!r} is the last enabled admin; make another account admin first "
                             "(chainproof users add NAME --role admin)")

    def get(self, username: str) -> Account:
        """The account ``username``; ``InputError`` when there is none."""
        row = self._row(username)
        if row is None:
            raise InputError(f"username: no account {username!r}")
        return self._account(row)

    def set_disabled(self, username: str, disabled: bool, *, actor: str | None = None) -> Account:
        """Disable or enable an account. Disabling also revokes its sessions and tokens for good
        (each recorded as ``logout`` / ``token_revoked``), so enabling it again brings none back.
        Raises ``InputError`` when it would leave no enabled admin (as Grafana and GitLab refuse to)."""
        account = self.get(username)
        if disabled:
            self._check_an_admin_remains(account.username)
        self._update(account.username, disabled=disabled)
        append_auth_event(self.engine, "account_disabled" if disabled else "account_enabled", username=account.username,
                          actor=actor)
        c = t.credentials.c
        with self.engine.connect() as conn:
            live = conn.execute(select(t.credentials).where(c.account_id == account.account_id,
                                                            c.revoked_at.is_(None))).all() if disabled else []
        for found in live:
            self._end(dict(found._mapping), account.username, actor, "account disabled")
        return self.get(account.username)

    def set_roles(self, username: str, roles: list[str], *, actor: str | None = None) -> Account:
        """Replace an account's roles (recorded with the roles before and after). Raises
        ``InputError`` when it would leave no enabled admin."""
        before = self.get(username)
        clean = _check_roles(roles)
        if "admin" not in clean:
            self._check_an_admin_remains(before.username)
        self._update(before.username, roles=clean)
        append_auth_event(self.engine, "roles_changed", username=before.username, actor=actor,
                          detail={"before": list(before.roles), "after": clean})
        return self.get(before.username)

    # ------------------------------------------------------------------ signing in
    def login(self, username: str, password: str, *, client: str | None = None) -> Principal:
        """Check a password (``username`` in any case) from the address ``client``. Raises
        ``LoginThrottled`` (nothing checked) while ``client`` is throttled for this username or
        altogether (module docstring), else ``NotAuthenticated`` for a wrong pair or a disabled
        account; all recorded."""
        self._check_throttle(username, client)
        row = self._row(username)
        if row is None and self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        ok = self._verify(row["password_hash"] if row else self._dummy or "", password) and row is not None
        if not ok or row is None or row["disabled"]:
            append_auth_event(self.engine, "login_failed", username=username,
                              detail={"client": client, "reason": "disabled" if ok else "bad credentials"})
            raise NotAuthenticated("username or password: not a valid sign-in")
        self._require(row)
        if self._hasher.check_needs_rehash(row["password_hash"]):
            self._rehash(row, password)
        append_auth_event(self.engine, "login", username=row["username"], detail={"client": client})
        return self._principal(row, "password", None)

    def _check_throttle(self, username: str, client: str | None) -> None:
        window, s = self.settings.login_window_s, self.settings
        failures = failures_since(self.engine, window, client)
        for_account = [when for when, tried in failures if tried == username.strip().casefold()]
        for times, limit, what in ((for_account, s.login_max_failures, f"for {username[:100]!r} from this address"),
                                   ([when for when, _ in failures], s.login_max_failures_per_client,
                                    "from this address")):
            if len(times) >= limit:
                oldest = times[len(times) - limit]  # the failure whose leaving the window frees a try
                retry = max(1.0, (oldest + timedelta(seconds=window) - datetime.now(UTC)).total_seconds())
                append_auth_event(self.engine, "login_throttled", username=username, detail={"client": client})
                raise LoginThrottled(f"username: too many failed sign-ins {what}; try again in {retry:.0f} s",
                                     retry_after_s=retry)

    def open_session(self, principal: Principal) -> tuple[str, str, Principal]:
        """A browser session for a signed-in ``principal``: ``(session secret, CSRF token, the
        session's principal)``; expires after ``auth.session_ttl_s``."""
        csrf = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.session_ttl_s)
        token, cid = self._issue(principal, "session", None, expires, csrf_hash=_sha(csrf))
        return token, csrf, self._principal(self._row(principal.username) or {}, "session", cid)

    def issue_token(self, principal: Principal, label: str | None = None) -> tuple[str, str]:
        """A new API token for ``principal``'s account: ``(token, credential id)``. The token is
        shown once; only its hash is kept. Recorded as ``token_issued``."""
        token, cid = self._issue(principal, "api", label, None)
        append_auth_event(self.engine, "token_issued", username=principal.username, actor=principal.username,
                          detail={"credential_id": cid, "label": label})
        return token, cid

    def authenticate(self, token: str, kind: Literal["session", "api"]) -> Principal:
        """The principal of a session or API ``token``; ``NotAuthenticated`` when it is malformed,
        unknown, revoked, expired or of a disabled account."""
        prefix = "cps" if kind == "session" else "cpt"
        parts = token.split("_", 2) if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != prefix:
            raise NotAuthenticated(f"{'session' if kind == 'session' else 'token'}: not a valid credential")
        c, a = t.credentials.c, t.accounts.c
        with self.engine.connect() as conn:
            found = conn.execute(select(t.credentials).where(c.credential_id == parts[1], c.kind == kind)).first()
            owner = conn.execute(select(t.accounts).where(a.account_id == found.account_id)).first() if found else None
        cred = dict(found._mapping) if found else None
        row = dict(owner._mapping) if owner else None
        if (cred is None or row is None or not hmac.compare_digest(cred["secret_hash"], _sha(parts[2]))
                or cred["revoked_at"] is not None or row["disabled"]
                or (cred["expires_at"] is not None and aware(cred["expires_at"]) <= datetime.now(UTC))):
            raise NotAuthenticated(f"{'session' if kind == 'session' else 'token'}: not a valid credential "
                                   "(unknown, expired or revoked; sign in again)")
        grants.require(self.engine, "credentials", cred)
        self._require(row)
        return self._principal(row, "session" if kind == "session" else "token", parts[1])

    def check_csrf(self, principal: Principal, csrf: str | None) -> bool:
        """Whether ``csrf`` is the CSRF token of ``principal``'s session (always False for others)."""
        if principal.via != "session" or not csrf or principal.credential_id is None:
            return False
        with self.engine.connect() as conn:
            stored = conn.scalar(select(t.credentials.c.csrf_hash).where(t.credentials.c.credential_id == principal.credential_id))
        return isinstance(stored, str) and hmac.compare_digest(stored, _sha(csrf))

    def revoke(self, credential_id: str, *, actor: Principal) -> None:
        """Revoke a session or token at once. Its owner or an admin may; ``InputError`` otherwise
        (and for an unknown id). Recorded as ``token_revoked`` or ``logout``."""
        c = t.credentials.c
        with self.engine.connect() as conn:
            found = conn.execute(select(t.credentials).where(c.credential_id == credential_id)).first()
        if found is None or (found.account_id != actor.account_id and not actor.has("admin")):
            raise InputError(f"credential_id: no token {credential_id!r} of yours")
        owner = next((a.username for a in self.accounts() if a.account_id == found.account_id), None)
        self._end(dict(found._mapping), owner, actor.username, None)

    def _end(self, row: dict[str, Any], owner: str | None, actor: str | None, reason: str | None) -> None:
        """Revoke credential ``row`` (if still live) and record it as ``logout`` or ``token_revoked``."""
        c = t.credentials.c
        if row["revoked_at"] is None:
            row["revoked_at"] = datetime.now(UTC)
            try:
                signed: dict[str, Any] = grants.countersigned(self.engine, "credentials", row)
            except OperatorKeyMissing:  # revoking never waits for the key: an uncountersigned row is refused anyway
                signed = {"countersignature": None, "operator_key_id": None}
            with self.engine.begin() as conn:
                conn.execute(update(t.credentials).where(c.credential_id == row["credential_id"], c.revoked_at.is_(None))
                             .values(revoked_at=row["revoked_at"], **signed))
        append_auth_event(self.engine, "logout" if row["kind"] == "session" else "token_revoked", username=owner,
                          actor=actor, detail={"credential_id": row["credential_id"], **({"reason": reason} if reason else {})})

    def tokens(self, principal: Principal) -> list[dict[str, Any]]:
        """The account's API tokens (id, label, created, revoked), never their secrets."""
        c = t.credentials.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.credential_id, c.label, c.created_at, c.revoked_at)
                                .where(c.account_id == principal.account_id, c.kind == "api").order_by(c.created_at))
            return [dict(r._mapping) for r in rows]

    # ------------------------------------------------------------------ helpers
    def _issue(self, principal: Principal, kind: str, label: str | None, expires: datetime | None,
               csrf_hash: str | None = None) -> tuple[str, str]:
        cid, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
        row: dict[str, Any] = {"credential_id": cid, "account_id": principal.account_id, "kind": kind, "label": label,
                               "secret_hash": _sha(secret), "csrf_hash": csrf_hash, "created_at": datetime.now(UTC),
                               "expires_at": expires, "revoked_at": None}
        row.update(grants.countersigned(self.engine, "credentials", row))
        with self.engine.begin() as conn:
            conn.execute(insert(t.credentials).values(**row))
        return f"{'cps' if kind == 'session' else 'cpt'}_{cid}_{secret}", cid

    def _require(self, row: dict[str, Any]) -> None:
        """``GrantNotTrusted`` unless account ``row`` is countersigned by a trusted operator key."""
        grants.require(self.engine, "accounts", row)

    def _update(self, username: str, **values: Any) -> None:
        """Change account ``username``'s ``values`` and countersign the row as changed."""
        row = self._row(username)
        if row is None:
            raise InputError(f"username: no account {username!r}")
        signed = grants.countersigned(self.engine, "accounts", {**row, **values})
        with self.engine.begin() as conn:
            conn.execute(update(t.accounts).where(t.accounts.c.account_id == row["account_id"]).values(**values, **signed))

    def _rehash(self, row: dict[str, Any], password: str) -> None:
        """Store ``password`` hashed with the current parameters, when the operator key is here to
        countersign the row (otherwise the old hash stays; it still verifies)."""
        try:
            self._update(row["username"], password_hash=self._hasher.hash(password))
        except OperatorKeyMissing:
            pass

    def _verify(self, hashed: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def _matches(self, username: str) -> list[dict[str, Any]]:
        """The accounts whose username equals ``username`` ignoring case (Unicode case folding,
        compared here rather than by the database's ``lower``, which is ASCII-only in SQLite)."""
        key = username.strip().casefold()
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t.accounts)) if r.username.casefold() == key]

    def _row(self, username: str) -> dict[str, Any] | None:
        """The account ``username`` names, ignoring case: the one spelled exactly so, else the one
        account equal to it ignoring case (None when there is none, or, in a store made before
        usernames ignored case, several that differ only in case and none spelled so)."""
        found = self._matches(username)
        exact = [r for r in found if r["username"] == username.strip()]
        return exact[0] if exact else found[0] if len(found) == 1 else None

    @staticmethod
    def _account(row: dict[str, Any]) -> Account:
        return Account(row["account_id"], row["username"], row["display_name"], tuple(row["roles"]),
                       row["department"], bool(row["disabled"]), aware(row["created_at"]))

    @staticmethod
    def _principal(row: dict[str, Any], via: Via, credential_id: str | None) -> Principal:
        return Principal(row["account_id"], row["username"], row["display_name"], frozenset(row["roles"]),
                         row["department"], via, credential_id)


__all__ = ["MIN_PASSWORD_CHARS", "ROLES", "Account", "AccountStore", "AuthSettings", "Principal"]
