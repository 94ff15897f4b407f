"""Every exception Chainproof raises on purpose, under two roots.

* :class:`UserError` (exit code 2): the input, the settings or the request is wrong, and nothing
  was lost; the message names the field or setting, what was found and what was expected, and
  often the command that fixes it. Fix the input and call again.
* :class:`RunError` (exit code 1): a run could not go on (a model endpoint gave up, the model gave
  no valid answer, a replay diverged). The run is recorded as failed and keeps its checkpoint, so
  ``chainproof resume RUN_ID`` continues it once the cause is gone.

Anything else that escapes Chainproof is a bug. The CLI prints such errors as an internal error
with exit code 1 (``CHAINPROOF_DEBUG=1`` shows the traceback) rather than passing them off as bad
input.

The split follows PydanticAI's ``UserError`` / ``AgentRunError`` (``pydantic_ai/exceptions.py``).
Each class also keeps the builtin base it had before (``ValueError``, ``LookupError``,
``RuntimeError``), so existing ``except ValueError`` code still catches what it caught.

This module imports nothing from Chainproof, so every layer may raise its errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.checkpoints.audit_read import Record

__all__ = [
    "AlreadyDecided",
    "ApprovalRefused",
    "ApproverNotAllowed",
    "AuditError",
    "BudgetUnenforceable",
    "ChainproofError",
    "CircuitOpen",
    "ConfigError",
    "FieldTooLong",
    "InputFileError",
    "CostBudgetExceeded",
    "DossierError",
    "EdgarUnavailable",
    "GrantNotTrusted",
    "GraphNotFound",
    "HeadRefused",
    "InputError",
    "LocalModelUnavailable",
    "LogInconsistent",
    "LoginThrottled",
    "MalformedResponse",
    "ModelCallFailed",
    "NotAuthenticated",
    "NotPermitted",
    "NotRetained",
    "OperatorKeyMissing",
    "PlanError",
    "RateLimitWaitTooLong",
    "RecordTampered",
    "RecordUndecodable",
    "ReplayDivergence",
    "RunBusy",
    "RunError",
    "RunNotFound",
    "RunNotResumable",
    "RunPurged",
    "SchemaOutdated",
    "ScriptExhausted",
    "SigningKeyError",
    "StorageError",
    "StoreMissing",
    "StructuredOutputError",
    "ToolFailed",
    "UnsupportedValue",
    "UserError",
    "WorkersUnavailable",
]


class ChainproofError(Exception):
    """The root of every error Chainproof raises on purpose. ``exit_code`` is the CLI's exit code."""

    exit_code: int = 1


# --- user-input errors (exit 2) ---------------------------------------------------------------


class UserError(ChainproofError, ValueError):
    """The input, the settings or the request is wrong; nothing ran and nothing was lost (exit 2)."""

    exit_code = 2


class InputError(UserError):
    """A run's inputs do not fit the graph's input model; the message names each field and what
    was expected."""


class GraphNotFound(UserError, LookupError):
    """No graph is registered under that name (nor found through entry points or the
    ``graphs`` setting), or its module failed to import; the message lists the known graphs."""


class RunNotFound(UserError, LookupError):
    """No run with that id in the audit store."""


class RunPurged(RunNotFound):
    """The run's records were purged under the store's retention (``chainproof purge``): only its
    tombstone (counts, last chain hash, when and by whom) and its records' Merkle leaves remain."""


class RunBusy(UserError):
    """Another process is advancing the run right now (running, resuming or applying a decision)."""


class RunNotResumable(UserError):
    """The run cannot be resumed: it completed, or it waits for an approval answer instead."""


class InputFileError(InputError):
    """An input file that is larger than the ``input_file_max_mb`` limit, unreadable, or not text in
    its encoding; the message names the file (and the option that gave it) and the limit or the
    offending byte."""


class FieldTooLong(InputError):
    """A text longer than its audit column holds (the same limit on every backend); the message
    names the field (and its command-line option) and the limit. Nothing was recorded."""


class ConfigError(UserError):
    """The configuration cannot be read: ``CHAINPROOF_CONFIG`` names no file, the TOML file does
    not parse, or a ``CHAINPROOF_*`` variable is not of its setting's form; the message names the
    file or variable. (A value of the wrong type is pydantic's ``ValidationError``, naming the
    setting.)"""


class StorageError(UserError):
    """The audit database or the checkpointer cannot be opened or written; the message names the
    setting (``database_url`` / ``checkpoint_url``), its value and the cause."""


class StoreMissing(StorageError):
    """A read-only command was pointed at a SQLite audit store that does not exist; nothing was
    created. ``path`` is the file looked for."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


class SchemaOutdated(StorageError):
    """The audit database's schema revision is not the one this code reads (read-only commands
    check it instead of migrating); the message names the database, both revisions and the
    command that fixes it (``chainproof db upgrade``)."""


class WorkersUnavailable(UserError):
    """Workers, ``submit`` or a decision on a submitted run need what is not configured: the audit
    store, the checkpointer and DBOS's queue on PostgreSQL, or the ``workers`` extra (PyPI
    ``dbos``); the message names the setting or the install command. Nothing was recorded."""


class ApprovalRefused(UserError):
    """An answer that does not fit the pending request; nothing was executed or recorded."""


class ApproverNotAllowed(ApprovalRefused):
    """The approver (a typed name, or a signed-in account) is not allowed by the graph's approval
    policy, or the store requires a signed-in approver and got a typed name; nothing was recorded."""


class NotAuthenticated(UserError):
    """No valid credentials: a wrong username or password, or a session or API token that is
    unknown, expired, revoked or of a disabled account. The message never says which of the two
    halves of a sign-in was wrong."""


class NotPermitted(UserError):
    """The signed-in account's roles do not allow the request (e.g. an auditor asking to start a
    run, an analyst reading another department's run), or a state-changing request from a browser
    session came without its CSRF token."""


class LoginThrottled(NotAuthenticated):
    """Too many failed sign-ins for the account in the window (``auth.login_max_failures`` in
    ``auth.login_window_s``); ``retry_after_s`` is when the oldest failure leaves the window."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetUnenforceable(UserError):
    """A cost budget applies but the next call's model has no price, so its cost cannot be
    projected. Nothing was called."""


class CostBudgetExceeded(UserError):
    """A resumed run still does not fit its budget (the budget was not raised enough)."""


class DossierError(UserError):
    """A dossier is missing, malformed or does not cover the requested date.

    The message always names the file (and line/column or field where relevant), what was found
    and what was expected.
    """


class SigningKeyError(UserError):
    """The log's signing key file or a public key is missing, unreadable or too open (the message
    names the file, the setting and the fix)."""


class OperatorKeyMissing(SigningKeyError):
    """A command that writes a grant (an account, credential, approver key, policy or store
    setting) found no operator key at ``trust.key_file``; the message names the file and
    ``chainproof keys operator``, which creates it (README "Threat model")."""


class GrantNotTrusted(UserError):
    """A grant row (``table``, ``row``) whose operator countersignature is missing or does not
    verify under a trusted operator key (``trust.public_keys_dir``): it was written outside
    Chainproof, or the store was upgraded and not yet anchored (``chainproof keys anchor``, once per store). The
    row is refused; nothing was done with it."""

    def __init__(self, message: str, table: str = "", row: str = ""):
        super().__init__(message)
        self.table, self.row = table, row


class HeadRefused(UserError):
    """A signed tree head that is not valid: malformed, signed by an unknown key, or its signature
    does not verify."""


class LocalModelUnavailable(UserError):
    """The embedded model cannot be used: weights missing or corrupt, or llama.cpp not installed.

    The message always says what is wrong and the exact command that fixes it.
    """


# --- run failures (exit 1) --------------------------------------------------------------------


class RunError(ChainproofError, RuntimeError):
    """A run could not go on; it is recorded as failed and resumable from its last checkpoint (exit 1)."""

    exit_code = 1


class EdgarUnavailable(RunError):
    """SEC EDGAR could not be reached or answered with an error after edgartools' retries; the
    message names the URL and the cause. What was downloaded is kept, so running the same
    ``chainproof dossier fetch`` again resumes."""


class ModelCallFailed(RunError):
    """A model call gave up: a fault that is not retried, or retries/deadline exhausted.

    ``attempts`` holds every ``AttemptRecord`` (``chainproof.agents.resilience``); ``kind`` is the
    last fault's label; the message names the endpoint, the cause and the attempt count.
    """

    def __init__(self, message: str, attempts: list[Any], kind: str | None):
        super().__init__(message)
        self.attempts = attempts
        self.kind = kind


class MalformedResponse(RunError):
    """The endpoint answered, but not with a usable chat completion (bad JSON, no chunks)."""


class CircuitOpen(RunError):
    """Every endpoint's circuit is open; ``retry_in_s`` (seconds) is when the first one lets a
    trial through."""

    def __init__(self, message: str, retry_in_s: float):
        super().__init__(message)
        self.retry_in_s = retry_in_s


class RateLimitWaitTooLong(RunError):
    """The limiter would make a call wait past its deadline; nothing was reserved."""

    def __init__(self, which: str, rpm: float | None, tpm: float | None, wait_s: float, max_wait_s: float):
        super().__init__(f"the {which} (rpm={rpm}, tpm={tpm}) needs a wait of {wait_s:.1f}s, "
                         f"more than the {max_wait_s:.1f}s left before the call's deadline")


class StructuredOutputError(RunError):
    """No answer valid for the schema after the bounded attempts; the message names the schema,
    the attempt count and the last validation error."""


class ScriptExhausted(RunError):
    """A ``ScriptedChatModel`` was called more times than it has replies."""


class ToolFailed(RunError):
    """A tool raised: ``tool`` names it, ``plan_step`` the plan step, and the cause is chained. The
    call is recorded with the error; ``chainproof resume RUN_ID`` runs the step again."""

    def __init__(self, tool: str, plan_step: str, cause: BaseException):
        self.tool, self.plan_step = tool, plan_step
        super().__init__(f"tool {tool} (plan step {plan_step}) failed: {type(cause).__name__}: {cause}")


class PlanError(RunError):
    """A plan step cannot run as written: it refers to an input the run does not have, or needs the
    data of a finding that is not kept (not ``keep_data``, or its tool result was refused). The
    message names the step and what is missing."""


class UnsupportedValue(RunError, TypeError):
    """A value outside Chainproof's value contract (``chainproof.values``) reached a boundary
    where it would be stored: a tool result, a decision, an edit or a run input. ``where`` names
    the tool or field, ``path`` the key path inside the value and ``type_name`` the offending
    type. Nothing was stored in its place."""

    def __init__(self, where: str, path: str, type_name: str, hint: str = ""):
        self.where, self.path, self.type_name = where, path, type_name
        super().__init__(f"{where}: value at {path or '(top level)'} has type {type_name}, which Chainproof cannot "
                         f"store and restore exactly{'; ' + hint if hint else ''}")


class ReplayDivergence(RunError):
    """The replay asked for something the record does not hold (another prompt, effort, tool or
    arguments, or a call the run never made). ``step_no`` is the recorded step it was compared with."""

    def __init__(self, step_no: int, differences: list[str]):
        super().__init__(f"step {step_no}: " + "; ".join(differences))
        self.step_no, self.differences = step_no, differences


class NotRetained(RunError):
    """The recorded model output of ``step_no`` was kept only as a zero-data-retention stub."""

    def __init__(self, step_no: int, what: str):
        super().__init__(f"step {step_no}: {what} was not retained (zero data retention)")
        self.step_no, self.what = step_no, what


class AuditError(RunError):
    """Audit-store misuse, e.g. appending to a run that was never started."""


class RecordUndecodable(AuditError):
    """A record holds a value its column cannot hold (an edit outside Chainproof): the run cannot
    be replayed or forked from it. ``chainproof verify`` names it."""


class LogInconsistent(AuditError):
    """The audit log no longer extends a tree head already published: a head is not signed over it."""


class RecordTampered(AuditError):
    """A record a decision or a resume relies on fails its check (its hash, its chain link, its
    signature, or the run's approval policy against the countersigned stored version): it was
    edited or inserted outside Chainproof. Nothing was decided or applied; ``chainproof verify`` names it."""


class AlreadyDecided(AuditError):
    """A decision on an approval request that already has one; ``existing`` is that decision's
    row. Nothing was written."""

    def __init__(self, existing: Record):
        self.existing = existing
        super().__init__(
            f"request {existing.request_id} was already decided: {existing.action} by {existing.approver} "
            f"at {existing.created_at:%Y-%m-%d %H:%M:%S} UTC"
        )
