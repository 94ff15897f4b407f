"""The process-wide ``llama_cpp.Llama`` objects of the embedded model: loading and call locking.

One ``Llama`` per ``(model file, n_ctx)`` is loaded lazily and shared by every
:class:`chainproof.agents.local_llm.LocalLlamaChat` in the process (loading costs seconds and
~1.9 GB RSS for the bundled 1.5B Q4_K_M model). A ``Llama`` is not thread-safe, so all calls on it
are serialised by a per-object lock (:func:`call_lock`); concurrent graph branches therefore queue.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from chainproof.agents.local_weights import LocalModelUnavailable, check_gguf

__all__ = ["LLAMA_INSTALL_HINT", "call_lock", "clear_llama_cache", "load_llama", "usable_cpus"]

log = logging.getLogger(__name__)

#: How users install the runtime (llama-cpp-python is an sdist on PyPI and compiles, ~5-7 min;
#: LLAVA off skips the unused multimodal library; GGML_NATIVE off builds for a portable CPU target:
#: llama-cpp-python 0.3.36 built with -march=native segfaulted on the first multi-token prompt on an
#: AVX-512 machine here, the portable build does not).
LLAMA_INSTALL_HINT = 'CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" pip install -c constraints.txt "chainproof[local]"'

_load_lock = threading.Lock()
_llamas: dict[tuple[str, int], Any] = {}
_call_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_call_locks_guard = threading.Lock()
_fallback_call_lock = threading.Lock()


def load_llama(model_path: str | os.PathLike[str], n_ctx: int = 4096, **llama_kwargs: Any) -> Any:
    """The shared ``llama_cpp.Llama`` for ``(model_path, n_ctx)``, loaded on first use.

    Args:
        model_path: GGUF file (checked for the GGUF magic bytes first).
        n_ctx: context window, tokens (prompt + output).
        **llama_kwargs: further ``Llama(...)`` arguments (``n_threads``, ``n_batch``, ``seed``,
            ``verbose``); used only by the call that actually loads — later callers with the
            same ``(path, n_ctx)`` share that object whatever they pass.
    Returns:
        The ``Llama`` instance (takes ~1.9 GB RSS for the 1.5B Q4_K_M model).
    Raises:
        LocalModelUnavailable: ``llama_cpp`` is not installed, or the file is missing/not GGUF.
    """
    path = check_gguf(model_path)
    key = (str(path), int(n_ctx))
    with _load_lock:
        llama = _llamas.get(key)
        if llama is not None:
            return llama
        try:
            from llama_cpp import Llama  # heavy import (numpy, ctypes libllama): only here
        except ImportError as exc:
            raise LocalModelUnavailable(
                "The embedded model needs llama-cpp-python, which is not installed (PyPI ships it as "
                "source only; it compiles in about 5-6 minutes). Install it with:\n"
                f"    {LLAMA_INSTALL_HINT}\n"
                "or configure a remote model: CHAINPROOF_MODEL__PROVIDER=openai."
            ) from exc
        log.info("loading %s (n_ctx=%d)", path, n_ctx)
        try:
            llama = Llama(model_path=str(path), n_ctx=int(n_ctx), **llama_kwargs)
        except ValueError as exc:  # llama-cpp-python raises ValueError when libllama fails to load
            raise LocalModelUnavailable(f"llama.cpp could not load {path}: {exc}") from exc
        _llamas[key] = llama
        return llama


def clear_llama_cache() -> None:
    """Forget every shared ``Llama`` (memory is freed once no instance still refers to it)."""
    with _load_lock:
        _llamas.clear()


def call_lock(llama: Any) -> threading.Lock:
    """The lock serialising calls on ``llama`` (one per object; one shared lock for objects that
    cannot be weakly referenced)."""
    with _call_locks_guard:
        try:
            lock = _call_locks.get(llama)
            if lock is None:
                lock = _call_locks[llama] = threading.Lock()
            return lock
        except TypeError:  # not weak-referenceable: one lock for all such objects
            return _fallback_call_lock


def usable_cpus() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``; at least 1)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
