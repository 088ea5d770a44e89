"""Evaluators at work: a candidate's reply turned into a route by a rule, a callable or a judge model (through the
same providers as candidates), the judge's calibration, and whether it may gate a run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

import msgspec

from pytest_llmgate.model.agreement import agreement, majority
from pytest_llmgate.model.costs import Usage, total_known
from pytest_llmgate.model.decision import Verdict
from pytest_llmgate.model.errors import CandidateError, ProviderError, display_path, redact_urls, with_calls
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.transcript import TrialTranscript
from pytest_llmgate.model.vocab import RecordMode, Route
from pytest_llmgate.providers import (
    Provider,
    ProviderContext,
    ProviderDefaults,
    ProviderFactory,
    check_settings,
    coerce_route,
)
from pytest_llmgate.providers.calls import DEFAULT_CASE_TIMEOUT, CallPool, CaseTimeout
from pytest_llmgate.providers.python_callable import import_callable
from pytest_llmgate.providers.recordings import NotRecorded, recordings_path
from pytest_llmgate.records.candidate import Candidate
from pytest_llmgate.records.evaluator import (
    JSON_ROUTE,
    JUDGE_KIND,
    REPLY_FIELD,
    CalibrationResult,
    CalibrationSet,
    Evaluator,
    JudgeStanding,
    PythonEvaluatorFile,
    RouteEvaluatorFile,
    judged_status,
    load_calibration_set,
    route_in_reply,
)
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.run import RunRecord

FactoryOf = Callable[[Candidate], ProviderFactory]


class JudgeFailed(ProviderError):
    """An evaluator gave no usable verdict on a case (a judge's timeout, 429 or unreadable verdict): an ERROR.
    ``judge_calls``: the judge's calls answered before it failed (counted apart from the candidate's ``calls``)."""

    def __init__(self, message: str, judge_calls: Iterable[Usage] = ()) -> None:
        super().__init__(message)
        self.judge_calls = tuple(judge_calls)


def judge_candidate(evaluator: Evaluator) -> Candidate:
    """A judge as its provider sees it: an artifact whose ``template_id`` is the evaluator id and whose settings
    say ``kind: judge`` (its prompt may then name ``{{ reply }}``)."""
    document = evaluator.judge_document()
    return Candidate(
        template_id=evaluator.evaluator_id, path=evaluator.path, relative_path=evaluator.relative_path,
        sha256=evaluator.sha256, provider=str(document.data.get("provider", "")),
        settings=MappingProxyType({**document.data, "kind": JUDGE_KIND}), document=document,
    )


def case_timeout(candidate: Candidate, concurrent: bool) -> float:
    """Seconds each of the artifact's calls (each trial) is waited for: its ``case_timeout``, else its provider
    kind's default (``DEFAULT_CASE_TIMEOUT``)."""
    timeout = candidate.case_timeout
    return DEFAULT_CASE_TIMEOUT[concurrent] if timeout is None else timeout


def no_verdict(evaluator_id: str, timeout: float) -> str:
    """Why a judge's call waited for past its ``case_timeout`` gave no verdict."""
    return f"judge {evaluator_id} gave no verdict within {timeout:g}s (case_timeout); the call was abandoned"


def check_evaluator(evaluator: Evaluator, factory_of: FactoryOf) -> None:
    """A judge's provider settings, checked by its provider (errors name the evaluator file's line)."""
    if evaluator.kind == JUDGE_KIND:
        candidate = judge_candidate(evaluator)
        if not candidate.provider:
            raise CandidateError(evaluator.path, evaluator.document.line_of([]),
                                 "a judge names its provider (provider: openai_chat, anthropic_messages or a "
                                 "plugin's)")
        check_settings(candidate, factory_of(candidate))


# -- turning a reply into a route ------------------------------------------------------------------------------


def _judge(evaluator: Evaluator, context: ProviderContext, factory_of: FactoryOf) -> Provider:
    """A judge's provider (``--llmgate-trials`` is the candidate's: a judge asks as often as its own file says)."""
    candidate = judge_candidate(evaluator)
    return factory_of(candidate).build(candidate, msgspec.structs.replace(context, trials=None))


class _Verdicts:
    """What an evaluator says of one reply: a route, the judge calls it made and its reason, for the terminal.
    A judge's calls are made in ``calls``, each waited for within the judge's ``case_timeout``."""

    def __init__(self, evaluator: Evaluator, context: ProviderContext, factory_of: FactoryOf, calls: CallPool
                 ) -> None:
        self.evaluator = evaluator
        self.calls = calls
        self.name = f"{evaluator.kind} evaluator {evaluator.evaluator_id}"
        self.judge: Provider | None = None
        self.timeout = DEFAULT_CASE_TIMEOUT[True]  # the wait for each judge call (a judge's own: below)
        self.function: Callable[..., Any] | None = None
        self.rule = JSON_ROUTE
        if isinstance(evaluator.parsed, PythonEvaluatorFile):
            self.function = import_callable(evaluator.parsed.callable, context.experiment_dir,
                                            judge_candidate(evaluator), DEFAULT_CASE_TIMEOUT[False])
        elif isinstance(evaluator.parsed, RouteEvaluatorFile):
            self.rule = evaluator.parsed.route
        else:
            self.judge = _judge(evaluator, context, factory_of)
            self.timeout = case_timeout(judge_candidate(evaluator), bool(self.judge.concurrent))

    def verdict(self, view: Mapping[str, Any], reply: str) -> tuple[Route, tuple[Usage, ...], str]:
        """The route of ``reply`` to the case ``view`` (which has no expected route), the judge's calls, a reason."""
        if self.judge is not None:
            return self._judged(self.judge, view, reply)
        if self.function is not None:
            try:
                answer = self.function(view, reply)
                route = coerce_route(answer, self.name)
            except Exception as exc:
                raise JudgeFailed(f"{self.name} failed: {type(exc).__name__}") from None
            reason = answer.get("reason") if isinstance(answer, Mapping) else getattr(answer, "reason", None)
            return route, (), str(reason) if reason else f"{self.name} said {route.value}"
        try:
            return route_in_reply(reply, self.rule), (), f"read by {self.name}"
        except ValueError as exc:
            raise JudgeFailed(f"{self.name}: {exc}") from None

    def _judged(self, judge: Provider, view: Mapping[str, Any], reply: str) -> tuple[Route, tuple[Usage, ...], str]:
        judged = MappingProxyType({**view, REPLY_FIELD: reply})
        routes: list[Route] = []
        calls: list[Usage] = []
        reasons: list[str] = []
        for trial in range(judge.trials):
            try:
                route, usage, text = self.calls.result(object(), partial(_judge_answer, judge, judged, trial),
                                                       self.timeout)
            except CaseTimeout:  # a late reply is not recorded (providers.recordings.abandoned)
                raise JudgeFailed(no_verdict(self.evaluator.evaluator_id, self.timeout), calls) from None
            except ProviderError as exc:
                line = (str(exc).splitlines() or [""])[0]
                raise JudgeFailed(f"judge {self.evaluator.evaluator_id}: {redact_urls(line)}",
                                  (*calls, *exc.calls)) from None
            except Exception as exc:
                raise JudgeFailed(f"judge {self.evaluator.evaluator_id} raised {type(exc).__name__}", calls) from None
            routes.append(route)
            calls.append(usage)
            reasons += [text] if text is not None else []
        served = routes.count(Route.SERVE)
        if served * 2 == len(routes):
            raise JudgeFailed(f"judge {self.evaluator.evaluator_id} split {served}-{len(routes) - served} over its "
                              "trials: no verdict (give it an odd number of trials)", calls)
        route = Route.SERVE if served * 2 > len(routes) else Route.ABSTAIN
        return route, tuple(calls), " | ".join(dict.fromkeys(reasons)) or route.value


def _judge_answer(judge: Provider, view: Mapping[str, Any], trial: int) -> tuple[Route, Usage, str | None]:
    """A judge's route, what its call used and its reply's text (its reason; None: it gives no reply text)."""
    reply = judge.reply
    if reply is None:
        return (*judge.answer(view, trial), None)
    text, usage = reply(view, trial)
    try:
        return judge.read_route(text), usage, text
    except ProviderError as error:  # an unreadable verdict: the judge's call was made all the same
        with_calls(error, (usage,))
        raise


class JudgedProvider(ProviderDefaults):
    """A candidate whose replies (``replies``: its ``reply``) an evaluator turns into routes: what the session asks
    instead of the candidate.

    With a judge, the candidate's call and each of the judge's are made in ``calls`` (its pool), each waited for
    within its own artifact's ``case_timeout`` (the candidate's: ``timeout``), so that a late one is abandoned,
    never recorded, and its ERROR names whose call it was; the session waits for the answer that holds them as
    long as they take (``timed``). A rule or a callable judges in place: the session waits for the whole answer
    within the candidate's ``case_timeout``, as for any candidate.

    The judge's calls are kept apart (``judge_calls``) and travel on the case's result; its reason is shown under
    a failing case with the reply (``transcript``), never written to a record."""

    def __init__(self, candidate: Provider, replies: Callable[[Mapping[str, Any], int], tuple[str, Usage]],
                 verdicts: _Verdicts, timeout: float) -> None:
        self.candidate = candidate
        self.replies = replies
        self.verdicts = verdicts
        self.timeout = timeout
        self.timed = verdicts.judge is not None
        self._lock = threading.Lock()
        self._judge_calls: dict[tuple[str, int], tuple[Usage, ...]] = {}
        self._reasons: dict[tuple[str, int], str] = {}

    @property
    def trials(self) -> int:
        return self.candidate.trials

    @property
    def concurrent(self) -> bool:
        return bool(self.candidate.concurrent) or self.verdicts.judge is not None

    def answer(self, case: Mapping[str, Any], trial: int = 0) -> tuple[Route, Usage]:
        if self.timed:
            reply, usage = self.verdicts.calls.result(object(), partial(self.replies, case, trial), self.timeout)
        else:
            reply, usage = self.replies(case, trial)
        key = (str(case["case_id"]), trial)
        try:
            route, calls, reason = self.verdicts.verdict(case, reply)
        except ProviderError as error:  # the judge failed: the candidate's call was made all the same
            with_calls(error, (usage,))
            if isinstance(error, JudgeFailed):  # and the judge's calls before it failed
                with self._lock:
                    self._judge_calls[key] = error.judge_calls
            raise
        with self._lock:
            self._judge_calls[key] = calls
            self._reasons[key] = reason
        return route, usage

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        return self.answer(case, trial)[0]

    def judge_calls(self, case_id: str) -> tuple[Usage, ...]:
        """The judge's calls on ``case_id`` (every trial), taken once."""
        with self._lock:
            keys = [key for key in self._judge_calls if key[0] == case_id]
            return tuple(call for key in sorted(keys) for call in self._judge_calls.pop(key))

    def transcript(self, case: Mapping[str, Any], trial: int) -> TrialTranscript:
        shown = self.candidate.transcript(case, trial) or TrialTranscript(trial=trial, messages=(), reply=None,
                                                                         source="no reply")
        with self._lock:
            reason = self._reasons.get((str(case["case_id"]), trial))
        if reason is None:
            return shown
        said = f"{self.verdicts.name}: {reason}"
        return msgspec.structs.replace(shown, note=f"{shown.note}; {said}" if shown.note else said)


def judged(provider: Provider, candidate: Candidate, evaluator: Evaluator, context: ProviderContext,
           factory_of: FactoryOf, calls: CallPool) -> JudgedProvider:
    """``provider`` with its replies judged by ``evaluator`` (a judge's calls and the candidate's made in
    ``calls``); a provider that gives no reply text is an error."""
    replies = provider.reply
    if replies is None:
        raise CandidateError(
            candidate.path, candidate.line_of("provider"),
            f"provider {candidate.provider!r} gives no reply text for the {evaluator.kind} evaluator "
            f"{evaluator.evaluator_id} to read (an LLM provider does: openai_chat, anthropic_messages, or a plugin "
            "provider with reply(case, trial))",
        )
    # the candidate's own timeout counts only with a judge, whose judged answer is concurrent: its default is a
    # concurrent provider's, as before the judge's calls were timed apart
    return JudgedProvider(provider, replies, _Verdicts(evaluator, context, factory_of, calls),
                          case_timeout(candidate, concurrent=True))


def judge_not_ready(experiment: Experiment, context: ProviderContext, factory_of: FactoryOf) -> str | None:
    """Why the experiment's judge can answer no reply at all (no API key for a live call, nothing recorded to
    replay), said once before any case runs; None for a judge that may answer, or no judge."""
    evaluator = experiment.evaluator
    if evaluator is None or evaluator.kind != JUDGE_KIND:
        return None
    candidate = judge_candidate(evaluator)
    problem = factory_of(candidate).ready(candidate, msgspec.structs.replace(context, trials=None))
    named = f"judge {evaluator.evaluator_id}"  # the built-in providers name it; a plugin's may not
    return problem if problem is None or named in problem else f"{named}: {problem}"


def judge_calls_of(provider: Provider, case_id: str) -> tuple[Usage, ...]:
    """The judge's calls on a case, when ``provider`` is judged (else none)."""
    return provider.judge_calls(case_id) if isinstance(provider, JudgedProvider) else ()


# -- may the judge gate? ---------------------------------------------------------------------------------------


def with_standing(record: RunRecord, judge: JudgeStanding | None, results: Mapping[str, Sequence[CaseResult]]
                  ) -> RunRecord:
    """The run's record with its evaluator's standing and the judge's calls; a judge that may not gate turns an
    eligible run into INSUFFICIENT_EVIDENCE."""
    if judge is None:
        return record
    calls = [call for ran in results.values() if ran for call in ran[-1].judge_calls]
    judge = msgspec.structs.replace(
        judge, judge_calls=len(calls), judge_input_tokens=total_known([call.input_tokens for call in calls]),
        judge_output_tokens=total_known([call.output_tokens for call in calls]),
    )
    return msgspec.structs.replace(record, evaluator=judge, status=judged_status(record.status, judge))


def judged_verdict(verdict: Verdict, records: Iterable[RunRecord]) -> Verdict:
    """The decision, saying when a judge that may not gate kept a run from being eligible."""
    unfit = {record.evaluator.reason for record in records
             if record.evaluator is not None and not record.evaluator.may_gate}
    if not unfit:
        return verdict
    return msgspec.structs.replace(verdict, reason=f"{verdict.reason}; the evaluator may not gate: {'; '.join(unfit)}")


def judge_notes(experiment: Experiment, template_ids: Iterable[str], judge: JudgeStanding | None) -> list[str]:
    """What the summary says of an experiment's judge: its standing with its figures, and a warning for each
    candidate whose model is the judge's own."""
    evaluator = experiment.evaluator
    if evaluator is None or judge is None:
        return []
    notes = [f"llmgate: {experiment.name}: {judge.reason}" + ("" if judge.may_gate else
                                                               " -- its runs are not eligible")]
    if evaluator.kind == JUDGE_KIND and evaluator.model is not None:
        same = [template_id for template_id in template_ids
                if experiment.candidates[template_id].settings.get("model") == evaluator.model]
        if same:
            notes.append(f"llmgate: warning: {experiment.name}: judge {evaluator.evaluator_id} uses model "
                         f"{evaluator.model!r}, the model of {', '.join(same)}: a model judging its own replies "
                         "tends to agree with them")
    return notes


# -- calibration -----------------------------------------------------------------------------------------------


class Calibration(msgspec.Struct, frozen=True, kw_only=True):
    """A calibration's result (for the file) and, for the terminal only, each disagreement with its reply and the
    judge's reason, and each error."""

    result: CalibrationResult
    disagreements: tuple[tuple[str, Route, Route, str, str], ...]  # case id, label, verdict, reply, reason
    errors: tuple[tuple[str, str], ...]  # case id, why
    labelled: dict[Route, int]  # the set's items per label, a verdict or not


def calibrate(experiment: Experiment, factory_of: FactoryOf, *, record_mode: RecordMode, concurrency: int,
              calibrated_at: str, version: str | None) -> Calibration:
    """Run the experiment's judge over its calibration set (each item its trials, ``concurrency`` in flight; each
    call waited for within the judge's ``case_timeout`` when it has one, else as long as it takes). A judge that
    can answer no item at all (no API key for a live call, nothing recorded to replay) is a ``CandidateError``
    before any call, as a session's ``judge_not_ready``."""
    evaluator = experiment.evaluator
    if evaluator is None or evaluator.kind != JUDGE_KIND:
        has = "names no evaluator" if evaluator is None else f"names a {evaluator.kind} evaluator, not a judge"
        raise CandidateError(experiment.manifest_path, None, f"llmgate calibrate calibrates a judge: the manifest {has}")
    check_evaluator(evaluator, factory_of)
    calibration = load_calibration_set(evaluator.calibration_path)
    context = ProviderContext(experiment_dir=experiment.directory, record_mode=record_mode, record_option="--record")
    problem = judge_not_ready(experiment, context, factory_of)
    if problem:
        raise CandidateError(None, None, problem)
    judge = _judge(evaluator, context, factory_of)
    timeout = judge_candidate(evaluator).case_timeout
    pool = CallPool(concurrency)
    calls: list[list[tuple[tuple[int, int], Callable[[], Any]]]] = []
    try:
        for index in range(len(calibration.items)):
            view = MappingProxyType({**calibration.judge_view(index)})
            calls.append([((index, trial), partial(_judge_answer, judge, view, trial))
                          for trial in range(judge.trials)])
        pool.prefetch(call for item_calls in calls for call in item_calls)
        recordings = display_path(recordings_path(experiment.directory, evaluator.evaluator_id))
        not_recorded = f"not recorded in {recordings}; run llmgate calibrate with --record new_episodes"
        why = partial(_why, not_recorded=not_recorded, evaluator_id=evaluator.evaluator_id)
        labels, trial_verdicts, rows, errors = _collect(calibration, pool, calls, timeout, why)
    finally:
        pool.shutdown()
    figures = agreement(labels, trial_verdicts, evaluator.confidence)
    disagreements = tuple(row for row in rows if row[1] is not row[2])
    result = CalibrationResult(
        evaluator_id=evaluator.evaluator_id, evaluator_sha256=evaluator.sha256, model=evaluator.model,
        prompt_sha256=evaluator.prompt_sha256, calibration_path=evaluator.calibration_relative,
        calibration_sha=calibration.fingerprint, calibrated_at=calibrated_at, record_mode=record_mode.value,
        confidence=evaluator.confidence, items=figures.items, trials=judge.trials, error_count=len(errors),
        served_labels=figures.served_labels, served_caught=figures.served_caught,
        abstain_labels=figures.abstain_labels, abstain_kept=figures.abstain_kept, base_rate=figures.base_rate,
        sensitivity=figures.sensitivity, sensitivity_lower=figures.sensitivity_lower,
        specificity=figures.specificity, specificity_lower=figures.specificity_lower, kappa=figures.kappa,
        self_consistency=figures.self_consistency, disagreements=tuple(row[0] for row in disagreements),
        llmgate_version=version,
    )
    return Calibration(result=result, disagreements=disagreements, errors=tuple(errors),
                       labelled=calibration.labelled())


def _collect(calibration: CalibrationSet, pool: CallPool,
             calls: Sequence[Sequence[tuple[tuple[int, int], Callable[[], Any]]]], timeout: float | None,
             why: Callable[[Exception, float], str],
             ) -> tuple[list[Route], list[list[Route]], list[tuple[str, Route, Route, str, str]], list[tuple[str, str]]]:
    """Each item's label and trial verdicts (items the judge failed on are left out and listed as errors, as
    ``why`` says). Each trial is waited for within ``timeout`` (None: as long as it takes), the trials of an item
    that failed too: one past it is abandoned, never recorded."""
    labels: list[Route] = []
    trial_verdicts: list[list[Route]] = []
    rows: list[tuple[str, Route, Route, str, str]] = []
    errors: list[tuple[str, str]] = []
    for index, item_calls in enumerate(calls):
        item = calibration.items[index]
        label = calibration.label(index)
        answers: list[tuple[Route, Usage, str | None]] = []
        failed: Exception | None = None
        for key, call in item_calls:
            try:
                answers.append(pool.result(key, call, timeout))
            except Exception as exc:
                failed = exc if failed is None else failed
        if failed is not None:
            errors.append((str(item["case_id"]), why(failed, timeout or 0)))
            continue
        routes = [route for route, _, _ in answers]
        labels.append(label)
        trial_verdicts.append(routes)
        rows.append((str(item["case_id"]), label, majority(routes, label), str(item["reply"]),
                     " | ".join(dict.fromkeys(reason or "" for _, _, reason in answers))))
    return labels, trial_verdicts, rows, errors


def _why(exc: Exception, timeout: float, *, not_recorded: str, evaluator_id: str) -> str:
    """Why a calibration item has no verdict: its first failing trial's error."""
    if isinstance(exc, CaseTimeout):
        return no_verdict(evaluator_id, timeout)
    if isinstance(exc, NotRecorded):
        return not_recorded
    if isinstance(exc, ProviderError):
        return redact_urls((str(exc).splitlines() or [""])[0])
    return type(exc).__name__
