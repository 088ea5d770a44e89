"""Run records: the metrics, status and provenance of one candidate on one experiment."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, compress
from operator import attrgetter
from typing import Any, cast

import msgspec

from pytest_llmgate.model.costs import Budget, CaseCost, CostMetrics, Pricer, case_cost, cost_metrics, over_budget
from pytest_llmgate.model.decision import Promotion
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.evidence import Comparison, Evidence, confidence_of, evidence_of, paired_comparison
from pytest_llmgate.model.fingerprint import short, value_sha256
from pytest_llmgate.model.stats import DEFAULT_CONFIDENCE, upper_bound
from pytest_llmgate.model.vocab import REDACTED_EVAL_SCHEMA, RUN_SCHEMA, Outcome, Role, Route, RunStatus
from pytest_llmgate.records.candidate import Candidate
from pytest_llmgate.records.diff import StoredComparison
from pytest_llmgate.records.evaluator import JudgeStanding, judged_status
from pytest_llmgate.records.experiment import Experiment


class CaseEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One case's line in a record: labels, prediction and outcome; its input only as a hash.

    With several trials: every trial's route, the share of the most common route (``agreement``) and the
    share of trials that served where the label says ABSTAIN (``unsafe_trial_rate``), how many trials passed,
    served unsafely and abstained unnecessarily, and ``flaky`` when the trials disagree."""

    suite: str
    case_id: str
    slice_name: str
    evidence_state: str
    expected_route: Route
    predicted_route: Route | None
    outcome: Outcome
    input_sha256: str | None = None
    error: str | None = None
    trial_routes: tuple[Route, ...] = ()
    agreement: float | None = None
    unsafe_trial_rate: float | None = None
    # -- per-trial counts (issue 14; written only with several trials) --
    passed_trials: int | None = None
    unsafe_trials: int | None = None
    unnecessary_trials: int | None = None
    flaky: bool = False
    # -- costs (additive) --
    cost: CaseCost | None = None
    # -- trust (issue 18): what makes a stored record checkable --
    case_sha256: str | None = None  # SHA-256 of the case's mapping as written (as in llmgate.lock)

    def trial_counts(self) -> tuple[int, int, int, int]:
        """(trials, passed, unsafe, unnecessary) of this case; a case that errored or did not run has no trial."""
        if self.predicted_route is None:
            return 0, 0, 0, 0
        routes = self.trial_routes
        if not routes:
            outcome = self.outcome
            return (1, int(outcome is Outcome.PASS), int(outcome is Outcome.UNSAFE_CLAIM_SERVED),
                    int(outcome is Outcome.UNNECESSARY_ABSTENTION))
        wrong = routes.count(Route.ABSTAIN if self.expected_route is Route.SERVE else Route.SERVE)
        unsafe = wrong if self.expected_route is Route.ABSTAIN else 0
        return len(routes), len(routes) - wrong, unsafe, wrong - unsafe



_OUTCOME = attrgetter("outcome")
_PREDICTED = attrgetter("predicted_route")
_TRIAL_ROUTES = attrgetter("trial_routes")
_FLAKY = attrgetter("flaky")
_SUITE = attrgetter("suite")
_COST = attrgetter("cost")
_CASE_ID = attrgetter("case_id")


class Metrics(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Counts over a set of cases; ``exact_route_rate`` is over every case of the set, run or not.

    Over the cases judged (``judged_count``: each case that ran and was judged, the unit of evidence): the share
    that served unsafely and abstained unnecessarily in any of their trials, each with its one-sided upper
    Clopper–Pearson bound at ``confidence`` (the bound the evidence requirement reads). Over case-trials (each
    trial of each case that ran; one per case without trials), as description: how many there were, how many
    served unsafely and abstained unnecessarily, each rate with its bound, and how many cases were flaky
    (docs/statistics.md). Always written by the gate; absent (None) in records written before they existed. ``cost``: tokens, money and latency over the cases
    that ran (omitted when none ran; docs/costs.md)."""

    case_count: int
    unsafe_claim_served: int
    unnecessary_abstention: int
    exact_route_rate: float
    error_count: int
    not_run_count: int
    # -- case-trials and their upper confidence bounds (issue 14) --
    trial_count: int | None = None
    unsafe_trials: int | None = None
    unnecessary_trials: int | None = None
    flaky_count: int | None = None
    confidence: float | None = None
    unsafe_rate: float | None = None
    unsafe_rate_upper: float | None = None
    unnecessary_rate: float | None = None
    unnecessary_rate_upper: float | None = None
    # -- costs (additive) --
    cost: CostMetrics | None = None
    # -- the case as the unit of evidence (issue 24) --
    judged_count: int | None = None
    unsafe_case_rate: float | None = None
    unsafe_case_rate_upper: float | None = None
    unnecessary_case_rate: float | None = None
    unnecessary_case_rate_upper: float | None = None

    @classmethod
    def of(cls, entries: Sequence[CaseEntry], confidence: float = DEFAULT_CONFIDENCE) -> Metrics:
        count = len(entries)
        # counted by (outcome, predicted route) in C: a case with no prediction (ERROR, NOT_RUN) has no trial
        pairs = Counter(zip(map(_OUTCOME, entries), map(_PREDICTED, entries), strict=True))
        tally = dict.fromkeys(Outcome, 0)
        for (outcome, _), number in pairs.items():
            tally[outcome] += number
        if any(map(_TRIAL_ROUTES, entries)):
            trials = unsafe = unnecessary = 0
            for entry in entries:
                n, _, bad, needless = entry.trial_counts()
                trials, unsafe, unnecessary = trials + n, unsafe + bad, unnecessary + needless
        else:  # one trial per answered case: its outcome says how it went
            answered = {key: number for key, number in pairs.items() if key[1] is not None}
            trials = sum(answered.values())
            unsafe = sum(number for (outcome, _), number in answered.items() if outcome is Outcome.UNSAFE_CLAIM_SERVED)
            unnecessary = sum(number for (outcome, _), number in answered.items()
                              if outcome is Outcome.UNNECESSARY_ABSTENTION)
        unsafe_cases, unnecessary_cases = tally[Outcome.UNSAFE_CLAIM_SERVED], tally[Outcome.UNNECESSARY_ABSTENTION]
        judged = tally[Outcome.PASS] + unsafe_cases + unnecessary_cases
        return cls(
            case_count=count,
            unsafe_claim_served=tally[Outcome.UNSAFE_CLAIM_SERVED],
            unnecessary_abstention=tally[Outcome.UNNECESSARY_ABSTENTION],
            exact_route_rate=round(tally[Outcome.PASS] / count, 6) if count else 0.0,
            error_count=tally[Outcome.ERROR],
            not_run_count=tally[Outcome.NOT_RUN],
            trial_count=trials,
            unsafe_trials=unsafe,
            unnecessary_trials=unnecessary,
            flaky_count=sum(map(_FLAKY, entries)),
            confidence=confidence,
            unsafe_rate=round(unsafe / trials, 6) if trials else 0.0,
            unsafe_rate_upper=_figure(upper_bound(unsafe, trials, confidence)),
            unnecessary_rate=round(unnecessary / trials, 6) if trials else 0.0,
            unnecessary_rate_upper=_figure(upper_bound(unnecessary, trials, confidence)),
            judged_count=judged,
            unsafe_case_rate=round(unsafe_cases / judged, 6) if judged else 0.0,
            unsafe_case_rate_upper=_figure(upper_bound(unsafe_cases, judged, confidence)),
            unnecessary_case_rate=round(unnecessary_cases / judged, 6) if judged else 0.0,
            unnecessary_case_rate_upper=_figure(upper_bound(unnecessary_cases, judged, confidence)),
        )


def _figure(value: float) -> float:
    """A computed bound to 12 significant digits: the same figure on every platform's libm."""
    return float(f"{value:.12g}")


class Artifact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file the run depends on or produced: its path (relative to the experiment or the records folder) and SHA-256."""

    path: str
    sha256: str


class Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A run made by one job of a split session (docs/ci.md, "Split over CI jobs"): ``split_id`` names the split
    (``--llmgate-part``, else the splitter's group, else a digest of the cases it ran), ``selection`` how the
    session was narrowed. A part's ``cases`` are the cases it evaluated, and its figures theirs; ``case_ids``
    lists every case of the whole run in the run's order and ``cases_sha256`` is the whole run's case-set digest
    (what ``llmgate merge`` orders by, checks the merged run against, and names missing cases from);
    ``latencies_ms`` holds the call latencies of each evaluated case whose latencies are not just the one its
    ``cost.latency_ms`` says (a case with several trials, say): what the merge needs for the percentiles."""

    split_id: str
    selection: str
    case_ids: tuple[str, ...]
    cases_sha256: str | None = None
    latencies_ms: dict[str, tuple[float, ...]] = {}


class RunRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                tag_field="schema", tag=RUN_SCHEMA):
    """Everything needed to audit one run without rerunning it (SPEC §5.1): ``DIR/runs/<run_id>.json``.

    ``evidence``: how the counts meet the manifest's evidence requirement (only when one is set);
    ``comparisons``: the run against each baseline run of its session, case by case (docs/statistics.md);
    ``budget``: the manifest's budget the run was held to, and ``over_budget`` each limit it broke with its
    figure (both omitted when there is none);
    the trust fields (docs/trust.md): ``experiment_path`` is the experiment directory relative to
    the records folder (where the candidate file is looked for when a record is checked), ``cases_sha256`` the
    SHA-256 over the sorted ``case_sha256`` of its cases (the case set), ``signature`` an HMAC-SHA-256 over the
    record without it, encoded by msgspec with keys sorted, written when ``LLMGATE_SIGNING_KEY`` is set;
    ``comparison`` is this run against a stored run (``--llmgate-compare-to``); omitted when none was asked for."""

    run_id: str
    experiment: str
    role: Role
    started_at: str
    finished_at: str
    params: dict[str, str]
    metrics: Metrics
    suite_metrics: dict[str, Metrics]
    tags: dict[str, str]
    artifacts: tuple[Artifact, ...]
    fingerprints: dict[str, str]
    cases: tuple[CaseEntry, ...]
    complete: bool
    status: RunStatus
    promotion: Promotion
    frozen: bool
    # -- evidence and paired comparison (issue 14) --
    evidence: Evidence | None = None
    comparisons: tuple[Comparison, ...] = ()
    # -- costs (additive) --
    budget: Budget | None = None
    over_budget: tuple[str, ...] = ()
    # -- trust (issue 18) --
    experiment_path: str | None = None
    cases_sha256: str | None = None
    signature: str | None = None
    # -- against a stored run (issue 16) --
    comparison: StoredComparison | None = None
    # -- split over CI jobs (issue 17) --
    part: Part | None = None  # this run is one part of a split run; its decision waits for ``llmgate merge``
    merged_from: tuple[str, ...] = ()  # a merged run: the run ids of its parts
    missing_cases: tuple[str, ...] = ()  # a merged run: the cases of the run that no part evaluated
    # -- evaluators (issue 26) --
    evaluator: JudgeStanding | None = None  # the manifest's evaluator, whether it may gate, the judge's calls

    @property
    def unevaluated(self) -> int:
        """How many cases of the run have no result here: not run, in no part of a merge (``missing_cases``), or
        (a part) evaluated by other parts."""
        others = len(self.part.case_ids) - len(self.cases) if self.part is not None else 0
        return self.metrics.not_run_count + len(self.missing_cases) + others

    @property
    def template_id(self) -> str:
        return self.params["template_id"]

    @property
    def evaluation_sha(self) -> str:
        return self.params["evaluation_sha"]


class RedactedEval(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                   tag_field="schema", tag=REDACTED_EVAL_SCHEMA):
    """The redacted evaluation report of a run, ``DIR/reports/<run_id>-redacted-eval.json``: no inputs; ``role``
    (absent before 0.2) lets a check of the record see a role changed by hand."""

    run_id: str
    experiment: str
    template_id: str
    evaluation_sha: str
    metrics: Metrics
    suite_metrics: dict[str, Metrics]
    cases: tuple[CaseEntry, ...]
    role: Role | None = None


def cases_digest(hashes: Iterable[str]) -> str:
    """The case set's digest: SHA-256 over the sorted per-case SHA-256s, one per line (hashed a slice at a time,
    never joined into one string)."""
    ordered = sorted(hashes)
    digest = hashlib.sha256()
    for start in range(0, len(ordered), 8192):
        if start:
            digest.update(b"\n")
        digest.update("\n".join(ordered[start:start + 8192]).encode("ascii"))
    return digest.hexdigest()


def run_status(
    complete: bool, metrics: Metrics, promotion: Promotion | None = None, over_budget: Sequence[str] = ()
) -> RunStatus:
    """The run's status: the first that applies of incomplete, unsafe, unnecessary, over budget, insufficient
    evidence (only when ``promotion`` sets an evidence requirement the counts do not meet), else eligible."""
    if not complete:
        return RunStatus.INCOMPLETE_EVALUATION
    if metrics.unsafe_claim_served:
        return RunStatus.REJECT_UNSAFE_SERVE
    if metrics.unnecessary_abstention:
        return RunStatus.REJECT_UNNECESSARY_ABSTENTION
    if over_budget:
        return RunStatus.REJECT_OVER_BUDGET
    evidence = evidence_of(metrics, promotion)
    if evidence is not None and not evidence.met:
        return RunStatus.INSUFFICIENT_EVIDENCE
    return RunStatus.ELIGIBLE_FOR_CANARY_REVIEW


def rejudged(record: RunRecord) -> RunRecord:
    """The record with its status and evidence worked out again from its own counts, completeness and
    requirement (what ``llmgate promote`` applies: stored records alone)."""
    return msgspec.structs.replace(
        record, status=judged_status(run_status(record.complete, record.metrics, record.promotion), record.evaluator),
        evidence=evidence_of(record.metrics, record.promotion),
    )


def case_entries(
    experiment: Experiment, results: Mapping[str, Sequence[CaseResult]], pricer: Pricer | None = None
) -> tuple[tuple[CaseEntry, ...], bool]:
    """One entry per case of the experiment, and whether every case ran exactly once without error; a case whose
    calls were measured has its ``cost`` (priced with ``pricer``; None: unknown)."""
    entries: list[CaseEntry] = []
    complete = True
    for case in experiment.cases:
        ran = results.get(case.case_id, ())
        result = ran[-1] if ran else None
        outcome = result.outcome if result else Outcome.NOT_RUN
        if len(ran) != 1 or outcome in (Outcome.ERROR, Outcome.NOT_RUN):
            complete = False
        entries.append(
            CaseEntry(
                suite=case.suite,
                case_id=case.case_id,
                slice_name=case.slice_name,
                evidence_state=case.evidence_state,
                expected_route=case.expected_route,
                predicted_route=result.predicted_route if result else None,
                outcome=outcome,
                input_sha256=case.input_sha256,
                error=result.error if result else None,
                **_trial_stats(case.expected_route, result.trial_routes if result else ()),
                cost=case_cost(result.calls, pricer) if result and result.calls else None,
                case_sha256=value_sha256(case.written),
            )
        )
    return tuple(entries), complete and bool(entries)  # a run that evaluated no case is never complete


def _trial_stats(expected: Route, routes: tuple[Route, ...]) -> dict[str, Any]:
    """A case's trial routes with their agreement and unsafe-trial rate (nothing for a single trial)."""
    if not routes:
        return {}
    majority = max(routes.count(route) for route in set(routes))
    wrong = routes.count(Route.SERVE if expected is Route.ABSTAIN else Route.ABSTAIN)
    unsafe = wrong if expected is Route.ABSTAIN else 0
    return {
        "trial_routes": routes,
        "agreement": round(majority / len(routes), 6),
        "unsafe_trial_rate": round(unsafe / len(routes), 6),
        "passed_trials": len(routes) - wrong,
        "unsafe_trials": unsafe,
        "unnecessary_trials": wrong - unsafe,
        "flaky": len(set(routes)) > 1,
    }


def build_params(
    experiment: Experiment, candidate: Candidate, code_commit: str, version: str, extra: Mapping[str, str]
) -> dict[str, str]:
    params = {
        "template_id": candidate.template_id,
        "template_sha256": candidate.sha256,
        "provider": candidate.provider,
        "policy_id": experiment.policy_id,
        "evidence_version": experiment.evidence_version,
        "evaluator_version": experiment.evaluator_version,
    }
    for name, value in experiment.short_fingerprints.items():
        params[f"{name}_sha"] = value
    params.update(extra)
    params["code_commit"] = code_commit
    params["llmgate_version"] = version
    return params


def build_run_record(
    *,
    experiment: Experiment,
    candidate: Candidate,
    role: Role,
    results: Mapping[str, Sequence[CaseResult]],
    run_id: str,
    started_at: str,
    finished_at: str,
    code_commit: str,
    version: str,
    frozen: bool = False,
    extra_params: Mapping[str, str] | None = None,
    baselines: Sequence[RunRecord] = (),
    pricer: Pricer | None = None,
    budget: Budget | None = None,
    experiment_path: str | None = None,
) -> RunRecord:
    """Aggregate one run's case results into its record (its first artifact: the candidate's file): a candidate
    is compared case by case with each of ``baselines`` (the baseline runs of its session); its calls are priced
    with ``pricer`` and the run held to ``budget``."""
    entries, complete = case_entries(experiment, results, pricer)
    latencies = {case_id: tuple(call.latency_ms for call in ran[-1].calls if call.latency_ms is not None)
                 for case_id, ran in results.items() if ran}
    tags = {key: str(value) for key, value in experiment.handoff.items()}
    tags["raw_log_text_stored"] = "false"
    return RunRecord(
        run_id=run_id,
        experiment=experiment.name,
        role=role,
        started_at=started_at,
        finished_at=finished_at,
        params=build_params(experiment, candidate, code_commit, version, extra_params or {}),
        tags=tags,
        artifacts=(Artifact(path=candidate.relative_path, sha256=candidate.sha256),),
        fingerprints=dict(experiment.fingerprints),
        promotion=experiment.promotion,
        frozen=frozen,
        budget=budget,
        experiment_path=experiment_path,
        **aggregates(entries, complete, latencies, [suite.name for suite in experiment.suites], role,
                     experiment.promotion, budget, baselines),
    )


def aggregates(
    entries: Sequence[CaseEntry], complete: bool, latencies: Mapping[str, Sequence[float]], suites: Sequence[str],
    role: Role, promotion: Promotion, budget: Budget | None, baselines: Sequence[RunRecord] = (),
) -> dict[str, Any]:
    """A record's figures worked out from its case entries: metrics (per suite too), comparisons with each
    baseline, budget, status, evidence and the case-set digest. One session's record and ``llmgate merge``'s
    merged record are both made here, so a merged run is judged exactly as one session's run would be."""
    confidence = confidence_of(promotion)
    metrics = _with_cost(Metrics.of(entries, confidence), entries, latencies)
    suite_metrics: dict[str, Metrics] = {}
    for suite in suites:
        ours = list(compress(entries, map(suite.__eq__, map(_SUITE, entries))))
        if len(ours) == len(entries):  # every case is of this suite: the same entries give the same figures
            suite_metrics[suite] = metrics
            continue
        suite_metrics[suite] = _with_cost(Metrics.of(ours, confidence), ours, latencies)
    comparisons = () if role is Role.BASELINE else tuple(
        paired_comparison(((entry.case_id, entry.outcome) for entry in entries),
                ((entry.case_id, entry.outcome) for entry in baseline.cases), baseline.run_id, baseline.template_id)
        for baseline in baselines
    )
    over = over_budget(budget, metrics.cost) if complete else ()
    return {
        "metrics": metrics, "suite_metrics": suite_metrics, "cases": tuple(entries), "complete": complete,
        "status": run_status(complete, metrics, promotion, over), "evidence": evidence_of(metrics, promotion),
        "comparisons": comparisons, "over_budget": over,
        "cases_sha256": cases_digest(entry.case_sha256 or "" for entry in entries),
    }


def _with_cost(metrics: Metrics, entries: Sequence[CaseEntry], latencies: Mapping[str, Sequence[float]]) -> Metrics:
    """``metrics`` with the cost figures of the entries that have them (unchanged when none has). A case's call
    latencies are ``latencies[case_id]``; a case not in ``latencies`` made the one call its cost's ``latency_ms``
    says (none without one): a part's record lists only the cases for which that does not hold (``Part``)."""
    costed = list(compress(entries, map(_COST, entries)))
    if not costed:
        return metrics
    costs = list(map(_COST, costed))
    listed: list[Sequence[float] | None] = list(map(latencies.get, map(_CASE_ID, costed)))
    measured = chain.from_iterable(
        [calls if calls is not None else implied_latencies(cost) for calls, cost in zip(listed, costs, strict=True)]
        if None in listed else cast("list[Sequence[float]]", listed))
    return msgspec.structs.replace(metrics, cost=cost_metrics(costs, list(measured)))


def implied_latencies(cost: CaseCost | None) -> tuple[float, ...]:
    """The call latencies a part's record leaves out for a case (``Part.latencies_ms``): its cost's one latency."""
    return () if cost is None or cost.latency_ms is None else (cost.latency_ms,)


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """A record's metrics (as data) as one flat mapping of numbers, for trackers: the ``cost`` figures join the
    counts under their own names (``latency_p95_ms``, ``cost_usd`` ...); an unknown (null) figure is left out."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(flat_metrics(value, prefix))
        elif value is not None:
            flat[f"{prefix}{key}"] = float(value)
    return flat


def redacted_eval(record: RunRecord) -> RedactedEval:
    """The redacted evaluation report of a run: per-case outcomes and metrics, no inputs."""
    return RedactedEval(
        run_id=record.run_id,
        experiment=record.experiment,
        template_id=record.template_id,
        evaluation_sha=short(record.fingerprints["evaluation"]),
        metrics=record.metrics,
        suite_metrics=record.suite_metrics,
        cases=record.cases,
        role=record.role,
    )
