"""Advancing runs in the background: the web app answers at once and a worker thread runs the
chain until it pauses or ends. One process advances a run at a time (``chainproof/_locks.py``,
taken by the engine), so a second request for a busy run gets ``RunBusy`` from the engine and
is recorded as this job's error, never run twice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

log = logging.getLogger("chainproof.web")


@dataclass
class Job:
    """One background call for a run: ``what`` (start, resume), ``error`` (``TYPE: message``)
    once it failed, and ``done``."""

    run_id: str
    what: str
    error: str | None = None
    done: bool = False
    future: Future[Any] | None = field(default=None, repr=False)


class Runner:
    """A pool of ``workers`` threads that advance runs; ``jobs[run_id]`` is the latest job of a run."""

    def __init__(self, workers: int = 4):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chainproof-run")
        self._lock = Lock()
        self.jobs: dict[str, Job] = {}

    def submit(self, run_id: str, what: str, call: Callable[[], Any]) -> Job:
        job = Job(run_id, what)

        def work() -> Any:
            try:
                return call()
            except BaseException as exc:  # recorded on the job; the engine has recorded the run as failed
                job.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("run %s: %s failed: %s", run_id, what, type(exc).__name__)
                return None
            finally:
                job.done = True

        with self._lock:
            self.jobs[run_id] = job
            job.future = self._pool.submit(work)
        return job

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)


__all__ = ["Job", "Runner"]
