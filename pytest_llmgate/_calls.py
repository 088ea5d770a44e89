"""Concurrent candidate calls: a bounded thread pool, and prefetching of the calls this process will make."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

DEFAULT_CONCURRENCY = 8


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
