"""A minimal OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

``FakeOpenAI(responder)`` serves ``POST /v1/chat/completions`` (non-streaming and streaming)
with answers from ``responder(request_json) -> str`` and OpenAI-shaped ``usage`` including
``completion_tokens_details.reasoning_tokens`` and ``prompt_tokens_details.cached_tokens``.
Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], str]


class FakeOpenAI:
    def __init__(self, responder: Responder, reasoning_tokens: int = 7, cached_tokens: int = 3):
        self.responder = responder
        self.reasoning_tokens = reasoning_tokens
        self.cached_tokens = cached_tokens
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion = max(1, len(text) // 4) + self.reasoning_tokens
        return {
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": min(self.cached_tokens, prompt)},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                text = fake.responder(body)
                usage = fake._usage(body, text)
                base = {"id": f"chatcmpl-{len(fake.requests)}", "created": int(time.time()), "model": body.get("model", "fake")}
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]},
                              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                              {"choices": [], "usage": usage}]
                    for c in chunks:
                        self.wfile.write(f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', **c})}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                payload = {**base, "object": "chat.completion", "usage": usage, "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
