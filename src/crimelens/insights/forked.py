"""Run part of a job in a forked process while the rest runs here: both cores of the machine at work.

``crimelens findings`` on a warehouse holding jurisdiction-year and incident data computes the incident findings
in a child process (:func:`fork_call`) while it computes the jurisdiction findings itself, then merges them as
if it had computed both in turn. The child is forked before either process opens the warehouse, opens its own
read-only connection, and sends back, through a pipe, the pickled result or error and the warnings raised
meanwhile (raised again here, in order, so the caveats reach the user as they would have). Where a fork is not
available or useful (:func:`can_fork`: not Linux, one core), the caller computes everything in turn instead.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Forked", "can_fork", "fork_call"]

T = TypeVar("T")


def can_fork() -> bool:
    """Whether a child process can run part of a job beside this one: Linux (fork keeps the imported libraries,
    so the child starts at once) with at least two cores."""
    return sys.platform == "linux" and (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1) >= 2


class Forked(Generic[T]):
    """A call running in a forked child: :meth:`result` waits for it; :meth:`cancel` stops it."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self._pid = pid
        self._fd = read_fd
        self._done = False

    def result(self) -> T:
        """The call's return value (its warnings raised again here first), or its exception raised here."""
        with os.fdopen(self._fd, "rb") as pipe:
            data = pipe.read()
        self._reap()
        if not data:
            raise RuntimeError("the child process computing part of the findings ended without an answer")
        outcome, caught = pickle.loads(data)  # our own child's answer, through our own pipe
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        kind, value = outcome
        if kind == "error":
            raise value
        result: T = value
        return result

    def cancel(self) -> None:
        """Stop the child (when this side failed first) and reap it."""
        if not self._done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._reap()

    def _reap(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)


def fork_call(fn: Callable[[], T]) -> Forked[T]:
    """Start ``fn()`` in a forked child process (see the module's notes on what it may and may not touch)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: compute, answer through the pipe, and leave without running the parent's exit code
        code = 0
        try:
            os.close(read_fd)
            with warnings.catch_warnings(record=True) as caught:  # the filters are the parent's, inherited
                try:
                    outcome: tuple[str, Any] = ("value", fn())
                except BaseException as exc:  # every error goes back to the parent, which raises it
                    outcome = ("error", exc)
            records = [(w.message, w.category, w.filename, w.lineno) for w in caught]
            try:
                data = pickle.dumps((outcome, records))
            except Exception as exc:  # an answer that cannot be pickled: say what it was
                data = pickle.dumps((("error", RuntimeError(f"{type(exc).__name__}: {exc}")), records))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(data)
        except BaseException:  # the pipe is gone (the parent stopped): nothing to tell
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return Forked(pid, read_fd)
