"""A local OpenAI-compatible chat-completions server on 127.0.0.1 that injects faults.

Test and benchmark infrastructure (importable as ``testkit.fake_openai`` with the repository root
on ``sys.path``). In-process::

    with FakeOpenAI(lambda body: "Revenue grew.", rpm=600) as server:
        server.inject("429", times=2, retry_after=1.5)   # the next 2 requests get 429 + Retry-After
        ChatOpenAI(base_url=server.base_url, ...)

or as a subprocess: ``python -m testkit.fake_openai --port 8099 --rpm 600`` (prints its base URL;
faults are injected with ``POST /_control/inject`` ``{"kind": "503", "times": 3}`` and cleared
with ``POST /_control/heal``).

Serves ``POST /v1/chat/completions``, plain and streaming (``stream_options.include_usage`` is
honoured the way OpenAI does: a last chunk with ``usage`` and no choices), with OpenAI-shaped
``usage`` including ``completion_tokens_details.reasoning_tokens`` and
``prompt_tokens_details.cached_tokens``. The responder returns the reply text, or a dict
``{"content": str, "tool_calls": [{"name": str, "arguments": dict}]}`` for tool calls.

Faults (:data:`FAULT_KINDS`): ``429`` (with ``Retry-After``/``retry-after-ms`` when
``retry_after`` is given, without otherwise), ``500``, ``503``, ``reset`` (TCP RST, no response),
``hang`` (no answer for ``hang_s`` seconds: past any sane client timeout), ``malformed_json``
(HTTP 200 with a body that is not JSON), ``truncated`` (the connection drops halfway through the
body or the stream, without ``[DONE]``).

Rate limits: ``rpm`` / ``tpm`` are enforced like providers do over short intervals (OpenAI's
rate-limit guide: "60,000 requests/minute may be enforced as 1,000 requests/second"): a token
bucket holding ``burst_s`` seconds' worth, refilled continuously. Tokens are counted at
admission as OpenAI estimates them (prompt characters / 4 + ``max_completion_tokens``). A request
over a limit gets 429 with ``retry-after-ms``, ``retry-after`` and ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]
FAULT_KINDS = ("429", "500", "503", "reset", "hang", "malformed_json", "truncated")


@dataclass
class Fault:
    """One injected fault; ``remaining`` requests left to hit (``None``: until :meth:`FakeOpenAI.heal`)."""

    kind: str
    remaining: int | None = 1
    retry_after: float | None = None  # seconds; None → 429 without Retry-After
    hang_s: float = 30.0


@dataclass
class _Bucket:
    """Server-side limit: ``limit`` per minute, ``burst_s`` seconds' worth of capacity."""

    limit: float
    burst_s: float
    level: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    @property
    def capacity(self) -> float:
        return max(1.0, self.limit * self.burst_s / 60.0)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.limit / 60.0)
        self.at = now

    def wait_for(self, n: float) -> float:
        """Seconds until ``n`` fits (0 when it fits now)."""
        return 0.0 if self.level >= n else (min(n, self.capacity) - self.level) * 60.0 / self.limit


def estimate_tokens(body: dict[str, Any]) -> int:
    """OpenAI's admission estimate: prompt characters / 4 plus the output cap (tokens)."""
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    return prompt + int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)


class FakeOpenAI:
    """The server; see the module docstring. ``requests``/``headers`` keep every accepted request
    (body and headers, faulted ones included); ``stats`` counts outcomes by kind (``ok``,
    ``rate_limited``, and one key per injected fault kind)."""

    def __init__(
        self,
        responder: Responder,
        reasoning_tokens: int = 7,
        cached_tokens: int = 3,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_s: float = 1.0,
        port: int = 0,
        latency_s: float = 0.0,
    ):
        self.responder = responder
        self.reasoning_tokens = reasoning_tokens
        self.cached_tokens = cached_tokens
        self.latency_s = latency_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stats: dict[str, int] = {}
        self._faults: list[Fault] = []
        self._rpm = _Bucket(rpm, burst_s) if rpm else None
        self._tpm = _Bucket(tpm, burst_s) if tpm else None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._server.request_queue_size = 256
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closing.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ fault control
    def inject(self, kind: str, times: int | None = 1, *, retry_after: float | None = None, hang_s: float = 30.0) -> None:
        """Make the next ``times`` requests (every request when ``None``) fail with ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind: expected one of {FAULT_KINDS}, got {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, times, retry_after, hang_s))

    def heal(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            while self._faults:
                fault = self._faults[0]
                if fault.remaining is None:
                    return fault
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.pop(0)
                return fault
        return None

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def _admit(self, body: dict[str, Any]) -> tuple[float, str] | None:
        """Charge the rate limits; ``(retry_after_s, which)`` when over one, else None."""
        if not (self._rpm or self._tpm):
            return None
        tokens = estimate_tokens(body)
        with self._lock:
            now = time.monotonic()
            waits = []
            for bucket, need, name in ((self._rpm, 1, "requests"), (self._tpm, tokens, "tokens")):
                if bucket:
                    bucket.refill(now)
                    waits.append((bucket.wait_for(need), name))
            wait, which = max(waits)
            if wait > 0:
                return wait, which
            if self._rpm:
                self._rpm.level -= 1
            if self._tpm:
                self._tpm.level -= tokens
        return None

    # --------------------------------------------------------------- answers
    def _usage(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion = max(1, len(text) // 4) + self.reasoning_tokens
        return {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt)},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        answer = self.responder(body)
        if isinstance(answer, str):
            return answer, []
        calls = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
            for i, c in enumerate(answer.get("tool_calls", []))
        ]
        return answer.get("content") or "", calls

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                      content_type: str = "application/json", length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
                err = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
                self._send(status, json.dumps(err).encode(), headers)

            def _reset(self) -> None:
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _control(self, body: dict[str, Any]) -> None:
                if self.path.endswith("/inject"):
                    fake.inject(body["kind"], body.get("times", 1), retry_after=body.get("retry_after"),
                                hang_s=body.get("hang_s", 30.0))
                else:
                    fake.heal()
                self._send(200, b"{}")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.startswith("/_control/"):
                    return self._control(body)
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                fault = fake._next_fault()
                if fault is not None and fault.kind != "truncated":
                    fake._count(fault.kind)
                    return self._fault(fault)
                limited = fake._admit(body)
                if limited is not None:
                    wait, which = limited
                    fake._count("rate_limited")
                    return self._error(429, f"Rate limit reached for {which} per min. Please try again in "
                                       f"{wait:.3f}s.", "rate_limit_exceeded", {
                                           "retry-after-ms": str(math.ceil(wait * 1000)),
                                           "retry-after": str(math.ceil(wait)),
                                           f"x-ratelimit-remaining-{which}": "0"})
                if fake.latency_s:
                    fake._closing.wait(fake.latency_s)
                text, tool_calls = fake._reply(body)
                usage = fake._usage(body, text)
                base = {"id": f"chatcmpl-{len(fake.requests)}", "created": int(time.time()),
                        "model": body.get("model", "fake")}
                finish = "tool_calls" if tool_calls else "stop"
                if body.get("stream"):
                    self._stream(body, base, text, tool_calls, finish, usage, truncated=fault is not None)
                else:
                    message: dict[str, Any] = {"role": "assistant", "content": text or None}
                    if tool_calls:
                        message["tool_calls"] = tool_calls
                    data = json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
                        {"index": 0, "message": message, "finish_reason": finish}]}).encode()
                    if fault is not None:  # truncated: promise the whole body, send half, hang up
                        self._send(200, data[: len(data) // 2], length=len(data))
                        self.close_connection = True
                    else:
                        self._send(200, data)
                fake._count("truncated" if fault is not None else "ok")

            def _fault(self, fault: Fault) -> None:
                if fault.kind == "429":
                    headers = {}
                    if fault.retry_after is not None:
                        headers = {"retry-after": f"{fault.retry_after:g}"}
                    self._error(429, "Rate limit reached (injected).", "rate_limit_exceeded", headers)
                elif fault.kind in ("500", "503"):
                    self._error(int(fault.kind), f"Injected server error {fault.kind}.", "server_error")
                elif fault.kind == "reset":
                    self._reset()
                elif fault.kind == "hang":
                    fake._closing.wait(fault.hang_s)
                    self._reset()
                elif fault.kind == "malformed_json":
                    self._send(200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "message": {"role": "assist')

            def _stream(self, body, base, text, tool_calls, finish, usage, *, truncated: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                delta: dict[str, Any] = {"role": "assistant", "content": text}
                if tool_calls:
                    delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(tool_calls)]
                chunks = [{"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
                if truncated:  # first chunk only, then the connection drops: no finish, no [DONE]
                    half = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text[: len(text) // 2]},
                                         "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', **half})}\n\n".encode())
                    self.wfile.flush()
                    self._reset()
                    return
                chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    chunks.append({"choices": [], "usage": usage})
                for c in chunks:
                    self.wfile.write(f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', **c})}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - manual / subprocess use
    """Run the server in the foreground: answers every request with ``--reply``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rpm", type=float)
    p.add_argument("--tpm", type=float)
    p.add_argument("--reply", default="ok")
    args = p.parse_args(argv)
    with FakeOpenAI(lambda body: args.reply, rpm=args.rpm, tpm=args.tpm, port=args.port) as server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
