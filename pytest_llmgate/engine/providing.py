"""A session's providers: each factory asked for once, each selected artifact's provider built once per process,
and their calls made through the session's pool."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from pytest_llmgate.engine.judging import judged
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.errors import LlmgateError
from pytest_llmgate.model.vocab import RecordMode, Route
from pytest_llmgate.providers import (
    MakeProvider,
    Provider,
    ProviderContext,
    ProviderFactory,
    complete_factory,
    unknown_provider,
)
from pytest_llmgate.providers.calls import Answers
from pytest_llmgate.records.candidate import Candidate, CandidateSettings
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
                provider = judged(provider, candidate, experiment.evaluator, self.context(experiment), self.factory)
            self._providers[key] = provider
            timeout = msgspec.convert(candidate.document.data, CandidateSettings).case_timeout
            if timeout is not msgspec.UNSET:
                self._timeouts[id(provider)] = timeout
        return self._providers[key]

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        """A provider's route for ``case`` in each trial with what its call used, from the session's call pool
        (see ``Answers``), each waited for at most the artifact's ``case_timeout`` (else the provider kind's
        default)."""
        return self.answers.routes(provider, case, upcoming, self._timeouts.get(id(provider)))

    def warm(self, planned: Iterable[tuple[Experiment, PlannedRun]]) -> None:
        """Let each selected artifact's factory start its slow work in the background (see ``ProviderFactory``)."""
        for experiment, plan in planned:
            candidate = experiment.candidates[plan.template_id]
            try:
                factory = self.factory(candidate)
            except LlmgateError:
                continue  # an unknown provider is reported when its cases run
            factory.warm(candidate, self.context(experiment))

    def deterministic_note(self, planned: Iterable[tuple[Experiment, PlannedRun]]) -> list[str]:
        """With ``--llmgate-trials`` above 1: the selected runs whose provider is deterministic (a factory with
        ``deterministic = True``), asked once per case all the same."""
        if (self.trials or 1) <= 1:
            return []
        once = []
        for experiment, plan in planned:
            candidate = experiment.candidates[plan.template_id]
            if self.factory(candidate).deterministic:
                once.append(f"{plan.template_id} ({candidate.provider})")
        if not once:
            return []
        return [f"llmgate: --llmgate-trials={self.trials} does not apply to deterministic providers; "
                f"asked once per case: {', '.join(dict.fromkeys(once))}"]
