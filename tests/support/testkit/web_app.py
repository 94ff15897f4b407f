"""A web app over a scripted toy graph, with one account per role (the fixture `web` of tests/web)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.auth_settings import AuthSettings
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from chainproof.web import create_app
from testkit.toy_graph import ToyGraph

PASSWORD = "correct horse battery staple"
SCRIPT = "<script>alert('x')</script>"
YES = json.dumps({"verdict": "yes", "reason": "the doubled square is large"})
YES_MARKUP = json.dumps({"verdict": "yes", "reason": f"the doubled square is large {SCRIPT}"})
API_KEY = "sk-test-WEBSECRET0123456789abcdef"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)", re.I)


def safe_page(page: Any, status: int = 200) -> str:
    """The page's HTML, asserting its status, the pages' CSP and that no recorded markup became a tag."""
    assert page.status_code == status, page.text[-2000:]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert SCRIPT not in page.text and not INLINE_SCRIPT.search(page.text)
    return page.text


def _square(x: int) -> dict[str, Any]:
    return {"x": x, "squared": x * x, "note": f"tool says {SCRIPT}"}


def _double(squared: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": squared["squared"] * 2}


class WebToyInputs(BaseModel):
    """The web toy's input: the new-run page generates its form from this schema."""

    x: int = Field(description="the number to square")


class WebToy(ToyGraph):
    """The toy chain whose first tool result and proposed reason carry markup (they must come
    back as text)."""

    name = "web-toy"
    inputs_model = WebToyInputs

    def tools(self):
        return [StructuredTool.from_function(_square, name="square", description="square x"),
                StructuredTool.from_function(_double, name="double", description="double a squared result")]


register("web-toy", WebToy)
ROLES = {"ana": (["analyst"], "M&A"), "bob": (["analyst"], "Treasury"), "dana": (["approver"], None),
         "lee": (["approver", "credit-committee"], None), "aud": (["auditor"], None), "root": (["admin"], None)}


class Web:
    """The app, its engine and a signed-in client per account name."""

    def __init__(self, app: Any, engine: Chainproof):
        self.app, self.engine, self.clients = app, engine, {}

    def page(self, name: str | None = None) -> TestClient:
        """A browser-like client signed in through the sign-in page (no redirects followed);
        ``csrf`` holds its session's CSRF token for forms."""
        c = TestClient(self.app, base_url="https://testserver", raise_server_exceptions=False, follow_redirects=False)
        if name is not None:
            r = c.post("/login", data={"username": name, "password": PASSWORD, "next": "/runs"})
            assert r.status_code == 303 and r.headers["location"] == "/runs", r.text
            c.csrf = c.cookies["chainproof_csrf"]  # type: ignore[attr-defined]
        return c

    def client(self, name: str | None = None) -> TestClient:
        c = TestClient(self.app, base_url="https://testserver", raise_server_exceptions=False)
        if name is not None:
            r = c.post("/api/login", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    def wait(self, client: TestClient, run_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = client.get(f"/api/runs/{run_id}")
            if r.status_code == 200 and r.json()["status"] in statuses:
                job = self.app.state.runner.jobs.get(run_id)
                if job is not None and job.future is not None and r.json()["status"] in ("paused", "completed", "failed"):
                    job.future.result(timeout=max(1.0, deadline - time.monotonic()))  # and its worker let go of the run
                return r.json()
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not reach {statuses}: {client.get(f'/api/runs/{run_id}').text}")


def _replies() -> list[str]:
    return ["The square.", "The double.", f"Large {SCRIPT}.", YES_MARKUP] * 20


@pytest.fixture
def web(home, monkeypatch) -> Any:
    policy = ApprovalPolicy(approvers=["dana", "role:credit-committee"])
    settings = Settings(home=home, auth=AuthSettings(login_max_failures=3), approval_policies={"web-toy": policy},
                        model={"api_key": API_KEY})
    engine = Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=_replies())))
    app = create_app(engine, workers=2)
    for name, (roles, department) in ROLES.items():
        app.state.accounts.add(name, PASSWORD, roles, department=department, actor="test")
    yield Web(app, engine)
    app.state.runner.shutdown()
    app.state.reader.close()
    engine.close()


def start(web: Web, client: TestClient, x: int = 7, **extra: Any) -> str:
    r = client.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": x}, **extra})
    assert r.status_code == 202, r.text
    return r.json()["run_id"]
