"""Concurrent candidate calls: a bounded thread pool, and prefetching of the calls this process will make."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

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


class Answers:
    """A session's answers from its providers: the one place where calls are pooled and prefetched.

    A provider that is not ``concurrent`` answers in the caller's thread. A concurrent one answers from the
    pool; on its first use in this process, the calls of every case this process will ask it about are queued
    in order (``upcoming``), so that ``concurrency`` of them are in flight while the items run one by one.
    """

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.pool = CallPool(concurrency)
        self._used: set[int] = set()

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[Route, ...]:
        """The provider's route for ``case`` in each trial (``case`` without its expected route).

        ``upcoming``: the cases this process will ask the provider about, in order (None: unknown, as on an
        xdist worker, which is handed its items one by one); asked once, at the provider's first use.
        """
        trials = range(provider.trials)
        if not provider.concurrent:
            return tuple(provider.route(case, trial) for trial in trials)
        if id(provider) not in self._used:
            self._used.add(id(provider))
            if upcoming is not None:
                self.pool.prefetch(
                    ((id(provider), later["case_id"], trial), partial(provider.route, later, trial))
                    for later in upcoming() for trial in trials
                )
        return tuple(
            self.pool.result((id(provider), case["case_id"], trial), partial(provider.route, case, trial))
            for trial in trials
        )

    def shutdown(self) -> None:
        self.pool.shutdown()
