"""The environment a test's child process starts from."""

from __future__ import annotations

import os

SUITE_SETTINGS = ("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE",)
"""``CHAINPROOF_*`` variables the whole suite sets (tests/conftest.py) that children keep: a store a
child creates takes the suite's creation-time options, as one the test process creates does."""


FLEET_PREFIX = "CHAINPROOF_TRUST__"
"""Variables children keep too: the operator key a test's fleet shares (the ``fleet_operator`` fixture)."""


def without_settings() -> dict[str, str]:
    """``os.environ`` without the test session's ``CHAINPROOF_*`` settings, except
    :data:`SUITE_SETTINGS` (a test that wants the product's defaults removes those itself)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("CHAINPROOF_") or k in SUITE_SETTINGS or k.startswith(FLEET_PREFIX)}


__all__ = ["FLEET_PREFIX", "SUITE_SETTINGS", "without_settings"]
