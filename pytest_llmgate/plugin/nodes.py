"""pytest's view of an experiment: a directory collector, a collector per suite, an item per (case, candidate)."""

from __future__ import annotations

import concurrent.futures
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pytest_llmgate.engine.judging import judge_calls_of
from pytest_llmgate.engine.session import GateSession
from pytest_llmgate.model.case import Case
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.defaults import MANIFEST_NAME
from pytest_llmgate.model.errors import GuardrailViolation, LlmgateError, ProviderError, redact_urls
from pytest_llmgate.model.evaluate import CaseResult, guardrail_violation, judge_trials
from pytest_llmgate.model.transcript import TrialTranscript, format_transcripts
from pytest_llmgate.model.vocab import Outcome, Role, Route, ShowMode
from pytest_llmgate.providers import Provider
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import PlannedRun
from pytest_llmgate.records.suite import Suite

GATE_KEY = pytest.StashKey[GateSession]()
RESULT_ATTRIBUTE = "llmgate_result"


def gate_of(config: pytest.Config) -> GateSession:
    return config.stash[GATE_KEY]


def experiment_nodes(directory: pytest.Dir) -> tuple[list[pytest.Item | pytest.Collector], frozenset[Path]]:
    """What an experiment directory holds for pytest: a collector per suite, then a run item per selected
    candidate; and the suite files the manifest lists (the rest of the directory is collected as pytest would)."""
    gate = gate_of(directory.config)
    try:
        experiment = gate.load(directory.path)
        gate.frozen(experiment)  # a lock that no longer matches stops the experiment here
        gate.collected.add(experiment.directory)
        plans = gate.plans(experiment)
        providers = {plan.template_id: gate.provider(experiment, plan.template_id) for plan in plans}
    except LlmgateError as exc:
        raise directory.CollectError(exc.message()) from None
    nodes: list[pytest.Item | pytest.Collector] = [
        SuiteCollector.from_parent(directory, path=directory.path / suite.path.relative_to(experiment.directory),
                                   suite=suite, experiment=experiment, plans=plans, providers=providers)
        for suite in experiment.suites
    ]
    manifest = f"{directory.nodeid}/{MANIFEST_NAME}" if directory.nodeid else MANIFEST_NAME
    nodes += [RunItem.from_parent(directory, name=plan.template_id, nodeid=f"{manifest}::{plan.template_id}",
                                  path=directory.path / MANIFEST_NAME, template_id=plan.template_id,
                                  experiment_dir=str(experiment.directory))
              for plan in plans if plan.role is Role.CANDIDATE]
    return nodes, experiment.suite_paths()


class SuiteCollector(pytest.File):
    """A suite listed by the manifest: one item per case and selected run."""

    def __init__(
        self,
        *,
        suite: Suite,
        experiment: Experiment,
        plans: tuple[PlannedRun, ...],
        providers: Mapping[str, Provider],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.experiment = experiment
        self.plans = plans
        self.providers = providers

    def collect(self) -> Iterator[CaseItem]:
        base = self.nodeid
        directory = str(self.experiment.directory)
        evaluation_sha = self.experiment.short_fingerprints["evaluation"]
        # Shown by CI test views through --junitxml <properties>: the same few pairs for every item of a run.
        properties = {plan.template_id: (("llmgate_template_id", plan.template_id), ("llmgate_suite", self.suite.name),
                                         ("llmgate_evaluation_sha", evaluation_sha)) for plan in self.plans}
        for case in self.suite.cases:
            for plan in self.plans:
                name = f"{case.case_id}[{plan.template_id}]"
                # A string node id is parsed by pytest >= 9.2 into path, names and params, exactly
                # as --lf parses the ids it stored; a name with [...] built by parent.id.child() is not.
                yield CaseItem.from_parent(
                    self, name=name, nodeid=f"{base}::{name}", case=case, plan=plan,
                    provider=self.providers[plan.template_id], experiment_dir=directory,
                    properties=properties[plan.template_id],
                )


class RunItem(pytest.Item):
    """A gating candidate's run-level gates (every selected case evaluated, the record written, the budget, the
    evidence requirement): judged on the controller at session end, once every case's result is in, and reported
    then as an ordinary test report (``Wiring.judge_runs``). pytest's run loop does nothing with it."""

    judged_at_session_end = True

    def __init__(self, *, template_id: str, experiment_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template_id = template_id
        self.experiment_dir = experiment_dir

    def runtest(self) -> None:  # never called: see ``plugin.entry.pytest_runtest_protocol``
        pass

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.template_id} [run-level gates]"

    def info(self) -> RunItemInfo:
        """What the controller needs to report it (it travels from xdist workers)."""
        return RunItemInfo(self.nodeid, self.location, self.experiment_dir, self.template_id)


class RunItemInfo(msgspec.Struct, frozen=True, array_like=True):
    """A run item as the controller reports it; it travels from an xdist worker as a list
    (``msgspec.to_builtins``, read back with ``msgspec.convert``)."""

    nodeid: str
    location: tuple[str, int | None, str]
    experiment_dir: str
    template_id: str


class CaseItem(pytest.Item):
    """One case for one candidate: the candidate answers in setup, the guardrails are asserted in the call."""

    def __init__(
        self, *, case: Case, plan: PlannedRun, provider: Provider, experiment_dir: str,
        properties: tuple[tuple[str, str], ...], **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.plan = plan
        self.provider = provider
        self.experiment_dir = experiment_dir
        self.properties = properties  # one tuple per run, shared by its items (attach_result)
        self.result: CaseResult | None = None
        self._routes: tuple[Route, ...] = ()
        self._calls: tuple[Usage, ...] = ()
        self._reported = False
        self._said = ""

    def _finish(
        self, predicted: Route | None, outcome: Outcome, error: str | None = None, trial_routes: tuple[Route, ...] = ()
    ) -> None:
        self.result = CaseResult(
            experiment_dir=self.experiment_dir, template_id=self.plan.template_id, role=self.plan.role,
            case_id=self.case.case_id, predicted_route=predicted, outcome=outcome, error=error,
            trial_routes=trial_routes, calls=self._calls,
            judge_calls=judge_calls_of(self.provider, self.case.case_id),
        )
        self._routes, self._calls = (), ()  # the result holds them now; an item keeps no per-call objects

    def _context(self) -> str:
        case = self.case
        return f"case {case.case_id} (suite {case.suite}, slice {case.slice_name}, evidence {case.evidence_state})"

    def setup(self) -> None:
        # each trial's route and call usage, from the session (which pools and prefetches the calls)
        upcoming = None if hasattr(self.config, "workerinput") else self._upcoming
        try:
            answers = gate_of(self.config).routes(self.provider, self.case.candidate_view(), upcoming)
            self._routes = tuple(route for route, _ in answers)
            self._calls = tuple(usage for _, usage in answers)
            return
        except Exception as exc:
            error = exc
        if isinstance(error, ProviderError):  # the calls answered before it failed: paid
            self._calls = tuple(call for call in error.calls if isinstance(call, Usage))  # a tuple: Answers made it
        reason = safe_reason(error)
        self._finish(None, Outcome.ERROR, f"{type(error).__name__}: {reason}" if reason else type(error).__name__)
        message = (f"ERROR: {self.plan.template_id} on {self._context()}: {reason}" if reason
                   else f"ERROR: {self.plan.template_id} raised {type(error).__name__} on {self._context()}")
        if self.plan.role is Role.BASELINE:
            pytest.xfail(f"baseline {message}")
        show = gate_of(self.config).show
        if not reason:  # the candidate's own message and traceback may hold the case's input
            message += ("\n\n(its message and traceback are hidden by --llmgate-show=none)" if show is ShowMode.NONE
                        else f"\n\n{_user_traceback(error)}")
        # pytest shows a setup failure without calling repr_failure: fail with the text to show.
        pytest.fail(message + self._what_the_model_said(), pytrace=False)

    def _upcoming(self) -> Iterator[Mapping[str, Any]]:
        """The cases this process will ask this item's provider about, in run order (exactly the session's items)."""
        for item in self.session.items:
            if isinstance(item, CaseItem) and item.provider is self.provider:
                yield item.case.candidate_view()

    def runtest(self) -> None:
        routes = self._routes
        outcome, predicted = judge_trials(self.case.expected_route, routes)
        self._finish(predicted, outcome, trial_routes=routes if len(routes) > 1 else ())
        if outcome is Outcome.PASS:
            return
        violation = guardrail_violation(self.case, self.plan.template_id, outcome, routes)
        if self.plan.role is Role.BASELINE:
            pytest.xfail(f"baseline {violation.full()}")
        self._said = self._what_the_model_said()
        raise violation

    def _what_the_model_said(self) -> str:
        """The rendered messages and each trial's reply, for the failure text (terminal and JUnit) only."""
        show = gate_of(self.config).show
        shown = [] if show is ShowMode.NONE else [transcript for transcript in self.transcripts() if transcript]
        return format_transcripts(shown, show) if shown else ""

    def transcripts(self) -> list[TrialTranscript | None]:
        """What each trial sent and got back (None for a trial, or all: the provider has none to give)."""
        view = self.case.candidate_view()
        try:
            return [self.provider.transcript(view, trial) for trial in range(self.provider.trials)]
        except Exception:
            return []

    def attach_result(self, report: pytest.TestReport) -> None:
        """Put this item's result on the report that decides it, as plain data (it travels from xdist workers); the
        gate's listener takes it off the report on the controller (pytest keeps every report to the end). The JUnit
        XML properties go only on the reports JUnit reads them from: the teardown report, and a failed call's (when
        the teardown fails too, JUnit closes that one first). In the item's own ``user_properties`` pytest copies
        them to each of its three reports: 100 bytes a case, benchmark (e)."""
        if report.when == "teardown" or (report.when == "call" and report.failed):
            report.user_properties.extend(self.properties)
        if self._reported or self.result is None:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            setattr(report, RESULT_ATTRIBUTE, self.result.to_payload())
            self._reported = True
            self.result = None  # the report carries it now

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GuardrailViolation):
            # pytest's own one-line view (the short summary, JUnit's message) stays "GUARDRAIL: sentence", on
            # pytest 8 and 9 and through xdist; the failure section shows the sentence and what the model said.
            shown = excinfo.getrepr(style="value")
            entries = getattr(getattr(shown, "reprtraceback", None), "reprentries", None)
            if entries:
                entries[-1].lines = (excinfo.value.full() + self._said).split("\n")
                return shown
            return excinfo.value.full() + self._said
        if isinstance(excinfo.value, pytest.xfail.Exception):
            # a baseline's broken guardrail: pytest shows its reason, never this traceback; drawing one reads the
            # source of every frame (0.2 s a case: a 10,000-case baseline spent minutes here)
            return excinfo.getrepr(style="value")
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return self.path, line, f"{self.case.case_id} [{self.plan.template_id}]"


#: Where the frames of a candidate's traceback that are not its own come from: the gate, and the thread pool that
#: made its call (``future.result()`` raises the candidate's exception again from there).
_NOT_THE_CANDIDATES = (str(Path(__file__).parent.parent), str(Path(concurrent.futures.__file__).parent))


def _user_traceback(exc: BaseException) -> str:
    """The traceback of a candidate's exception without the gate's own frames (nor its thread pool's)."""
    summary = traceback.TracebackException.from_exception(exc)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not frame.filename.startswith(_NOT_THE_CANDIDATES)]
    )
    return "".join(summary.format()).rstrip()


def safe_reason(error: BaseException) -> str | None:
    """The one-line reason of an error the gate composed itself (no input, no secret), else None. A URL in it is
    shown without its credentials and query string (a plugin's message may name its endpoint)."""
    if not isinstance(error, ProviderError):
        return None
    lines = str(error).splitlines()
    return redact_urls(lines[0]) if lines else None
