"""Stored records are checked, never trusted: what can be derived is recomputed, hashes are checked, signatures too.

Every ``llmgate`` command and ``--llmgate-compare-to`` read run records, session reports and decision files
through this module, the way ``llmgate verify`` does. A check finds a file

- **refused**: it contradicts itself or a file it names, or (with ``LLMGATE_SIGNING_KEY`` set) it is unsigned or
  its signature does not match. Nothing reads it.
- **unverifiable**: a file it names is not there, so a check cannot be made. It is read with a note (a check is
  never skipped in silence); ``promote`` and ``canary`` refuse it.
- **changed since this run**: its candidate file, code or suites on disk, or the manifest's promotion block,
  budget or judge, are not those the run was judged by. History stays readable; only ``promote`` refuses it.

See docs/trust.md for each check and what it does and does not catch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from pytest_llmgate.io.signing import S, signature_problem
from pytest_llmgate.io.store import RUNS, redacted_path
from pytest_llmgate.model.costs import limits_named, over_budget
from pytest_llmgate.model.decision import Decision, decide, decision_text
from pytest_llmgate.model.errors import LlmgateError, RecordError, display_path
from pytest_llmgate.model.evaluate import judge, judge_trials
from pytest_llmgate.model.evidence import confidence_of
from pytest_llmgate.model.fingerprint import short, value_sha256
from pytest_llmgate.model.vocab import Outcome, Role, Route, RunStatus
from pytest_llmgate.records.codec import load, read_bytes
from pytest_llmgate.records.evaluator import judged_status
from pytest_llmgate.records.experiment import EVALUATION, load_experiment
from pytest_llmgate.records.report import ExperimentReport, SessionReport, run_summary
from pytest_llmgate.records.run import CaseEntry, Metrics, RedactedEval, RunRecord, cases_digest, run_status

_UNANSWERED = (Outcome.ERROR, Outcome.NOT_RUN)

#: What ``promote`` says of a run whose candidate file, or its judge's calibration, is not the one on disk.
TEMPLATE_CHANGED = "template changed since this run"
JUDGE_CHANGED = "judge standing changed since this run"
MANIFEST_CHANGED = "manifest changed since this run"
CODE_CHANGED = "code changed since this run"


class Unverifiable(RecordError):
    """A file cannot be checked because a file it names is missing; ``promote`` and ``canary`` refuse it."""


class StoredRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run record as read from its file: the typed record and the bytes its signature is over."""

    path: Path
    record: RunRecord
    raw: bytes

    @property
    def records_dir(self) -> Path | None:
        """The records folder the file lies in (``DIR/runs/<run_id>.json``), else None."""
        return self.path.parent.parent if self.path.parent.name == RUNS else None


class Findings(msgspec.Struct):
    """What the checks of one file found, by kind."""

    refused: list[str] = msgspec.field(default_factory=list)
    unverifiable: list[str] = msgspec.field(default_factory=list)
    changed: list[str] = msgspec.field(default_factory=list)


class Audited(NamedTuple):
    """Records that hold up, and what to say about them (unverifiable, changed since the run), one line each."""

    records: list[RunRecord]
    notes: list[str]


def _first(ids: list[str]) -> str:
    """The first five ids, and ``…`` when there are more."""
    return ", ".join(ids[:5]) + ("…" if len(ids) > 5 else "")


def read_run(path: Path) -> StoredRun:
    """One stored run record, decoded and checked against its definition (not yet audited)."""
    raw = read_bytes(path)
    return StoredRun(path=path, record=load(raw, RunRecord, path), raw=raw)


def refuse(path: Path | None, problems: Sequence[str]) -> RecordError:
    return RecordError(path, None, "refused: " + "; ".join(problems))


def unverifiable(path: Path | None, problems: Sequence[str]) -> Unverifiable:
    return Unverifiable(path, None, "unverifiable: " + "; ".join(problems))


# -- one record ---------------------------------------------------------------------------------
def check_run(run: StoredRun, key: bytes | None, suites: SuiteCheck) -> Findings:
    """Everything one stored record's checks find, by kind (empty when it holds up)."""
    found = Findings(refused=part_problems(run.path, run.record, run.raw, key))
    found.refused += _derived_problems(run.record)
    _check_artifacts(run, found)
    suites.check(run, found)
    return found


def part_problems(path: Path, record: RunRecord, raw: bytes, key: bytes | None) -> list[str]:
    """What ``llmgate merge`` checks of a part before merging it: its signature (with a key), its name, its
    fingerprints against its params (the merged run keeps them), each case's outcome against its labels and
    prediction, its case-set digest. Its stored figures and status, candidate file and redacted report are not
    read: the merge uses none of them (it works the figures out again); ``llmgate verify`` on the merged folder
    checks the merged run's."""
    problems = [problem] if key is not None and (problem := signature_problem(record, key, raw)) else []
    if path.parent.name == RUNS and path.stem != record.run_id:
        problems.append(f"run_id {record.run_id} differs from its file name {path.name}")
    return problems + _fingerprint_problems(record) + _case_problems(record)  # its stored figures are not used


#: A full fingerprint: a SHA-256, as the experiment gives it.
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _fingerprint_problems(record: RunRecord) -> list[str]:
    """The full fingerprints against the short forms in params, which the gate writes from the same experiment:
    each suite's (``<suite>_sha``; its suites are those ``suite_metrics`` names) and the evaluation's
    (``evaluation_sha``), and any other it holds. The audit reads the evaluation's to tell whether the suites
    changed since the run."""
    problems: list[str] = []
    for name in dict.fromkeys([*record.suite_metrics, EVALUATION, *record.fingerprints]):
        full, param = record.fingerprints.get(name), record.params.get(f"{name}_sha")
        if full is None:
            problems.append(f"fingerprints has no {name!r}, but " + (
                f"params.{name}_sha is {param}" if param is not None else f"suite_metrics has suite {name}"))
        elif param is None:
            problems.append(f"fingerprints.{name} is {_fingerprint_shown(full)}, but params has no {name}_sha")
        elif short(full) != param:
            problems.append(f"fingerprints.{name} is {_fingerprint_shown(full)}, but params.{name}_sha is {param}")
        elif not _FINGERPRINT.fullmatch(full):
            problems.append(f"fingerprints.{name} is {_fingerprint_shown(full)}, which is no full fingerprint (64 hex digits) "
                            f"beginning with its params.{name}_sha")
    return problems


def _fingerprint_shown(fingerprint: str) -> str:
    """A fingerprint in a message: a full one by its first 16 digits, anything else quoted (cut at 20 characters)."""
    if _FINGERPRINT.fullmatch(fingerprint):
        return short(fingerprint) + "…"
    return repr(fingerprint[:20]) + ("…" if len(fingerprint) > 20 else "")


#: Every (expected route, predicted route, outcome) a single-trial case may hold.
_CONSISTENT = frozenset(
    [(expected, None, outcome) for expected in Route for outcome in _UNANSWERED]
    + [(expected, predicted, judge(expected, predicted)) for expected in Route for predicted in Route])


def _all_consistent(cases: Sequence[CaseEntry]) -> bool:
    """Whether every case is unique and holds the outcome its labels and prediction give, checked a column at a
    time (a case with trials, or any doubt, goes to the case-by-case check that names what is wrong)."""
    if any(map(attrgetter("trial_routes"), cases)) or len(set(map(attrgetter("case_id"), cases))) != len(cases):
        return False
    columns = map(attrgetter("expected_route", "predicted_route", "outcome"), cases)
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
        expected = (judge_trials(entry.expected_route, entry.trial_routes)[0] if entry.trial_routes
                    else judge(entry.expected_route, entry.predicted_route))
        if entry.outcome is not expected:
            problems.append(
                f"{where}.outcome is {entry.outcome.value}, but expected {entry.expected_route.value} and predicted "
                f"{entry.predicted_route.value} give {expected.value}"
            )
    if record.cases_sha256 is not None:
        missing = [entry.case_id for entry in record.cases if entry.case_sha256 is None]
        if missing:
            problems.append(f"{len(missing)} case(s) without case_sha256: {_first(missing)}")
        elif cases_digest(entry.case_sha256 or "" for entry in record.cases) != record.cases_sha256:
            problems.append(
                f"cases ({len(record.cases)} entries) do not give the recorded cases_sha256: "
                "cases were removed, added or replaced"
            )
    return problems


def _derived_problems(record: RunRecord) -> list[str]:
    """Metrics, suite metrics, completeness and status, recomputed from the per-case outcomes (and trials) the
    same way the gate computed them; the budget verdict from the recorded cost figures and budget."""
    confidence = confidence_of(record.promotion)
    recomputed = Metrics.of(record.cases, confidence)
    problems = _metric_problems("metrics", record.metrics, recomputed)
    for suite in dict.fromkeys([*record.suite_metrics, *(entry.suite for entry in record.cases)]):
        stored = record.suite_metrics.get(suite)
        if stored is None:
            problems.append(f"suite_metrics has no {suite!r}, but cases of suite {suite} are recorded")
        else:
            entries = [entry for entry in record.cases if entry.suite == suite]
            problems += _metric_problems(f"suite_metrics.{suite}", stored, Metrics.of(entries, confidence))
    can_be_complete = (bool(record.cases) and not any(entry.outcome in _UNANSWERED for entry in record.cases)
                       and not record.missing_cases
                       and (record.part is None or len(record.part.case_ids) == len(record.cases)))
    complete = record.complete and can_be_complete
    if record.complete and not can_be_complete:
        problems.append("complete is true, but its cases hold an ERROR or NOT_RUN outcome (or none at all), or it "
                        "is a part or misses cases")
    over = over_budget(record.budget, record.metrics.cost) if complete else ()
    if limits_named(record.over_budget) != limits_named(over):  # the limits broken, not the wording
        problems.append(f"over_budget is {list(record.over_budget)}, but its cost figures and budget give {list(over)}")
    status = judged_status(run_status(complete, msgspec.structs.replace(recomputed, cost=record.metrics.cost),
                                      record.promotion, over), record.evaluator)  # an unfit judge: never eligible
    if record.status is not status:
        older = (" (a record without judged_count, from before the case was the unit of evidence: its status "
                 "counted repeated trials as evidence; run it again)" if record.metrics.judged_count is None else "")
        problems.append(f"status is {record.status.value}, but its cases give {status.value}{older}")
    return problems


#: Metrics worked out from the cases; the case-trial figures only in records that have them (0.1.0's do not).
_COUNTS = ("case_count", "unsafe_claim_served", "unnecessary_abstention", "exact_route_rate", "error_count",
            "not_run_count")
_TRIAL_FIGURES = ("trial_count", "unsafe_trials", "unnecessary_trials", "flaky_count", "confidence", "unsafe_rate",
                  "unsafe_rate_upper", "unnecessary_rate", "unnecessary_rate_upper")
#: The case-level figures (the unit of evidence), only in records that have them (before issue 24's do not).
_CASE_FIGURES = ("judged_count", "unsafe_case_rate", "unsafe_case_rate_upper", "unnecessary_case_rate",
                 "unnecessary_case_rate_upper")


def _metric_problems(scope: str, stored: Metrics, recomputed: Metrics) -> list[str]:
    fields = (_COUNTS + (_TRIAL_FIGURES if stored.trial_count is not None else ())
              + (_CASE_FIGURES if stored.judged_count is not None else ()))
    return [
        f"{scope}.{field} is {getattr(stored, field)}, but its cases give {getattr(recomputed, field)}"
        for field in fields
        if getattr(stored, field) != getattr(recomputed, field)
    ]


def _check_artifacts(run: StoredRun, found: Findings) -> None:
    """The candidate file and the redacted report: named for this run, present, and unchanged."""
    record = run.record
    if not record.artifacts:
        found.refused.append("artifacts is empty: the candidate file is not recorded")
        return
    template, *produced = record.artifacts
    if Path(template.path).stem != record.template_id:
        found.refused.append(f"params.template_id is {record.template_id}, but its candidate file is {template.path}")
    if record.params.get("template_sha256") not in (None, template.sha256):
        found.refused.append("params.template_sha256 differs from the sha256 of its candidate file artifact")
    if run.records_dir is None:
        found.unverifiable.append(f"it is not in a records folder (DIR/{RUNS}/<run_id>.json): the candidate file "
                                  "and redacted report it names cannot be found")
        return
    directory = experiment_directory(run)
    if directory is None:
        found.unverifiable.append("it names no experiment_path (a record written before 0.2): its candidate file "
                                  "and suites cannot be checked")
    elif not directory.is_dir():
        found.unverifiable.append(f"experiment_path {record.experiment_path} names no folder "
                                  f"({display_path(directory)}): its candidate file and suites cannot be checked")
    else:
        now = _sha256_of(directory / template.path, template.path, found)
        if now is not None and now != template.sha256:
            found.changed.append(f"{TEMPLATE_CHANGED}: {template.path} (sha256 now {now[:16]}, recorded "
                                 f"{template.sha256[:16]})")
    expected_report = redacted_path(record.run_id)
    if not produced:
        found.unverifiable.append(f"it records no redacted report ({expected_report}) to check its cases against")
    for artifact in produced:
        if artifact.path != expected_report:
            found.refused.append(f"artifact {artifact.path} is not this run's redacted report ({expected_report})")
            continue
        path = run.records_dir / artifact.path
        now = _sha256_of(path, artifact.path, found)
        if now == artifact.sha256:
            found.refused += _redacted_problems(path, record)
        elif now is not None:
            found.refused.append(f"{artifact.path} changed after the run (sha256 now {now[:16]}, recorded "
                                 f"{artifact.sha256[:16]})")


def experiment_directory(run: StoredRun) -> Path | None:
    """The experiment folder a record names (``experiment_path``, relative to its records folder)."""
    if run.records_dir is None or run.record.experiment_path is None:
        return None
    return run.records_dir / run.record.experiment_path


def _sha256_of(path: Path, shown: str, found: Findings) -> str | None:
    """The SHA-256 of a file a record names; None, with the reason in ``found``, when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        found.unverifiable.append(f"{shown} is missing ({display_path(path)}): it was deleted or not kept with the "
                                  "record, so it cannot be checked")
    except OSError as exc:
        found.unverifiable.append(f"{shown} cannot be read to check it: {exc.strerror or exc}")
    except ValueError:  # a path no file can have (a NUL byte): written by hand
        found.refused.append(f"{shown!r} is no file's path (it holds a NUL byte)")
    return None


def _redacted_problems(path: Path, record: RunRecord) -> list[str]:
    try:
        report = load(path.read_bytes(), RedactedEval, path)
    except LlmgateError as exc:
        return [f"its redacted report {exc.problem}"]
    differ = [
        name for name, ours, theirs in (
            ("run_id", record.run_id, report.run_id), ("template_id", record.template_id, report.template_id),
            ("evaluation_sha", record.params.get("evaluation_sha"), report.evaluation_sha),
            ("metrics", record.metrics, report.metrics), ("cases", record.cases, report.cases),
        ) if ours != theirs
    ]
    if report.role is not None and report.role is not record.role:
        differ.insert(0, f"role (the report says {report.role.value})")
    return [f"its redacted report disagrees on {', '.join(differ)}"] if differ else []


# -- against the suites -------------------------------------------------------------------------
class SuiteCheck:
    """Records against their experiment as it is (each experiment loaded once): the case set against its suites,
    and the promotion block, budget and judge the run was judged by against the manifest's."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Mapping[str, tuple[Any, ...]] | str] = {}

    def check(self, run: StoredRun, found: Findings) -> None:
        record = run.record
        directory = experiment_directory(run)
        if directory is None or not directory.is_dir():
            return  # said by the artifact check: the experiment cannot be found
        directory = directory.resolve()
        if directory not in self._loaded:
            self._loaded[directory] = self._cases(directory)
        cases = self._loaded[directory]
        if isinstance(cases, str):
            found.unverifiable.append(f"its experiment at {record.experiment_path} cannot be loaded ({cases}): its "
                                      "cases cannot be checked against its suites")
            return
        evaluation = record.fingerprints.get(EVALUATION, "")
        now, judge, promotion, budget = cases[""]
        if now != evaluation and short(now) == short(evaluation) and _FINGERPRINT.fullmatch(evaluation):
            # its short form (params.evaluation_sha) is the suites': the digits past it were edited, not the suites
            found.refused.append(f"fingerprints.evaluation is {evaluation}, but its suites give {now} (the same "
                                 "first 16 digits: the record's others were edited)")
            return
        if now != evaluation:
            found.changed.append(f"suites changed since this run (evaluation {short(now)} now, "
                                 f"{short(evaluation)} recorded): its cases are checked against its digest only")
            return
        found.refused += self._differences(record, cases)
        # what the run was judged by: the manifest's promotion and budget blocks and its judge, as they are now
        if record.promotion != promotion:
            found.changed.append(f"{MANIFEST_CHANGED}: its promotion block is not the manifest's (the run was judged "
                                 "by the one it records)")
        if record.budget != budget:
            found.changed.append(f"{MANIFEST_CHANGED}: its budget is not the manifest's (the run was held to the one "
                                 "it records)")
        for prefix, what in (("callable", "its callable"), ("evaluator_code", "its python evaluator's callable")):
            _check_code(directory, record, prefix, what, found)  # the module the run's code came from
        recorded = record.evaluator
        if recorded is None and judge is not None:
            found.changed.append(f"{JUDGE_CHANGED}: the record names no evaluator; the manifest names "
                                 f"{judge.evaluator_id}")
        elif recorded is not None and recorded.may_gate and judge != msgspec.structs.replace(
                recorded, judge_calls=0, judge_input_tokens=None, judge_output_tokens=None):
            found.changed.append(f"{JUDGE_CHANGED}: the record says {recorded.reason!r}; now "
                                 f"{judge.reason if judge is not None else 'the manifest names no evaluator'}")

    @staticmethod
    def _differences(record: RunRecord, found: Mapping[str, tuple[Any, ...]]) -> list[str]:
        ours = {entry.case_id: (entry.suite, entry.slice_name, entry.evidence_state, entry.expected_route.value,
                                entry.case_sha256 or "") for entry in record.cases}
        # a 0.1.0 record has no case_sha256: its labels are compared all the same
        theirs = {case_id: value if record.cases_sha256 else (*value[:4], "")
                  for case_id, value in found.items() if case_id}
        # a part holds what it ran; a merge names the cases no part ran (its run is incomplete for them)
        listed = (set(ours) | set(record.missing_cases)) if record.part is None else set(record.part.case_ids)
        missing = sorted(set(theirs) - listed)
        extra = sorted((set(ours) | listed) - set(theirs))
        changed = sorted(case_id for case_id in set(ours) & set(theirs) if ours[case_id] != theirs[case_id])
        return [problem for cases, problem in (
            (missing, f"its cases lack {len(missing)} case(s) of the suites it names ({_first(missing)})"),
            (extra, f"its cases hold {len(extra)} case(s) its suites do not have ({_first(extra)})"),
            (changed, f"the labels of {len(changed)} case(s) differ from the suites it names ({_first(changed)})"),
        ) if cases]

    @staticmethod
    def _cases(directory: Path) -> Mapping[str, tuple[Any, ...]] | str:
        try:
            experiment = load_experiment(directory)
        except LlmgateError as exc:
            return exc.problem
        except OSError as exc:
            return str(exc.strerror or exc)
        cases: dict[str, tuple[Any, ...]] = {"": (experiment.fingerprints["evaluation"], experiment.judge_standing(),
                                                 experiment.promotion, experiment.budget)}
        for case in experiment.cases:
            cases[case.case_id] = (case.suite, case.slice_name, case.evidence_state, case.expected_route.value,
                                   value_sha256(case.written))
        return cases


def _check_code(directory: Path, record: RunRecord, prefix: str, what: str, found: Findings) -> None:
    """A python module the run recorded (``<prefix>_path``, relative to the experiment, and ``<prefix>_sha256``):
    changed since the run when its source differs, unverifiable when it is not there."""
    path, written = record.params.get(f"{prefix}_path"), record.params.get(f"{prefix}_sha256")
    if not path or not written:
        return
    try:
        now = hashlib.sha256((directory / path).read_bytes()).hexdigest()
    except (OSError, ValueError):
        found.unverifiable.append(f"the module of {what} ({path}, from the experiment) cannot be read to check it")
        return
    if now != written:
        found.changed.append(f"{CODE_CHANGED}: the module of {what}, {path} (sha256 now {now[:16]}, recorded "
                             f"{written[:16]})")


# -- a set of records ---------------------------------------------------------------------------
def audit(runs: Sequence[StoredRun], key: bytes | None, *, promote: bool = False, checkable: bool = False,
          suites: SuiteCheck | None = None) -> Audited:
    """The records of ``runs`` when every one holds up and the set is sound, with a note for each unverifiable or
    changed one; else ``RecordError`` naming the first file refused and why. ``checkable`` (``canary``): an
    unverifiable run is refused (``Unverifiable``); ``promote``: that, a run whose candidate file or suites changed
    since, and two runs of one template too."""
    seen: set[str] = set()
    for run in runs:
        if run.record.run_id in seen:
            raise refuse(run.path, [f"run {run.record.run_id} is given twice; each run counts once"])
        seen.add(run.record.run_id)
    suites = suites or SuiteCheck()
    notes: list[str] = []
    for run in runs:
        found = check_run(run, key, suites)
        if found.refused:
            raise refuse(run.path, found.refused)
        if (promote or checkable) and found.unverifiable:
            raise unverifiable(run.path, [*found.unverifiable, "a run is promoted only when every file it names "
                                          "can be checked"])
        if promote and found.changed:
            raise refuse(run.path, [*found.changed, "a run is promoted only with the candidate file, suites and "
                                    "manifest it was judged by; run the gate again"])
        notes += note_lines(run.path, found)
    by_evaluation: dict[str, StoredRun] = {}
    for run in runs:
        record = run.record
        other = by_evaluation.setdefault(record.fingerprints.get("evaluation", ""), run)
        ours, theirs = whole_cases_sha256(record), whole_cases_sha256(other.record)
        if ours and theirs and ours != theirs:
            raise refuse(run.path, [
                f"its case set differs from run {other.record.run_id}'s, which has the same evaluation fingerprint "
                f"{short(record.fingerprints.get('evaluation', ''))}"
            ])
    if promote and (twice := same_template(runs)) is not None:
        raise refuse(twice[0], [twice[1]])
    return Audited([run.record for run in runs], notes)


def whole_cases_sha256(record: RunRecord) -> str | None:
    """The case-set digest of the whole run a record belongs to: a part's is that of the run it is part of (its own
    covers only the cases it ran, so the parts of one run, or a merged run beside them, differ)."""
    return record.part.cases_sha256 if record.part is not None and record.part.cases_sha256 else record.cases_sha256


def note_lines(path: Path, found: Findings) -> list[str]:
    """What is said of a file that is read all the same: unverifiable, changed since its run."""
    where = display_path(path)
    return [f"{where}: unverifiable: {problem}" for problem in found.unverifiable] + [
        f"{where}: {change}" for change in found.changed]


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


# -- reports and decisions ----------------------------------------------------------------------
def read_report(path: Path, key: bytes | None) -> SessionReport:
    """A session report, decoded; with a key, its signature checked."""
    raw = read_bytes(path)
    return _signed(path, load(raw, SessionReport, path), raw, key)


def read_verdict(path: Path, key: bytes | None) -> SessionReport:
    """A session report read for its verdict (``read_report``): the marker a session or merge leaves in its place
    until it ends (``in_progress``) holds none, and is an error wherever a verdict or the runs behind one are read."""
    report = read_report(path, key)
    if report.in_progress:
        raise RecordError(path, None, "is the marker of a session that has not finished (no verdict yet)")
    if not report.experiments:  # a session or merge writes no report without one: an edit emptied it
        raise RecordError(path, None, "holds no experiment, which no session or merge writes (no verdict)")
    return report


def _signed(path: Path, obj: S, raw: bytes, key: bytes | None) -> S:
    """``obj`` (decoded from ``raw``), refused when a key is set and its signature is missing or wrong."""
    problem = signature_problem(obj, key, raw) if key is not None else None
    if problem:
        raise refuse(path, [problem])
    return obj


def report_runs(path: Path, experiment: ExperimentReport, key: bytes | None, *, promote: bool = False,
                checkable: bool = False, suites: SuiteCheck | None = None) -> tuple[list[StoredRun], Audited]:
    """The runs a report lists for one experiment, read from the ``runs/`` folder beside it and audited; the
    report's verdict must be the one they give. A run that is not there makes the report unverifiable; a run
    refused makes it refused."""
    files = [path.parent / RUNS / f"{run.run_id}.json" for run in experiment.runs]
    absent = [file for file in files if not file.is_file()]
    if absent:
        more = [f"and {len(absent) - 5} more of its runs"] if len(absent) > 5 else []
        raise unverifiable(path, [f"its run {file.stem} is not beside it ({RUNS}/{file.name}): keep the report with "
                                  "its runs folder" for file in absent[:5]] + more)
    runs = [read_run(file) for file in files]
    try:
        audited = audit(runs, key, promote=promote, checkable=checkable, suites=suites)
    except LlmgateError as exc:
        raise _rests_on(path, exc) from None
    edited = [summary.run_id for summary, record in zip(experiment.runs, audited.records, strict=True)
              if summary != run_summary(record)]
    if edited:
        raise refuse(path, [f"its summary of run {edited[0]} is not what the run's record says"])
    not_run = [entry.template_id for entry in experiment.not_run if entry.role is Role.CANDIDATE]
    verdict = decide(audited.records, (), not_run)
    eligible = tuple(run.run_id for run in verdict.eligible)
    if (verdict.status is not experiment.decision_status or eligible != tuple(r.run_id for r in experiment.eligible_runs)
            or _decided(verdict.decision) != _decided(experiment.decision)):
        raise refuse(path, [f"its decision is not what its run records give ({decision_text(verdict)})"])
    return runs, audited


def _rests_on(path: Path, exc: LlmgateError) -> RecordError:
    """A report's or decision's error for a run it rests on that was refused or is unverifiable."""
    shown = display_path(exc.path) if exc.path is not None else "a run"
    kind = unverifiable if isinstance(exc, Unverifiable) else refuse
    return kind(path, [f"it rests on {shown}, which is {exc.problem}"])


def _decided(decision: Decision | None) -> Decision | None:
    """A decision without the two fields that are not decided, ``prompt_uri`` (an exporter's) and ``signature``: a
    report's decision must equal the one its runs give in every other field."""
    return None if decision is None else msgspec.structs.replace(decision, prompt_uri=None, signature=None)


#: A run id as a file name in ``runs/``: no separator, no ``..``.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def decision_run(path: Path, decision: Decision, raw: bytes, key: bytes | None, records_dir: Path,
                 *, checkable: bool = False) -> Audited:
    """A decision file checked: its signature (with a key), and against the run it names (``source_run_id`` in
    ``records_dir/runs``), which must hold up and be the eligible candidate it promotes. Without that run the
    decision is unverifiable."""
    _signed(path, decision, raw, key)
    if not _FILE_NAME.fullmatch(decision.source_run_id):  # a name in runs/, never a path elsewhere
        raise refuse(path, [f"its source_run_id {decision.source_run_id!r} is not a run id"])
    file = records_dir / RUNS / f"{decision.source_run_id}.json"
    if not file.is_file():
        raise unverifiable(path, [f"its run {decision.source_run_id} is not in {display_path(records_dir / RUNS)} "
                                  "(keep the decision with its records folder, or name it with --dir)"])
    try:
        audited = audit([read_run(file)], key, checkable=checkable)
    except LlmgateError as exc:
        raise _rests_on(path, exc) from None
    record = audited.records[0]
    differ = [name for name, ours, theirs in (
        ("artifact_name", decision.artifact_name, record.template_id),
        ("evaluation_sha", decision.evaluation_sha, record.evaluation_sha),
        ("limitation", decision.limitation, record.promotion.limitation)) if ours != theirs]
    if record.role is not Role.CANDIDATE or record.status is not RunStatus.ELIGIBLE_FOR_CANARY_REVIEW:
        differ.append(f"its run is a {record.role.value} run with status {record.status.value}")
    if differ:
        raise refuse(path, [f"it is not what its run {record.run_id} gives ({', '.join(differ)})"])
    return audited
