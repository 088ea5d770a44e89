"""A session's providers: each factory asked for once, each selected artifact's provider built once per process,
and their calls made through the session's pool (``Answers``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from pathlib import Path
from typing import Any

from pytest_llmgate.engine.judging import JudgedProvider, judged
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY
from pytest_llmgate.model.errors import LlmgateError, ProviderError, with_calls
from pytest_llmgate.model.vocab import RecordMode, Route
from pytest_llmgate.providers import (
    MakeProvider,
    Provider,
    ProviderContext,
    ProviderFactory,
    complete_factory,
    unknown_provider,
)
from pytest_llmgate.providers.calls import (
    DEFAULT_CASE_TIMEOUT,
    CallPool,
    Threads,
    Throttles,
    timed_out,
)
from pytest_llmgate.records.candidate import Candidate
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import PlannedRun


class Providers:
    """The providers of a session's selected artifacts, in its record mode and ``--llmgate-trials`` (None: the
    artifacts' own), and the pool their calls go through (``answers``)."""

    def __init__(self, record_mode: RecordMode, trials: int | None, answers: Answers, make_provider: MakeProvider
                 ) -> None:
        self.record_mode = record_mode
        self.trials = trials
        self.answers = answers
        self._make_provider = make_provider
        self._factories: dict[str, ProviderFactory | None] = {}
        self._providers: dict[tuple[Path, str], Provider] = {}
        self._timeouts: dict[int, float] = {}  # id(provider) -> its artifact's case_timeout

    def factory(self, candidate: Candidate) -> ProviderFactory:
        """The factory for an artifact's ``provider:``, asked of the registry once per name per session."""
        name = candidate.provider
        if name not in self._factories:
            found = self._make_provider(name)
            self._factories[name] = None if found is None else complete_factory(found)
        factory = self._factories[name]
        if factory is None:
            raise unknown_provider(candidate)
        return factory

    def context(self, experiment: Experiment) -> ProviderContext:
        return ProviderContext(experiment_dir=experiment.directory, record_mode=self.record_mode, trials=self.trials,
                               throttles=self.answers.throttles)

    def provider(self, experiment: Experiment, template_id: str) -> Provider:
        """The provider of a selected artifact, built once per process; an unusable one raises ``CandidateError``."""
        key = (experiment.directory, template_id)
        if key not in self._providers:
            candidate = experiment.candidates[template_id]
            provider = self.factory(candidate).build(candidate, self.context(experiment))
            if experiment.evaluator is not None:  # its replies are judged (docs/evaluators.md)
                provider = judged(provider, candidate, experiment.evaluator, self.context(experiment), self.factory,
                                  self.answers.judged)
            self._providers[key] = provider
            if candidate.case_timeout is not None:
                self._timeouts[id(provider)] = candidate.case_timeout
        return self._providers[key]

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        """``Answers.routes``, each trial waited for at most the artifact's ``case_timeout`` (else the provider
        kind's default)."""
        return self.answers.routes(provider, case, upcoming, self._timeouts.get(id(provider)))

    def known(self, planned: Iterable[tuple[Experiment, PlannedRun]]
              ) -> Iterator[tuple[Experiment, Candidate, ProviderFactory]]:
        """Each planned run's experiment, artifact and factory; a run whose provider is unknown is left out (it is
        reported when its cases run)."""
        for experiment, plan in planned:
            candidate = experiment.candidates[plan.template_id]
            try:
                factory = self.factory(candidate)
            except LlmgateError:
                continue
            yield experiment, candidate, factory

    def warm(self, planned: Iterable[tuple[Experiment, PlannedRun]]) -> None:
        """Let each selected artifact's factory start its slow work in the background (see ``ProviderFactory``)."""
        for experiment, candidate, factory in self.known(planned):
            factory.warm(candidate, self.context(experiment))

    def deterministic_note(self, planned: Iterable[tuple[Experiment, PlannedRun]]) -> list[str]:
        """With ``--llmgate-trials`` above 1: the selected runs whose provider is deterministic (a factory with
        ``deterministic = True``), asked once per case all the same."""
        if (self.trials or 1) <= 1:
            return []
        candidates = [(plan.template_id, experiment.candidates[plan.template_id]) for experiment, plan in planned]
        once = [f"{template_id} ({candidate.provider})" for template_id, candidate in candidates
                if self.factory(candidate).deterministic]
        return [f"llmgate: --llmgate-trials={self.trials} does not apply to deterministic providers; "
                f"asked once per case: {', '.join(dict.fromkeys(once))}"] if once else []


def _each(trials: range, answer: Callable[[int], tuple[Route, Usage]],
          later: Callable[[int], Usage | None] | None = None) -> tuple[tuple[Route, Usage], ...]:
    """Each trial's answer; a trial that fails carries the calls of the trials answered before it, and of those
    after it that were already made (``later``: a prefetched trial's usage, None when none was made)."""
    answered: list[tuple[Route, Usage]] = []
    for trial in trials:
        try:
            answered.append(answer(trial))
        except ProviderError as error:
            made = [usage for _, usage in answered]
            if later is not None:
                made += [usage for rest in trials[trial + 1:] if (usage := later(rest)) is not None]
            with_calls(error, made)
            raise
    return tuple(answered)


class Answers:
    """A session's answers from its providers: the one place where calls are pooled and prefetched.

    A provider that is not ``concurrent`` answers in the caller's thread. A concurrent one answers from the
    pool; on its first use in this process, the calls of every case this process will ask it about are queued
    in order (``upcoming``), so that ``concurrency`` of them are in flight while the items run one by one.

    A judged candidate's answer (``JudgedProvider``) holds its own call and its judge's: those are made in
    ``judged``, each waited for within its own artifact's ``case_timeout``, while ``pool`` holds the answer.
    """

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY, processes: int = 1) -> None:
        self.pool = CallPool(concurrency)
        self.judged = CallPool(concurrency)
        self.throttles = Throttles(concurrency, processes)
        self._used: set[int] = set()
        self._worker: Threads | None = None

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
        timeout: float | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        """The provider's route for ``case`` in each trial (``case`` without its expected route), with the call's
        usage (``Provider.answer``).

        ``upcoming``: the cases this process will ask the provider about, in order (None: unknown, as on an
        xdist worker, which is handed its items one by one); asked once, at the provider's first use.
        ``timeout``: seconds each trial's answer is waited for (default ``DEFAULT_CASE_TIMEOUT``); past it, the
        case is a ``CaseTimeout``. An in-process provider answers in a worker thread watched by that timeout,
        unless it says it is ``bounded`` (the built-in ``evidence_policy``: a set lookup, answered in place). A
        candidate a judge judges times its own call and each of the judge's, each within its artifact's
        (``JudgedProvider.timed``): its answer is waited for as long as they take.
        """
        trials = range(provider.trials)
        if timeout is None:
            timeout = DEFAULT_CASE_TIMEOUT[bool(provider.concurrent)]
        if not provider.concurrent:
            if provider.bounded:  # the gate's own pure providers: nothing to time out
                return _each(trials, partial(provider.answer, case))
            return _each(trials, lambda trial: self._in_worker(partial(provider.answer, case, trial), timeout))
        if id(provider) not in self._used:
            self._used.add(id(provider))
            if upcoming is not None:
                self.pool.prefetch(
                    ((id(provider), later["case_id"], trial), partial(provider.answer, later, trial))
                    for later in upcoming() for trial in trials
                )
        wait = None if isinstance(provider, JudgedProvider) and provider.timed else timeout

        def later(trial: int) -> Usage | None:  # a trial queued after a failing one: made and paid all the same
            answered = self.pool.collect((id(provider), case["case_id"], trial), wait)
            return answered[1] if answered is not None else None

        return _each(trials, lambda trial: self.pool.result(
            (id(provider), case["case_id"], trial), partial(provider.answer, case, trial), wait), later)

    def _in_worker(self, call: Callable[[], tuple[Route, Usage]], timeout: float) -> tuple[Route, Usage]:
        """An in-process provider's answer from the worker thread, waited for at most ``timeout`` seconds."""
        if self._worker is None:
            self._worker = Threads(1, "llmgate-candidate")
        future = self._worker.submit(call)
        try:
            return future.result(timeout)  # type: ignore[no-any-return]
        except FutureTimeout:
            self._worker.stop()  # it ends after the stuck call, if ever; a new worker serves the next case
            self._worker = None
            raise timed_out(timeout) from None

    def shutdown(self) -> None:
        self.pool.shutdown()  # first: the answers in flight finish their calls in judged
        self.judged.shutdown()
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
