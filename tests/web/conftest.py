"""The ``web`` fixture: the app over a scripted toy graph with one account per role."""

from testkit.web_app import web  # noqa: F401 - a fixture
