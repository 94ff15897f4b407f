"""Text that came from a model, a tool or a person, made safe to show: control characters and
ANSI escape sequences stripped (a terminal would obey them: recolour, hide or overwrite lines,
set the window title, make links), HTML escaped for Markdown reports.

:class:`SafeConsole` is the CLI's Rich console: it strips them from every piece of text it prints,
while its own styling stays.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

# ECMA-48: CSI (ESC [ … final), OSC/DCS/SOS/PM/APC strings (to BEL or ST), two-character escapes,
# then every other C0 control but tab and newline, DEL and the C1 controls
_CONTROLS = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)|\x9b[0-?]*[ -/]*[@-~]?"
                       r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without control characters and escape sequences (tab and newline kept)."""
    return _CONTROLS.sub("", text)


def for_markdown(value: Any) -> Any:
    """``value`` with every string (dict keys included, recursively through dicts, lists and
    tuples) stripped of control characters and HTML-escaped (``&``, ``<``, ``>``), so a Markdown
    report built from it shows what a model, a tool or a person wrote as text and never as markup
    (``<script>``, ``<img onerror>``). Quotes stay: without ``<`` no tag or attribute can open."""
    if isinstance(value, str):
        return html.escape(strip_controls(value), quote=False)
    if isinstance(value, dict):
        return {for_markdown(k): for_markdown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(for_markdown(v) for v in value)
    return value


class SafeConsole(Console):
    """A Rich console whose printed text never carries control characters or escape sequences
    of its own (:func:`strip_controls`); the console's styles and control codes are unchanged.
    Strings are cleaned when they become text (so tables measure what is shown), and every
    segment again on output (text built as ``rich.text.Text`` directly)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(strip_controls(text), **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(strip_controls(segment.text), segment.style)
            for segment in buffer)


__all__ = ["SafeConsole", "for_markdown", "strip_controls"]
