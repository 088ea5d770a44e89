"""Run records: the metrics, status and provenance of one candidate on one experiment."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, compress
from operator import attrgetter
from typing import Annotated, Any, cast

import msgspec
from msgspec import Meta

from pytest_llmgate.model.costs import Budget, CaseCost, CostMetrics, Pricer, case_cost, cost_metrics, over_budget
from pytest_llmgate.model.decision import Promotion
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.evidence import Comparison, Evidence, confidence_of, evidence_of, paired_comparison
from pytest_llmgate.model.fingerprint import short, value_sha256
from pytest_llmgate.model.stats import DEFAULT_CONFIDENCE, recorded, upper_bound
from pytest_llmgate.model.vocab import REDACTED_EVAL_SCHEMA, RUN_SCHEMA, Outcome, Role, Route, RunStatus
from pytest_llmgate.records.candidate import Candidate, callable_params
from pytest_llmgate.records.diff import StoredComparison
from pytest_llmgate.records.evaluator import JudgeStanding, PythonEvaluatorFile
from pytest_llmgate.records.experiment import Experiment


# gc=False (msgspec): one per case of a record, never part of a cycle; untracked, each is 16 bytes smaller and never
# scanned by the collector (benchmarks (a) and (e): 100,000 cases).
class CaseEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One case's line in a record: labels, prediction and outcome; its input only as a hash.

    The trial fields (``trial_routes`` to ``flaky``) are written only with several trials."""

    suite: Annotated[str, Meta(description="The suite the case is in.")]
    case_id: Annotated[str, Meta(description="The case's id, unique in its experiment.")]
    slice_name: Annotated[str, Meta(description="The case's slice, as its suite labels it.")]
    evidence_state: Annotated[str, Meta(description="The case's evidence state, as its suite labels it.")]
    expected_route: Annotated[Route, Meta(description="The frozen label: the route the case should get.")]
    predicted_route: Annotated[Route | None, Meta(
        description="The candidate's route; with several trials, the one that decided the outcome; null: the case "
                    "errored or did not run.")]
    outcome: Annotated[Outcome, Meta(
        description="PASS, UNSAFE_CLAIM_SERVED or UNNECESSARY_ABSTENTION (a guardrail broken by any trial), ERROR "
                    "or NOT_RUN.")]
    input_sha256: Annotated[str | None, Meta(
        description="SHA-256 of the case's input; the input itself is never written.")] = None
    error: Annotated[str | None, Meta(
        description="Why the case errored: the exception's type name, then ': ' and its one-line reason where it "
                    "has a safe one (a provider's message; no input, no secret).")] = None
    trial_routes: Annotated[tuple[Route, ...], Meta(description="Every trial's route, in trial order.")] = ()
    agreement: Annotated[float | None, Meta(
        description="Share of the trials that gave the most common route (6 decimals).")] = None
    unsafe_trial_rate: Annotated[float | None, Meta(
        description="Share of the trials that served where the label says ABSTAIN (6 decimals).")] = None
    # -- per-trial counts (issue 14; written only with several trials) --
    passed_trials: Annotated[int | None, Meta(description="Trials that gave the expected route.")] = None
    unsafe_trials: Annotated[int | None, Meta(
        description="Trials that served where the label says ABSTAIN.")] = None
    unnecessary_trials: Annotated[int | None, Meta(
        description="Trials that abstained where the label says SERVE.")] = None
    flaky: Annotated[bool, Meta(description="True when the trials disagree (written only then).")] = False
    # -- costs (additive) --
    cost: Annotated[CaseCost | None, Meta(
        description="What the case's calls cost: tokens, money and latency; absent when no call was "
                    "measured.")] = None
    # -- trust (issue 18): what makes a stored record checkable --
    case_sha256: Annotated[str | None, Meta(
        description="SHA-256 of the case's mapping as written (as in llmgate.lock).")] = None

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


class Metrics(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Counts over a set of cases, the rates they give and their upper bounds (docs/statistics.md).

    Over the cases judged, the unit of evidence: the share that served unsafely and abstained unnecessarily in
    any of their trials, each with the bound the evidence requirement reads. Over case-trials, as description
    only. The case-trial and case-judged figures are always written by the gate; absent (None) in records
    written before they existed."""

    case_count: Annotated[int, Meta(description="Cases in the set, run or not.")]
    unsafe_claim_served: Annotated[int, Meta(
        description="Cases that served where the label says ABSTAIN (in any trial).")]
    unnecessary_abstention: Annotated[int, Meta(
        description="Cases that abstained where the label says SERVE (in any trial).")]
    exact_route_rate: Annotated[float, Meta(
        description="Share of the set's cases that passed, over every case, run or not (6 decimals).")]
    error_count: Annotated[int, Meta(description="Cases that errored.")]
    not_run_count: Annotated[int, Meta(description="Cases that did not run.")]
    # -- case-trials and their upper confidence bounds (issue 14) --
    trial_count: Annotated[int | None, Meta(
        description="Case-trials that ran: each trial of each case that ran without error (one per case without "
                    "trials).")] = None
    unsafe_trials: Annotated[int | None, Meta(
        description="Case-trials that served where the label says ABSTAIN.")] = None
    unnecessary_trials: Annotated[int | None, Meta(
        description="Case-trials that abstained where the label says SERVE.")] = None
    flaky_count: Annotated[int | None, Meta(description="Cases whose trials disagree.")] = None
    confidence: Annotated[float | None, Meta(
        description="Confidence of the upper bounds: the manifest's promotion.confidence, default 0.95.")] = None
    unsafe_rate: Annotated[float | None, Meta(description="unsafe_trials / trial_count (6 decimals).")] = None
    unsafe_rate_upper: Annotated[float | None, Meta(
        description="Its one-sided upper Clopper-Pearson bound at confidence (12 significant digits).")] = None
    unnecessary_rate: Annotated[float | None, Meta(
        description="unnecessary_trials / trial_count (6 decimals).")] = None
    unnecessary_rate_upper: Annotated[float | None, Meta(
        description="Its one-sided upper Clopper-Pearson bound at confidence (12 significant digits).")] = None
    # -- costs (additive) --
    cost: Annotated[CostMetrics | None, Meta(
        description="Tokens, money and latency over the cases whose calls were measured; absent when none was "
                    "(docs/costs.md).")] = None
    # -- the case as the unit of evidence (issue 24) --
    judged_count: Annotated[int | None, Meta(
        description="Cases judged: each case that ran and got a pass or fail (not an error, not a case not "
                    "run); the unit of evidence.")] = None
    unsafe_case_rate: Annotated[float | None, Meta(
        description="unsafe_claim_served / judged_count (6 decimals).")] = None
    unsafe_case_rate_upper: Annotated[float | None, Meta(
        description="Its one-sided upper Clopper-Pearson bound at confidence (12 significant digits): the bound "
                    "the evidence requirement reads.")] = None
    unnecessary_case_rate: Annotated[float | None, Meta(
        description="unnecessary_abstention / judged_count (6 decimals).")] = None
    unnecessary_case_rate_upper: Annotated[float | None, Meta(
        description="Its one-sided upper Clopper-Pearson bound at confidence (12 significant digits): the bound "
                    "the evidence requirement reads.")] = None

    @classmethod
    def of(cls, entries: Sequence[CaseEntry], confidence: float = DEFAULT_CONFIDENCE) -> Metrics:
        count = len(entries)
        # counted by (outcome, predicted route) in C: a case with no prediction (ERROR, NOT_RUN) has no trial
        pairs = Counter(map(attrgetter("outcome", "predicted_route"), entries))
        tally, answered = dict.fromkeys(Outcome, 0), dict.fromkeys(Outcome, 0)
        for (outcome, predicted), number in pairs.items():
            tally[outcome] += number
            if predicted is not None:
                answered[outcome] += number
        if any(map(attrgetter("trial_routes"), entries)):
            trials, _, unsafe, unnecessary = map(sum, zip(*(entry.trial_counts() for entry in entries), strict=True))
        else:  # one trial per answered case: its outcome says how it went
            trials = sum(answered.values())
            unsafe, unnecessary = answered[Outcome.UNSAFE_CLAIM_SERVED], answered[Outcome.UNNECESSARY_ABSTENTION]
        unsafe_cases, unnecessary_cases = tally[Outcome.UNSAFE_CLAIM_SERVED], tally[Outcome.UNNECESSARY_ABSTENTION]
        judged = tally[Outcome.PASS] + unsafe_cases + unnecessary_cases
        return cls(
            case_count=count,
            unsafe_claim_served=unsafe_cases,
            unnecessary_abstention=unnecessary_cases,
            exact_route_rate=round(tally[Outcome.PASS] / count, 6) if count else 0.0,
            error_count=tally[Outcome.ERROR],
            not_run_count=tally[Outcome.NOT_RUN],
            trial_count=trials,
            unsafe_trials=unsafe,
            unnecessary_trials=unnecessary,
            flaky_count=sum(map(attrgetter("flaky"), entries)),
            confidence=confidence,
            unsafe_rate=round(unsafe / trials, 6) if trials else 0.0,
            unsafe_rate_upper=recorded(upper_bound(unsafe, trials, confidence)),
            unnecessary_rate=round(unnecessary / trials, 6) if trials else 0.0,
            unnecessary_rate_upper=recorded(upper_bound(unnecessary, trials, confidence)),
            judged_count=judged,
            unsafe_case_rate=round(unsafe_cases / judged, 6) if judged else 0.0,
            unsafe_case_rate_upper=recorded(upper_bound(unsafe_cases, judged, confidence)),
            unnecessary_case_rate=round(unnecessary_cases / judged, 6) if judged else 0.0,
            unnecessary_case_rate_upper=recorded(upper_bound(unnecessary_cases, judged, confidence)),
        )


class Artifact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file the run depends on or produced: the candidate's file, then the run's redacted report."""

    path: Annotated[str, Meta(
        description="The file's path: relative to the experiment (the candidate's file) or to the records folder "
                    "(the redacted report).")]
    sha256: Annotated[str, Meta(description="SHA-256 of the file's bytes.")]


class Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A run made by one job of a split session (docs/ci.md, "Split over CI jobs"). A part's ``cases`` are the
    cases it evaluated, and its figures theirs; what the whole run needs (its cases, their order, its case-set
    digest and the latencies a percentile needs) is kept here for ``llmgate merge``."""

    split_id: Annotated[str, Meta(
        description="The split's name: --llmgate-part, else the splitter's group, else cases- and a digest of the "
                    "cases it ran.")]
    selection: Annotated[str, Meta(description="How the session was narrowed to this part, for people.")]
    case_ids: Annotated[tuple[str, ...], Meta(
        description="Every case of the whole run, in the run's order: what llmgate merge orders by and names "
                    "missing cases from.")]
    cases_sha256: Annotated[str | None, Meta(
        description="The whole run's case-set digest, which llmgate merge checks the merged run against.")] = None
    latencies_ms: Annotated[dict[str, tuple[float, ...]], Meta(
        description="By case id, the call latencies in milliseconds of each evaluated case whose latencies are not "
                    "just the one its cost.latency_ms says (a case with several trials, say).")] = {}


#: Fields a run record and the report's summary of it share: the same keys, the same meaning.
RunRole = Annotated[Role, Meta(description="candidate (gates the session) or baseline (a reference).")]
Complete = Annotated[bool, Meta(
    description="True only when every case ran exactly once for this candidate, with no error.")]
EvidenceBlock = Annotated[Evidence | None, Meta(
    description="How the counts meet the manifest's evidence requirement; only when one is set.")]
Comparisons = Annotated[tuple[Comparison, ...], Meta(
    description="This candidate against each baseline run of its session, case by case.")]
OverBudget = Annotated[tuple[str, ...], Meta(
    description="Each budget limit the run broke, with its figure and the limit.")]


class RunRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                tag_field="schema", tag=RUN_SCHEMA):
    """Everything needed to audit one run without rerunning it (SPEC §5.1): ``DIR/runs/<run_id>.json``.

    Its metrics, status and provenance; the evidence and comparisons (docs/statistics.md), costs and budget
    (docs/costs.md) and the trust fields (docs/trust.md) are added keys, omitted when they do not apply."""

    run_id: Annotated[str, Meta(
        description="The run's id: UTC time to the microsecond, then 8 random hex digits "
                    "(YYYYMMDDTHHMMSSffffffZ-<8 hex>), so ids sort by time.")]
    experiment: Annotated[str, Meta(description="The experiment's name, from its manifest.")]
    role: RunRole
    started_at: Annotated[str, Meta(description="When the run started: UTC, ISO 8601, to the second.")]
    finished_at: Annotated[str, Meta(description="When the run finished: UTC, ISO 8601, to the second.")]
    params: Annotated[dict[str, str], Meta(
        description="What the run was made with: template id and SHA-256, provider, policy, evidence and evaluator "
                    "versions, one <suite>_sha per suite, evaluation_sha, code commit and gate version; an LLM "
                    "candidate adds model, trials, record_mode and recordings_sha256.")]
    metrics: Annotated[Metrics, Meta(description="Counts, rates and costs over every case of the run.")]
    suite_metrics: Annotated[dict[str, Metrics], Meta(description="The same figures per suite, by suite name.")]
    tags: Annotated[dict[str, str], Meta(
        description="The manifest's handoff entries, plus raw_log_text_stored; an exporter may add more.")]
    artifacts: Annotated[tuple[Artifact, ...], Meta(
        description="The files the run depends on or produced, with their SHA-256: the candidate's file first, "
                    "then the redacted report.")]
    fingerprints: Annotated[dict[str, str], Meta(
        description="The full SHA-256 fingerprint of each suite and of the whole evaluation (evaluation).")]
    cases: Annotated[tuple[CaseEntry, ...], Meta(
        description="One entry per case of the experiment; a part's record: per case it evaluated.")]
    complete: Complete
    status: Annotated[RunStatus, Meta(
        description="The verdict on the run, first match wins: INCOMPLETE_EVALUATION, REJECT_UNSAFE_SERVE, "
                    "REJECT_UNNECESSARY_ABSTENTION, REJECT_OVER_BUDGET, INSUFFICIENT_EVIDENCE, "
                    "ELIGIBLE_FOR_CANARY_REVIEW; an eligible run judged by a judge that may not gate (uncalibrated, "
                    "stale, below its requirement) is INSUFFICIENT_EVIDENCE.")]
    promotion: Annotated[Promotion, Meta(
        description="The manifest's promotion block: what a promotion gives and requires.")]
    frozen: Annotated[bool, Meta(description="Whether an llmgate.lock froze the experiment's suites.")]
    # -- evidence and paired comparison (issue 14) --
    evidence: EvidenceBlock = None
    comparisons: Comparisons = ()
    # -- costs (additive) --
    budget: Annotated[Budget | None, Meta(
        description="The manifest's budget the run was held to; absent without one.")] = None
    over_budget: OverBudget = ()
    # -- trust (issue 18) --
    experiment_path: Annotated[str | None, Meta(
        description="The experiment directory, relative to the records folder: where the candidate file is "
                    "looked for when the record is checked.")] = None
    cases_sha256: Annotated[str | None, Meta(
        description="The case set's digest: SHA-256 over the sorted case_sha256 of its cases, one per "
                    "line.")] = None
    signature: Annotated[str | None, Meta(
        description="hmac-sha256:<64 hex>, an HMAC-SHA-256 over the record without it (keys sorted), written "
                    "when LLMGATE_SIGNING_KEY is set.")] = None
    # -- against a stored run (issue 16) --
    comparison: Annotated[StoredComparison | None, Meta(
        description="This run against a stored run (--llmgate-compare-to); absent when none was asked "
                    "for.")] = None
    # -- split over CI jobs (issue 17) --
    part: Annotated[Part | None, Meta(
        description="This run is one part of a split run; its decision waits for llmgate merge.")] = None
    merged_from: Annotated[tuple[str, ...], Meta(description="A merged run: the run ids of its parts.")] = ()
    missing_cases: Annotated[tuple[str, ...], Meta(
        description="A merged run: the ids of the run's cases that no part evaluated.")] = ()
    # -- evaluators (issue 26) --
    evaluator: Annotated[JudgeStanding | None, Meta(
        description="The manifest's evaluator, whether it may gate, and its judge's calls.")] = None

    @property
    def unevaluated(self) -> int:
        """How many cases of the run have no result here: not run, in no part of a merge (``missing_cases``), or
        (a part) evaluated by other parts."""
        others = len(self.part.case_ids) - len(self.cases) if self.part is not None else 0
        return self.metrics.not_run_count + len(self.missing_cases) + others

    def __post_init__(self) -> None:
        missing = [key for key in ("template_id", "evaluation_sha") if key not in self.params]
        if missing:  # every command reads them: a record without one is refused where it is read
            raise ValueError(f"params has no {' and no '.join(missing)}")

    @property
    def template_id(self) -> str:
        return self.params["template_id"]

    @property
    def evaluation_sha(self) -> str:
        return self.params["evaluation_sha"]


class RedactedEval(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                   tag_field="schema", tag=REDACTED_EVAL_SCHEMA):
    """The redacted evaluation report of a run, ``DIR/reports/<run_id>-redacted-eval.json``: no inputs."""

    run_id: Annotated[str, Meta(description="The run's id; its record is runs/<run_id>.json.")]
    experiment: Annotated[str, Meta(description="The experiment's name.")]
    template_id: Annotated[str, Meta(description="The candidate's template id.")]
    evaluation_sha: Annotated[str, Meta(
        description="The short form (16 hex) of the fingerprint over every suite, as in the record's params.")]
    metrics: Annotated[Metrics, Meta(description="Counts, rates and costs over every case of the run.")]
    suite_metrics: Annotated[dict[str, Metrics], Meta(description="The same figures per suite, by suite name.")]
    cases: Annotated[tuple[CaseEntry, ...], Meta(
        description="Each case's labels, prediction and outcome; its input only as a hash.")]
    role: Annotated[Role | None, Meta(
        description="The run's role (absent before 0.2), so that a check of the record sees a role changed by "
                    "hand.")] = None


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


def case_entries(
    experiment: Experiment, results: Mapping[str, Sequence[CaseResult]], pricer: Pricer | None
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
        **{f"{name}_sha": value for name, value in experiment.short_fingerprints.items()},
    }
    evaluator = experiment.evaluator
    if evaluator is not None and isinstance(evaluator.parsed, PythonEvaluatorFile):  # its code reads the replies
        params.update(callable_params("evaluator_code", evaluator.parsed.callable, experiment.directory))
    return {**params, **extra, "code_commit": code_commit, "llmgate_version": version}


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
    return RunRecord(
        run_id=run_id,
        experiment=experiment.name,
        role=role,
        started_at=started_at,
        finished_at=finished_at,
        params=build_params(experiment, candidate, code_commit, version, extra_params or {}),
        tags={**{key: str(value) for key, value in experiment.handoff.items()}, "raw_log_text_stored": "false"},
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
        ours = list(compress(entries, map(suite.__eq__, map(attrgetter("suite"), entries))))
        # a suite that holds every case: the same entries give the same figures
        suite_metrics[suite] = (metrics if len(ours) == len(entries)
                                else _with_cost(Metrics.of(ours, confidence), ours, latencies))
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
    costed = list(compress(entries, map(attrgetter("cost"), entries)))
    if not costed:
        return metrics
    costs = list(map(attrgetter("cost"), costed))
    listed: list[Sequence[float] | None] = list(map(latencies.get, map(attrgetter("case_id"), costed)))
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


def run_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """A record's (as data) metrics, then each suite's under ``<suite>.``, flat: what the trackers log."""
    flat = flat_metrics(record["metrics"])
    for suite, metrics in record["suite_metrics"].items():
        flat.update(flat_metrics(metrics, f"{suite}."))
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
