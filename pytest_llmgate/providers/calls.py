"""Concurrent candidate calls: a bounded pool of daemon threads, prefetching of the calls this process will make,
each call measured, and the share of an endpoint a session may take (backing off on 429s, at most N a minute)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY
from pytest_llmgate.model.errors import ProviderError

#: Seconds a case waits for its answer unless the artifact says ``case_timeout``: an LLM provider (``concurrent``)
#: gets time for its SDK's own timeout and retries; an in-process one (``python``, ``evidence_policy``) less.
DEFAULT_CASE_TIMEOUT = {True: 300.0, False: 60.0}


class CaseTimeout(ProviderError):
    """A case's answer did not come within ``case_timeout``: an ERROR for that case; the session goes on."""


class CandidateEscaped(ProviderError):
    """A candidate raised a ``BaseException`` that is not an ``Exception`` (``pytest.skip``, ``pytest.xfail``,
    ``SystemExit`` ...): an ERROR for that case, never a skip."""


class Threads:
    """Daemon threads (at most ``size``, started as calls arrive) running the calls handed to them, each call with
    a skip, xfail or exit it raises turned into a ``CandidateEscaped``.

    Being daemons, they never keep the process alive: a call abandoned past its case timeout (a stuck candidate, an
    endpoint that drips its reply) is left to end with the process. ``stop`` lets each thread end after the call
    it is making; with ``wait``, it also waits for those calls."""

    def __init__(self, size: int, name: str) -> None:
        self.size = max(1, size)
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            call, future = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited in the queue
            try:
                future.set_result(call())
            except Exception as exc:
                future.set_exception(exc)
            except BaseException as exc:
                future.set_exception(CandidateEscaped(
                    f"the candidate raised {type(exc).__name__} (pytest.skip, pytest.xfail or another BaseException): "
                    "a candidate cannot skip, xfail or stop its case"))

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((call, future))
        if len(self._threads) < self.size:
            self._start()
        return future

    def grow(self) -> None:
        """One thread more, started now: a call abandoned past its case timeout keeps its thread until it returns,
        and the calls queued behind it do not wait for it (their own timeouts would run out in the queue)."""
        self.size += 1
        self._start()

    def _start(self) -> None:
        thread = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, wait: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []


def timed_out(timeout: float) -> CaseTimeout:
    return CaseTimeout(f"no answer within {timeout:g}s (case_timeout); the call was abandoned and the session goes on")


#: The flag of the call this pool thread is making, set once its case stopped waiting for it (``case_timeout``).
_ABANDONED: ContextVar[threading.Event | None] = ContextVar("llmgate_abandoned", default=None)


def abandoned() -> bool:
    """Whether the case this thread's call is for stopped waiting for it (its ``case_timeout`` passed): a reply
    that comes after is not recorded, so that a replay gates as the live run did ("not recorded": an error too)."""
    flag = _ABANDONED.get()
    return flag is not None and flag.is_set()


def _watched(flag: threading.Event, call: Callable[[], Any]) -> Any:
    _ABANDONED.set(flag)  # a pool thread makes one call at a time: each sets its own
    return call()


class CallPool:
    """At most ``concurrency`` calls in flight, in daemon threads; each call is made once and its result (or
    exception) kept. Calls may be handed to it from several threads (a judged answer's, ``engine.judging``)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._threads: Threads | None = None
        #: each queued call's future and its abandoned flag (see ``abandoned``)
        self._futures: dict[Hashable, tuple[Future[Any], threading.Event]] = {}
        self.overrun = False  # a call outlived its timeout: shutdown does not wait for it
        self._lock = threading.Lock()
        self._closed = False  # shut down: a call handed over after it is not made

    def submit(self, key: Hashable, call: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            return self._submit(key, call)[0]

    def _submit(self, key: Hashable, call: Callable[[], Any]) -> tuple[Future[Any], threading.Event]:
        if self._closed:  # a judged answer still in flight when the session ended: no new call, no new thread
            closed: Future[Any] = Future()
            closed.set_exception(ProviderError("not made: the session was ending"))
            return closed, threading.Event()
        if key not in self._futures:
            if self._threads is None:
                self._threads = Threads(self.concurrency, "llmgate-call")
            flag = threading.Event()
            self._futures[key] = self._threads.submit(partial(_watched, flag, call)), flag
        return self._futures[key]

    def prefetch(self, calls: Iterable[tuple[Hashable, Callable[[], Any]]]) -> None:
        """Queue calls in the order they will be needed; the pool runs ``concurrency`` of them at a time."""
        for key, call in calls:
            self.submit(key, call)

    def collect(self, key: Hashable, timeout: float | None = None) -> Any:
        """The result of a call queued before (prefetched), taken off the pool; None when none was queued, or it
        failed or took longer than ``timeout``. Never makes a call."""
        with self._lock:
            if key not in self._futures:
                return None
            future, flag = self._futures.pop(key)
        try:
            return future.result(timeout)
        except FutureTimeout:
            flag.set()
            return None
        except Exception:
            return None

    def result(self, key: Hashable, call: Callable[[], Any], timeout: float | None = None) -> Any:
        """The call's result, waiting at most ``timeout`` seconds for it; its exception is raised here."""
        with self._lock:
            future, flag = self._submit(key, call)
            self._futures.pop(key, None)  # each result is taken once: memory stays bounded by what is in flight
        try:
            return future.result(timeout)
        except FutureTimeout:
            flag.set()
            if not future.cancel():  # it is being made: it keeps its thread, the calls behind it get another
                self.overrun = True
                with self._lock:
                    if self._threads is not None:
                        self._threads.grow()
            raise timed_out(timeout or 0) from None

    def shutdown(self) -> None:
        """Cancel the calls not started; wait for those in flight, unless one overran its timeout (then none is
        waited for: the threads are daemons, and the process may end under them)."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, None
            for future, _ in self._futures.values():
                future.cancel()
            self._futures.clear()
        if threads is not None:
            threads.stop(wait=not self.overrun)


class Window:
    """How many calls one endpoint may have in flight: additive increase, multiplicative decrease (AIMD).

    Starts at ``ceiling`` (the session's concurrency). A 429 halves it (once per round: a 429 to a call that
    started before the last halving does not halve it again), never below 1; each call that met no 429 adds
    ``1 / window``, so it grows by about one per window of calls back up to ``ceiling``."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.size = float(self.ceiling)
        self.in_flight = 0
        self.round = 0
        self._turn = threading.Condition()

    def acquire(self) -> int:
        """Wait for room; returns the round the call starts in (for ``limited``)."""
        with self._turn:
            while self.in_flight >= int(self.size):
                self._turn.wait()
            self.in_flight += 1
            return self.round

    def release(self, met_429: bool) -> None:
        with self._turn:
            self.in_flight -= 1
            if not met_429:
                self.size = min(float(self.ceiling), self.size + 1 / self.size)
            self._turn.notify_all()

    def limited(self, started_round: int) -> None:
        """A 429 arrived for a call started in ``started_round``."""
        with self._turn:
            if started_round == self.round:
                self.size = max(1.0, self.size / 2)
                self.round += 1


class Pace:
    """At most ``per_minute`` call starts a minute, evenly spaced (an artifact's ``max_requests_per_minute``)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class Throttles:
    """A session's windows, one per endpoint (its URL, or the provider's default endpoint), and its share of an
    artifact's rate: ``processes`` make the session's calls at once (pytest-xdist's workers), each paced at its
    share of ``max_requests_per_minute``."""

    def __init__(self, ceiling: int = DEFAULT_CONCURRENCY, processes: int = 1) -> None:
        self.ceiling = ceiling
        self.processes = max(1, processes)
        self._windows: dict[str, Window] = {}
        self._lock = threading.Lock()

    def pace(self, per_minute: float) -> Pace:
        """This process's pace for an artifact allowed ``per_minute`` calls a minute over the whole session."""
        return Pace(per_minute / self.processes)

    def window(self, endpoint: str) -> Window:
        with self._lock:
            return self._windows.setdefault(endpoint, Window(self.ceiling))


@contextmanager
def slot(window: Window, pace: Pace | None, met_429: Callable[[], bool]) -> Iterator[int]:
    """Hold a place in ``window`` (after ``pace``) for one call; yields the round it started in."""
    started = window.acquire()
    try:
        if pace is not None:
            pace.wait()
        yield started
    finally:
        window.release(met_429())
