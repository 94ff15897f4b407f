"""The ``[auth]`` settings (:class:`AuthSettings`), kept apart from the account store
(:mod:`chainproof.checkpoints.accounts`, which re-exports it) so settings can load them cheaply."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AuthSettings(BaseModel):
    """``[auth]``: who may do what through the web app and the CLI.

    ``require_authenticated_approvers``: this caller requires a signed-in account for decisions
    (the CLI then refuses a bare ``--as`` and uses the token ``chainproof login`` stored); it can
    only tighten the store's own ``require_authenticated_approvers``, which an admin sets with
    ``chainproof policy set --store`` and which binds every caller; ``analysts_see_all_runs``: analysts
    see every department's runs, not only their own; ``session_ttl_s``: a browser session's life in
    seconds (8 h); ``login_max_failures`` failed sign-ins for one username from one client address
    within ``login_window_s`` seconds throttle that address for that username (5 in 15 min: OWASP
    Authentication Cheat Sheet, "Login Throttling"), ``login_max_failures_per_client`` failures from
    one address throttle the address (20: four accounts' worth; the module docstring); ``secure_cookies``:
    the ``Secure`` attribute on cookies (turn off only to try the app over plain http on 127.0.0.1)."""

    require_authenticated_approvers: bool = False
    analysts_see_all_runs: bool = False
    session_ttl_s: float = Field(default=8 * 3600, gt=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)
    login_window_s: float = Field(default=900, gt=0)
    secure_cookies: bool = True
