"""Credential redaction: what :class:`Redactor` removes from everything Chainproof writes.

Three pattern sets, applied to every string (recursively through dicts, lists and tuples):

1. **detect-secrets' published patterns** (Yelp's ``detect-secrets``, the ``denylist`` of the
   regex plugins in :data:`LIBRARY_PLUGINS`): AWS access key ids and quoted secret keys, Azure
   storage account keys, ``user:pass@`` URLs, GitHub, GitLab, Slack, Stripe, SendGrid, npm, PyPI,
   Square and Mailchimp tokens, JWT prefixes and OpenAI ``…T3BlbkFJ…`` keys. The whole match is
   redacted, or only its group 1 when that is the secret inside a context (the password of a
   URL, a quoted AWS secret key).
   Its plugins that cannot be prefiltered (no fixed text in their matches: Twilio, Discord,
   Telegram), that flag what is not a credential (public IP addresses, high-entropy strings,
   which would take every SHA-256 in the store) or that read source-code assignments line by
   line (``KeywordDetector``) are not used; :data:`OWN_PATTERNS` covers their credential forms.
2. **:data:`OWN_PATTERNS`**, for what detect-secrets matches only in part or not at all: whole PEM
   private-key blocks (its plugin matches the ``BEGIN`` line only), whole JWTs (its pattern stops
   before the signature), OpenAI ``sk-``/``sk-proj-`` and Anthropic ``sk-ant-`` keys, GitHub
   fine-grained ``github_pat_`` tokens, GCP API keys (``AIza…``) and OAuth tokens (``ya29.…``),
   Azure AD client secrets (``…8Q~…``) and SAS signatures (``sig=``), the password of any
   ``scheme://[user]:password@host`` URL whatever punctuation it holds, ``Bearer`` and ``Basic``
   authorization values (base64 included, to the last ``=``), and ``api_key=`` /
   ``Authorization:`` / ``password:`` / ``client_secret=`` … assignments.
3. the configured ``secret_patterns`` (regular expressions; the whole match is redacted).

``Bearer`` and ``Basic`` are also English words ("bearer bonds", "basic earnings per share"):
an ``Authorization:`` value is always redacted (after its scheme); elsewhere a Bearer value must
look like a token (a digit and 8 characters or more, or 20 characters or more) and a Basic value
must decode (base64) to ``user:password``.

Speed (the engine redacts every state update): a string, or a whole container's JSON text, that
holds none of :data:`MARKERS` holds no match of sets 1 and 2 (each of their matches contains a
marker) and is returned as it is, after one substring search per marker (about 35 µs per KiB on
2 cores, as fast as the one regular expression used before detect-secrets); a text holding
markers goes through the patterns of those markers only. detect-secrets is imported (about 0.4 s)
the first time a value holds a marker.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

REDACTED = "[REDACTED]"

_M = re.compile

LIBRARY_PLUGINS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("aws", "AWSKeyDetector", ("a3t", "abia", "acca", "akia", "asia", "aws")),
    ("azure_storage_key", "AzureStorageKeyDetector", ("accountkey",)),
    ("basic_auth", "BasicAuthDetector", ("://",)), ("github_token", "GitHubTokenDetector", ("gh",)),
    ("gitlab_token", "GitLabTokenDetector", ("gl", "gr1348941")), ("jwt", "JwtTokenDetector", ("eyj",)),
    ("openai", "OpenAIDetector", ("sk-",)), ("slack", "SlackDetector", ("xox", "hooks.slack")),
    ("stripe", "StripeDetector", ("k_live_",)), ("sendgrid", "SendGridDetector", ("sg.",)),
    ("npm", "NpmDetector", ("_authtoken",)), ("pypi_token", "PypiTokenDetector", ("pypi-",)),
    ("square_oauth", "SquareOAuthDetector", ("sq0csp-",)), ("mailchimp", "MailchimpDetector", ("-us",)),
)
"""``(module, class, markers)`` of the ``detect_secrets.plugins`` whose ``denylist`` is applied
(to a text holding one of the markers, see :data:`MARKERS`)."""

_TOKEN = r"[A-Za-z0-9._~+/\-]+=*"  # RFC 6750 b64token
_KEYWORDS = (r"api[_-]?key|x-api-key|secret[_-]?(?:access[_-]?)?key|client[_-]?secret|"
             r"access[_-]?token|auth[_-]?token|refresh[_-]?token|private[_-]?key|password|passwd|pwd")

OWN_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    # a PEM private key, BEGIN to END (or to the end of the text when it was cut short)
    (_M(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY((?: BLOCK)?)-----[\s\S]*?(?:-----END \1PRIVATE KEY\2-----|\Z)"), ("private",)),
    # a JWT, signature included (each literal first, then the word boundary: a literal prefix is fast)
    (_M(r"eyJ(?<![A-Za-z0-9_]eyJ)[A-Za-z0-9_\-]+=*\.[A-Za-z0-9_\-]+=*(?:\.[A-Za-z0-9_\-+/]*=*)?"), ("eyj",)),
    (_M(r"sk-(?<![A-Za-z0-9_]sk-)(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"), ("sk-",)),  # OpenAI, Anthropic
    (_M(r"github_pat_[A-Za-z0-9_]{40,}"), ("github_pat_",)),  # GitHub fine-grained personal access tokens
    (_M(r"AIza[0-9A-Za-z_\-]{35}"), ("aiza",)),  # GCP API keys
    (_M(r"ya29\.[0-9A-Za-z_\-]{20,}"), ("ya29.",)),  # GCP OAuth 2.0 access tokens
    (_M(r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}"), ("q~",)),  # Azure AD client secrets
)
"""Chainproof's own patterns whose whole match is a secret (see the module docstring), each with
its markers."""

OWN_ASSIGNMENTS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    # an Authorization header's value, after its scheme (Bearer, Basic, Token, …) if any
    (_M(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z][\w-]*\s+)?)[^\s\"',;}]{4,}"), ("authoriz",)),
    (_M(r"(?i)([?&;]sig=)[A-Za-z0-9%+/=]{16,}"), ("sig=",)),  # Azure shared access signatures
    # a URL's password (any scheme, user optional): up to the last "@" before the host, any
    # punctuation included (detect-secrets' pattern skips passwords holding ! $ # & …)
    # (bounded: a text of many "a://u:" without "/" or spaces must not take quadratic time)
    (_M(r"(?i)(\b[a-z][a-z0-9+.\-]{0,31}://[^\s/:@]{0,256}:)[^\s/]{1,256}(?=@[^\s/@])"), ("://",)),
    (_M(rf"(?i)((?:{_KEYWORDS})[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}}]{{6,}}"),
     ("api", "secret", "token", "private", "passw", "pwd")),
)
"""Chainproof's own patterns of a name (group 1, kept) and its secret value, with their markers."""

_BEARER = _M(rf"(?i)(\bbearer\s+)({_TOKEN})")
_BASIC = _M(r"(?i)(\bbasic\s+)([A-Za-z0-9+/]{4,}={0,2})")

_CONFIRMED: dict[str, re.Pattern[str] | None] = {  # markers whose text alone is common
    "api": _M(r"api[_-]?key"), "token": _M(r"(?:access|auth|refresh)[_-]?token"), "sk-": _M(r"sk-[a-z0-9_\-]{16}"),
    "gh": _M(r"gh[pousr]_"), "gl": _M(r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-"),
    "-us": _M(r"-us\d"), "://": _M(r"://[^\s/@]{1,256}@"),
}
MARKERS: dict[str, re.Pattern[str] | None] = {
    **{marker: None for _, _, markers in LIBRARY_PLUGINS for marker in markers},
    **{marker: None for _, markers in (*OWN_PATTERNS, *OWN_ASSIGNMENTS) for marker in markers},
    "bearer": None, "basic": None, **_CONFIRMED}
"""Marker -> confirming pattern (or None): every match of a built-in pattern holds one of its
rule's markers (in lower case) where the confirming pattern, if any, also matches. A superset: a
hit only means that rule's patterns run."""


def _markers_in(low: str, first_only: bool = False) -> set[str]:
    found = set()
    for marker, confirm in MARKERS.items():
        if marker in low and (confirm is None or confirm.search(low)):
            found.add(marker)
            if first_only:
                break
    return found


def may_hold_secret(text: str) -> bool:
    """Whether ``text`` may hold a match of a built-in pattern (False: it holds none): one
    substring search per marker in the lower-cased text, a pattern search only after a hit."""
    return bool(_markers_in(text.lower(), first_only=True))


def _looks_like_token(token: str) -> bool:
    return len(token) >= 20 or (len(token) >= 8 and any(c.isdigit() for c in token))


def _decodes_to_credentials(value: str) -> bool:
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


def _redact_bearer(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED if _looks_like_token(match.group(2)) else match.group(0)


def _redact_basic(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED if _decodes_to_credentials(match.group(2)) else match.group(0)


def _whole(_match: re.Match[str]) -> str:
    return REDACTED


def _after_name(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _library(match: re.Match[str]) -> str:
    """A detect-secrets match redacted: only group 1 when it is the secret inside a context (it
    starts after the match does and only punctuation follows it: the password of a URL, a quoted
    AWS secret key), else the whole match (its groups may be a token's prefix, as GitHub's)."""
    if match.re.groups and match.group(1) and match.start(1) > match.start(0):
        tail = match.string[match.end(1):match.end(0)]
        if not any(c.isalnum() for c in tail):
            return match.string[match.start(0):match.start(1)] + REDACTED + tail
    return REDACTED


_Rule = tuple[frozenset[str], tuple[re.Pattern[str], ...], Callable[[re.Match[str]], str]]


@functools.cache
def _rules() -> tuple[_Rule, ...]:
    """Every built-in pattern with its markers and replacement, in the order applied (whole PEM
    blocks and JWTs first: a library pattern would take a part of them). Imports detect-secrets."""
    library: list[_Rule] = []
    for module, name, markers in LIBRARY_PLUGINS:
        plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
        library.append((frozenset(markers), tuple(plugin.denylist), _library))
    own: list[_Rule] = [(frozenset(m), (p,), _whole) for p, m in OWN_PATTERNS]
    return (*own[:2], *library, *own[2:], *[(frozenset(m), (p,), _after_name) for p, m in OWN_ASSIGNMENTS],
            (frozenset({"bearer"}), (_BEARER,), _redact_bearer), (frozenset({"basic"}), (_BASIC,), _redact_basic))


def _redact_text(text: str, extra: tuple[re.Pattern[str], ...]) -> str:
    found = _markers_in(text.lower())
    if found:
        for markers, patterns, replace in _rules():
            if markers & found:
                for pattern in patterns:
                    text = pattern.sub(replace, text)
    for pattern in extra:
        text = pattern.sub(REDACTED, text)
    return text


def redact(value: Any, extra_patterns: tuple[re.Pattern[str], ...] = ()) -> Any:
    """Return ``value`` with every credential the built-in patterns find, and every match of
    ``extra_patterns``, replaced by ``[REDACTED]`` in every string, recursively through dicts,
    lists and tuples (keys are left alone). Copy on write: ``value`` itself when nothing in it
    matched, else a copy (a plain ``dict``, ``list`` or ``tuple``) of each container on the way to
    a redacted string; the caller's value is never modified.

    With only the built-in patterns, a container is first scanned as one JSON text (C encoder);
    one in which :data:`MARKERS` finds nothing is returned as it is."""
    if not extra_patterns and isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(value, ensure_ascii=False, default=_opaque)
        except (TypeError, ValueError):  # keys JSON cannot hold, a cycle: walk the value
            text = None
        if text is not None and not may_hold_secret(text):
            return value
    return _redact(value, extra_patterns)


def _opaque(_obj: Any) -> None:
    return None  # redact() does not look inside objects other than dicts, lists and tuples


def _redact(value: Any, extra: tuple[re.Pattern[str], ...]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, extra)
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for k, v in value.items():
            r = _redact(v, extra)
            if r is not v:
                if changed is None:
                    changed = dict(value)
                changed[k] = r
        return value if changed is None else changed
    if isinstance(value, (list, tuple)):
        items = [_redact(v, extra) for v in value]
        if all(r is v for r, v in zip(items, value)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


class Redactor:
    """The secret patterns in force: the built-in ones (see the module docstring) plus configured
    ``extra`` regular expressions. Calling it redacts a value like :func:`redact`. Raises
    ``ValueError`` naming ``secret_patterns[i]`` for an extra pattern that is not a valid regular
    expression."""

    def __init__(self, extra: Iterable[str | re.Pattern[str]] = ()):
        patterns = []
        for i, p in enumerate(extra):
            try:
                patterns.append(p if isinstance(p, re.Pattern) else re.compile(p))
            except re.error as exc:
                raise ValueError(f"secret_patterns[{i}]: {p!r} is not a valid regular expression ({exc})") from None
        self.extra: tuple[re.Pattern[str], ...] = tuple(patterns)

    def __call__(self, value: Any) -> Any:
        return redact(value, self.extra)


__all__ = ["LIBRARY_PLUGINS", "MARKERS", "OWN_ASSIGNMENTS", "OWN_PATTERNS", "REDACTED", "Redactor", "may_hold_secret",
           "redact"]
