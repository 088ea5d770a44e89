"""Concurrent candidate calls: a bounded thread pool, prefetching of the calls this process will make, each
call measured, and the share of an endpoint a session may take (backing off on 429s, at most N a minute)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from .._costs import Usage
from .._defaults import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY
from .._vocab import Route

if TYPE_CHECKING:
    from . import Provider


class CallPool:
    """At most ``concurrency`` calls in flight; each call is made once and its result (or exception) kept."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.concurrency = max(1, concurrency)
        self._executor: ThreadPoolExecutor | None = None
        self._futures: dict[Hashable, Future[Any]] = {}

    def submit(self, key: Hashable, call: Callable[[], Any]) -> Future[Any]:
        future = self._futures.get(key)
        if future is None:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="llmgate-call")
            future = self._futures[key] = self._executor.submit(call)
        return future

    def prefetch(self, calls: Iterable[tuple[Hashable, Callable[[], Any]]]) -> None:
        """Queue calls in the order they will be needed; the pool runs ``concurrency`` of them at a time."""
        for key, call in calls:
            self.submit(key, call)

    def result(self, key: Hashable, call: Callable[[], Any]) -> Any:
        """The call's result, waiting for it; its exception is raised here."""
        future = self.submit(key, call)
        try:
            return future.result()
        finally:
            del self._futures[key]  # each result is taken once: memory stays bounded by what is in flight

    def shutdown(self) -> None:
        if self._executor is not None:
            for future in self._futures.values():
                future.cancel()
            self._executor.shutdown(wait=True)
            self._executor = None
            self._futures.clear()


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
    """A session's windows, one per endpoint (its URL, or the provider's default endpoint)."""

    def __init__(self, ceiling: int = DEFAULT_CONCURRENCY) -> None:
        self.ceiling = ceiling
        self._windows: dict[str, Window] = {}
        self._lock = threading.Lock()

    def window(self, endpoint: str) -> Window:
        with self._lock:
            if endpoint not in self._windows:
                self._windows[endpoint] = Window(self.ceiling)
            return self._windows[endpoint]


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


def measured(provider: Provider, case: Mapping[str, Any], trial: int) -> tuple[Route, Usage]:
    """The provider's route and the call's usage: its own report (``answer``) or, for a provider without one
    (a python callable, an evidence policy), the time ``route`` took and no tokens."""
    answer = getattr(provider, "answer", None)
    if answer is not None:
        result: tuple[Route, Usage] = answer(case, trial)
        return result
    started = time.perf_counter()
    route = provider.route(case, trial)
    return route, Usage(latency_ms=round((time.perf_counter() - started) * 1000, 3))


class Answers:
    """A session's answers from its providers: the one place where calls are pooled and prefetched.

    A provider that is not ``concurrent`` answers in the caller's thread. A concurrent one answers from the
    pool; on its first use in this process, the calls of every case this process will ask it about are queued
    in order (``upcoming``), so that ``concurrency`` of them are in flight while the items run one by one.
    """

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.pool = CallPool(concurrency)
        self.throttles = Throttles(concurrency)
        self._used: set[int] = set()

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        """The provider's route for ``case`` in each trial (``case`` without its expected route), with the call's
        usage (see ``measured``).

        ``upcoming``: the cases this process will ask the provider about, in order (None: unknown, as on an
        xdist worker, which is handed its items one by one); asked once, at the provider's first use.
        """
        trials = range(provider.trials)
        if not provider.concurrent:
            return tuple(measured(provider, case, trial) for trial in trials)
        if id(provider) not in self._used:
            self._used.add(id(provider))
            if upcoming is not None:
                self.pool.prefetch(
                    ((id(provider), later["case_id"], trial), partial(measured, provider, later, trial))
                    for later in upcoming() for trial in trials
                )
        return tuple(
            self.pool.result((id(provider), case["case_id"], trial), partial(measured, provider, case, trial))
            for trial in trials
        )

    def shutdown(self) -> None:
        self.pool.shutdown()
