"""Stored records are checked, never trusted: what can be derived is recomputed, hashes are checked, signatures too.

``llmgate runs``, ``compare``, ``promote``, ``canary`` and ``verify`` read records through this module. A record
is refused, naming its file and the field, when a stored status, metric or outcome differs from what its cases
give, when its case set differs from its digest or from the suites it names, when a file it depends on changed
since the run, or (with ``LLMGATE_SIGNING_KEY`` set) when its signature is missing or wrong. See docs/records.md,
"Trust", for what each check does and does not catch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec

from ._codec import load
from ._costs import over_budget
from ._evidence import confidence_of
from ._errors import LlmgateError, RecordError
from ._evaluate import judge, judge_trials
from ._experiment import load_experiment
from ._fingerprint import short, value_sha256
from ._record import CaseEntry, Metrics, RedactedEval, RunRecord, cases_digest, run_status
from ._signing import signature_of_struct, signature_problem
from ._store import REPORTS, RUNS
from ._vocab import SIGNING_KEY_ENV, Outcome, Route

_UNANSWERED = (Outcome.ERROR, Outcome.NOT_RUN)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRun:
    """A run record as read from its file: the typed record and the JSON data its signature is over."""

    path: Path
    record: RunRecord
    data: Any

    @property
    def records_dir(self) -> Path | None:
        """The records folder the file lies in (``DIR/runs/<run_id>.json``), else None."""
        return self.path.parent.parent if self.path.parent.name == RUNS else None


def read_run(path: Path) -> StoredRun:
    """One stored run record, decoded and checked against its definition (not yet audited)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    record = load(raw, RunRecord, path)
    return StoredRun(path=path, record=record, data=json.loads(raw))


def refuse(path: Path, problems: Sequence[str]) -> RecordError:
    return RecordError(path, None, "refused: " + "; ".join(problems))


# -- one record ---------------------------------------------------------------------------------
def run_problems(run: StoredRun, key: bytes | None) -> list[str]:
    """Everything wrong with one stored record; empty when it holds up."""
    problems: list[str] = []
    if key is not None:
        problem = signature_problem(run.data, key)
        if problem:
            problems.append(problem)
    record = run.record
    if run.records_dir is not None and run.path.stem != record.run_id:
        problems.append(f"run_id {record.run_id} differs from its file name {run.path.name}")
    problems += _case_problems(record)
    problems += _derived_problems(record)
    problems += _artifact_problems(run)
    return problems


def part_problems(path: Path, record: RunRecord, key: bytes | None) -> list[str]:
    """What ``llmgate merge`` checks of a part before merging it (the parts are read one by one, never as JSON
    dicts): its signature (with a key), its name, each case's outcome against its labels and prediction, its
    case-set digest. Its stored figures and status, candidate file and redacted report are not read: the merge
    uses none of them (it works the figures out again); ``llmgate verify`` on the merged folder checks the merged
    run's."""
    problems: list[str] = []
    if key is not None:
        if record.signature is None:
            problems.append(f"is not signed, and {SIGNING_KEY_ENV} is set: unsigned files are refused")
        elif not hmac.compare_digest(record.signature, signature_of_struct(record, key)):
            problems.append(f"signature does not match (checked with {SIGNING_KEY_ENV}): the file was altered after "
                            "it was signed, or signed with another key")
    if path.parent.name == RUNS and path.stem != record.run_id:
        problems.append(f"run_id {record.run_id} differs from its file name {path.name}")
    return problems + _case_problems(record)  # its stored figures are not used: the merge works them out again


#: Every (expected route, predicted route, outcome) a single-trial case may hold.
_CONSISTENT = frozenset(
    [(expected, None, outcome) for expected in Route for outcome in _UNANSWERED]
    + [(expected, predicted, judge(expected, predicted)) for expected in Route for predicted in Route])


def _all_consistent(cases: Sequence[CaseEntry]) -> bool:
    """Whether every case is unique and holds the outcome its labels and prediction give, checked a column at a
    time (a case with trials, or any doubt, goes to the case-by-case check that names what is wrong)."""
    if any(map(attrgetter("trial_routes"), cases)) or len(set(map(attrgetter("case_id"), cases))) != len(cases):
        return False
    columns = zip(map(attrgetter("expected_route"), cases), map(attrgetter("predicted_route"), cases),
                  map(attrgetter("outcome"), cases), strict=True)
    return all(map(_CONSISTENT.__contains__, columns))


def _case_problems(record: RunRecord) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(() if _all_consistent(record.cases) else record.cases):
        where = f"cases[{index}] ({entry.case_id})"
        if entry.case_id in seen:
            problems.append(f"{where}: case {entry.case_id} appears twice")
        seen.add(entry.case_id)
        if entry.outcome in _UNANSWERED:
            if entry.predicted_route is not None:
                problems.append(f"{where}.outcome is {entry.outcome.value}, but a route was predicted")
            continue
        if entry.predicted_route is None:
            problems.append(f"{where}.outcome is {entry.outcome.value}, but no route was predicted")
            continue
        if entry.trial_routes:
            expected = judge_trials(entry.expected_route, entry.trial_routes)[0]
        else:
            expected = judge(entry.expected_route, entry.predicted_route)
        if entry.outcome is not expected:
            problems.append(
                f"{where}.outcome is {entry.outcome.value}, but expected {entry.expected_route.value} and predicted "
                f"{entry.predicted_route.value} give {expected.value}"
            )
    if record.cases_sha256 is not None:
        missing = [entry.case_id for entry in record.cases if entry.case_sha256 is None]
        if missing:
            problems.append(f"cases without case_sha256: {', '.join(missing[:5])}")
        elif cases_digest(entry.case_sha256 or "" for entry in record.cases) != record.cases_sha256:
            problems.append(
                f"cases ({len(record.cases)} entries) do not give the recorded cases_sha256: "
                "cases were removed, added or replaced"
            )
    return problems


def _derived_problems(record: RunRecord) -> list[str]:
    """Metrics, suite metrics, completeness and status, recomputed from the per-case outcomes (and trials) the
    same way the gate computed them; the budget verdict from the recorded cost figures and budget."""
    problems: list[str] = []
    confidence = confidence_of(record.promotion)
    outcomes = [entry.outcome for entry in record.cases]
    recomputed = Metrics.of(record.cases, confidence)
    problems += _metric_problems("metrics", record.metrics, recomputed)
    suites = dict.fromkeys([*record.suite_metrics, *(entry.suite for entry in record.cases)])
    for suite in suites:
        stored = record.suite_metrics.get(suite)
        if stored is None:
            problems.append(f"suite_metrics has no {suite!r}, but cases of suite {suite} are recorded")
        else:
            entries = [entry for entry in record.cases if entry.suite == suite]
            problems += _metric_problems(f"suite_metrics.{suite}", stored, Metrics.of(entries, confidence))
    can_be_complete = (bool(outcomes) and not any(outcome in _UNANSWERED for outcome in outcomes)
                       and not record.missing_cases
                       and (record.part is None or len(record.part.case_ids) == len(record.cases)))
    complete = record.complete and can_be_complete
    if record.complete and not can_be_complete:
        problems.append("complete is true, but its cases hold an ERROR or NOT_RUN outcome (or none at all), or it "
                        "is a part or misses cases")
    over = over_budget(record.budget, record.metrics.cost) if complete else ()
    if tuple(record.over_budget) != tuple(over):
        problems.append(f"over_budget is {list(record.over_budget)}, but its cost figures and budget give {list(over)}")
    status = run_status(complete, msgspec.structs.replace(recomputed, cost=record.metrics.cost), record.promotion, over)
    if record.status is not status:
        problems.append(f"status is {record.status.value}, but its cases give {status.value}")
    return problems


#: Metrics worked out from the cases; the case-trial figures only in records that have them (0.1.0's do not).
_COUNTED = ("case_count", "unsafe_claim_served", "unnecessary_abstention", "exact_route_rate", "error_count",
            "not_run_count")
_TRIAL_FIGURES = ("trial_count", "unsafe_trials", "unnecessary_trials", "flaky_count", "confidence", "unsafe_rate",
                  "unsafe_rate_upper", "unnecessary_rate", "unnecessary_rate_upper")
#: The case-level figures (the unit of evidence), only in records that have them (before issue 24's do not).
_CASE_FIGURES = ("judged_count", "unsafe_case_rate", "unsafe_case_rate_upper", "unnecessary_case_rate",
                 "unnecessary_case_rate_upper")


def _metric_problems(scope: str, stored: Metrics, recomputed: Metrics) -> list[str]:
    fields = (_COUNTED + (_TRIAL_FIGURES if stored.trial_count is not None else ())
              + (_CASE_FIGURES if stored.judged_count is not None else ()))
    return [
        f"{scope}.{field} is {getattr(stored, field)}, but its cases give {getattr(recomputed, field)}"
        for field in fields
        if getattr(stored, field) != getattr(recomputed, field)
    ]


def _artifact_problems(run: StoredRun) -> list[str]:
    """The candidate file and the redacted report: named for this run, and unchanged when present."""
    record = run.record
    problems: list[str] = []
    if not record.artifacts:
        return ["artifacts is empty: the candidate file is not recorded"]
    template, *produced = record.artifacts
    if Path(template.path).stem != record.template_id:
        problems.append(f"params.template_id is {record.template_id}, but its candidate file is {template.path}")
    if record.params.get("template_sha256") not in (None, template.sha256):
        problems.append("params.template_sha256 differs from the sha256 of its candidate file artifact")
    if record.experiment_path is not None and run.records_dir is not None:
        problems += _file_problems(run.records_dir / record.experiment_path / template.path, template.path,
                                   template.sha256)
    expected_report = f"{REPORTS}/{record.run_id}-redacted-eval.json"
    for artifact in produced:
        if artifact.path != expected_report:
            problems.append(f"artifact {artifact.path} is not this run's redacted report ({expected_report})")
            continue
        if run.records_dir is None:
            continue
        path = run.records_dir / artifact.path
        changed = _file_problems(path, artifact.path, artifact.sha256)
        problems += changed
        if not changed and path.is_file():
            problems += _redacted_problems(path, record)
    return problems


def _file_problems(path: Path, shown: str, sha256: str) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []  # checked when present: a record may travel without the files it names
    except OSError as exc:
        return [f"{shown} cannot be read to check it: {exc.strerror or exc}"]
    now = hashlib.sha256(data).hexdigest()
    if now != sha256:
        return [f"{shown} changed after the run (sha256 now {now[:16]}, recorded {sha256[:16]})"]
    return []


def _redacted_problems(path: Path, record: RunRecord) -> list[str]:
    try:
        report = load(path.read_bytes(), RedactedEval, path)
    except LlmgateError as exc:
        return [f"its redacted report {exc.problem}"]
    differ = [
        name for name, ours, theirs in (
            ("run_id", record.run_id, report.run_id), ("template_id", record.template_id, report.template_id),
            ("metrics", record.metrics, report.metrics), ("cases", record.cases, report.cases),
        ) if ours != theirs
    ]
    if report.role is not None and report.role is not record.role:
        differ.insert(0, f"role (the report says {report.role.value})")
    return [f"its redacted report disagrees on {', '.join(differ)}"] if differ else []


# -- against the suites -------------------------------------------------------------------------
class SuiteCheck:
    """The case set of records against the experiment's suites as they are, when they still give the record's
    evaluation fingerprint (each experiment directory loaded once)."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Mapping[str, tuple[Any, ...]] | None] = {}

    def problems(self, run: StoredRun) -> list[str]:
        record = run.record
        if record.experiment_path is None or run.records_dir is None:
            return []
        directory = (run.records_dir / record.experiment_path).resolve()
        if directory not in self._loaded:
            self._loaded[directory] = self._cases(directory)
        found = self._loaded[directory]
        evaluation = record.fingerprints.get("evaluation")
        if found is None or found.get("") != (evaluation,):
            return []  # the suites are gone or changed since the run: the fingerprints say so elsewhere
        ours = {entry.case_id: (entry.suite, entry.slice_name, entry.evidence_state, entry.expected_route.value,
                                entry.case_sha256 or "") for entry in record.cases}
        # a 0.1.0 record has no case_sha256: its labels are compared all the same
        theirs = {case_id: value if record.cases_sha256 else (*value[:4], "")
                  for case_id, value in found.items() if case_id}
        listed = set(ours) if record.part is None else set(record.part.case_ids)  # a part holds what it ran
        missing = sorted(set(theirs) - listed)
        extra = sorted((set(ours) | listed) - set(theirs))
        changed = sorted(case_id for case_id in set(ours) & set(theirs) if ours[case_id] != theirs[case_id])
        problems = []
        if missing:
            problems.append(f"its cases lack {len(missing)} case(s) of the suites it names ({', '.join(missing[:5])})")
        if extra:
            problems.append(f"its cases hold {len(extra)} case(s) its suites do not have ({', '.join(extra[:5])})")
        if changed:
            problems.append(f"the labels of {', '.join(changed[:5])} differ from the suites it names")
        return problems

    @staticmethod
    def _cases(directory: Path) -> Mapping[str, tuple[Any, ...]] | None:
        try:
            experiment = load_experiment(directory)
        except (LlmgateError, OSError):
            return None
        cases: dict[str, tuple[Any, ...]] = {"": (experiment.fingerprints["evaluation"],)}
        for case in experiment.cases:
            cases[case.case_id] = (case.suite, case.slice_name, case.evidence_state, case.expected_route.value,
                                   value_sha256(case.written))
        return cases


# -- a set of records ---------------------------------------------------------------------------
def audit(runs: Sequence[StoredRun], key: bytes | None, *, one_per_template: bool = False) -> list[RunRecord]:
    """The records of ``runs`` when every one holds up and the set is sound; else ``RecordError`` naming the
    first file refused and why. ``one_per_template``: two runs of one template are refused (promotion)."""
    seen: dict[str, Path] = {}
    for run in runs:
        first = seen.get(run.record.run_id)
        if first is not None:
            raise refuse(run.path, [f"run {run.record.run_id} is given twice; each run counts once"])
        seen[run.record.run_id] = run.path
    suites = SuiteCheck()
    for run in runs:
        problems = run_problems(run, key) + suites.problems(run)
        if problems:
            raise refuse(run.path, problems)
    by_evaluation: dict[str, StoredRun] = {}
    for run in runs:
        record = run.record
        other = by_evaluation.setdefault(record.fingerprints.get("evaluation", ""), run)
        if record.cases_sha256 and other.record.cases_sha256 and record.cases_sha256 != other.record.cases_sha256:
            raise refuse(run.path, [
                f"its case set differs from run {other.record.run_id}'s, which has the same evaluation fingerprint "
                f"{short(record.fingerprints.get('evaluation', ''))}"
            ])
    if one_per_template:
        twice = same_template(runs)
        if twice is not None:
            raise refuse(twice[0], [twice[1]])
    return [run.record for run in runs]


def same_template(runs: Sequence[StoredRun]) -> tuple[Path, str] | None:
    """The second run of a template already given, and why a promotion refuses it; None when there is none."""
    by_template: dict[tuple[str, str], StoredRun] = {}
    for run in runs:
        other = by_template.setdefault((run.record.experiment, run.record.template_id), run)
        if other is not run:
            return run.path, (
                f"two runs of template {run.record.template_id} ({other.record.run_id}, {run.record.run_id}): "
                "give one run per template; a template is not in a tie with itself"
            )
    return None

