"""A scripted stand-in for ``llama_cpp.Llama``: llama-cpp-python 0.3.36's chat-completion response
dicts (``llama_types.py``), so the embedded model's own parsing runs without the native library."""

from __future__ import annotations

import re
import uuid
from typing import Any


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


class FakeLlama:
    """Scripted stand-in for ``llama_cpp.Llama`` (chat-completion surface only).

    ``replies`` are consumed in order; a reply is a string (model text) or, for forced tool
    calls, the raw arguments string. One "token" = one whitespace-delimited word.
    """

    def __init__(self, *replies: str, model_path: str = "/models/fake-model.Q4.gguf") -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.model_path = model_path
        self.n_tokens = 0
        self.resets = 0
        self._probe_reply: str | None = None

    def reset(self) -> None:
        self.resets += 1
        self.n_tokens = 0

    def _prompt_tokens(self, kw: dict[str, Any]) -> int:
        text = " ".join(str(m.get("content") or "") for m in kw["messages"])
        return len(_tokens(text)) + 5 * len(kw["messages"]) + 20 * len(kw.get("tools") or [])

    def _next_reply(self, kw: dict[str, Any]) -> str:
        if kw.get("max_tokens") == 1 and not kw.get("stream"):  # usage probe: keep the reply
            return self.replies[0]
        return self.replies.pop(0)

    def create_chat_completion(self, **kw: Any) -> Any:
        self.requests.append(kw)
        reply = self._next_reply(kw)
        toks = _tokens(reply)
        limit = kw.get("max_tokens") or len(toks)
        finish = "length" if len(toks) > limit else "stop"
        toks = toks[:limit]
        prompt = self._prompt_tokens(kw)
        # Llama.n_tokens: the last sampled token is fed back only when generation continued
        self.n_tokens = prompt + len(toks) - (1 if finish == "length" else 0)
        usage = {"prompt_tokens": prompt, "completion_tokens": len(toks), "total_tokens": prompt + len(toks)}
        cid = f"cmpl-{uuid.uuid4()}"
        if kw.get("stream"):
            return self._stream(cid, toks, finish)
        choice = kw.get("tool_choice")
        if isinstance(choice, dict):
            name = choice["function"]["name"]
            args = "".join(toks)
            return {
                "id": "chat" + cid, "object": "chat.completion", "created": 1, "model": self.model_path,
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant", "content": None,
                        "function_call": {"name": name, "arguments": args},
                        "tool_calls": [{"id": f"call__0_{name}_{cid}", "type": "function",
                                        "function": {"name": name, "arguments": args}}],
                    },
                    "logprobs": None, "finish_reason": "tool_calls",
                }],
                "usage": usage,
            }
        return {
            "id": "chat" + cid, "object": "chat.completion", "created": 1, "model": self.model_path,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(toks)},
                         "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }

    def _stream(self, cid: str, toks: list[str], finish: str):
        base = {"id": "chat" + cid, "model": self.model_path, "created": 1, "object": "chat.completion.chunk"}
        def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

        yield chunk({"role": "assistant"}, None)
        for t in toks:
            yield chunk({"content": t}, None)
        yield chunk({}, finish)
