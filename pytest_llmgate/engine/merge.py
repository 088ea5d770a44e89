"""``llmgate merge``: the parts of a split run (one per CI job) combined into the run one session would have made.

A part is a run record with a ``part`` block (``records.run.Part``). The per-case entries are the unit merged: each
case is taken from the part that evaluated it, and the merged record's figures, status, evidence, comparisons
and the decision come from the same code as a session's (``records.run.aggregates``, ``model.decision.decide``,
``records.report.experiment_report``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, islice
from operator import attrgetter, eq
from pathlib import Path
from sys import intern
from typing import cast

import msgspec
from msgspec.structs import force_setattr

from pytest_llmgate.engine.plan import WAITS_FOR_MERGE
from pytest_llmgate.engine.writer import mark_in_progress
from pytest_llmgate.io.audit import part_problems, read_report, refuse
from pytest_llmgate.io.history import run_files
from pytest_llmgate.io.signing import sign, signing_key
from pytest_llmgate.io.store import (
    PREVIOUS_REPORT_FILE,
    REPORT_FILE,
    RUNS,
    new_run_id,
    relative_to_records,
    timestamp,
    utc_now,
    write_new,
    write_redacted,
    write_replacing,
)
from pytest_llmgate.model.costs import Budget, total_known
from pytest_llmgate.model.decision import Promotion, compared_fields, decide
from pytest_llmgate.model.defaults import MANIFEST_NAME, SHOWN
from pytest_llmgate.model.errors import RecordError, display_path
from pytest_llmgate.model.fingerprint import short
from pytest_llmgate.model.vocab import DecisionStatus, Outcome, Role, RunStatus
from pytest_llmgate.records.codec import dump, dump_chunks, load, read_bytes
from pytest_llmgate.records.evaluator import JudgeStanding, judged_status
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import ExperimentOutcome, PlannedRun, SessionResult
from pytest_llmgate.records.report import SessionReport
from pytest_llmgate.records.run import CaseEntry, RunRecord, aggregates

_BY_CASE_ID = attrgetter("case_id")

#: A part of at least this many cases holds its label values once and keys its latencies by its entries' own ids
#: (memory for time: about 0.8 µs a case). Benchmark (n) justifies it: a 1,000,000-case merge peaks at 860 MiB
#: against its 1 GiB limit, and would take about 170 MB more without (benchmarks/README.md).
SHARED_LABELS_FROM = 50_000


#: What the summaries read of an experiment no part has a run of (no decision is made for it).
_NO_PROMOTION = Promotion(alias="none", rollback_artifact=None, limitation="no run")


class StoredExperiment(msgspec.Struct, frozen=True, kw_only=True):
    """What the summaries read of an experiment, from its parts' records (the experiment need not be on disk)."""

    name: str
    directory: Path
    fingerprints: dict[str, str]
    budget: Budget | None
    promotion: Promotion

    @property
    def short_fingerprints(self) -> dict[str, str]:
        return {name: short(value) for name, value in self.fingerprints.items()}


def read_parts(directories: Sequence[Path], key: bytes | None = None) -> tuple[list[RunRecord], list[SessionReport]]:
    """Every part record of the records folders, each checked as it is read (``io.audit.part_problems``), and
    their session reports (for the order of the runs). Parts are decoded one at a time straight into records, and
    the parts of one run share one list of its case ids, so memory holds each evaluated case about once."""
    parts: list[RunRecord] = []
    reports: list[SessionReport] = []
    shared: list[tuple[str, ...]] = []
    for directory in directories:
        if not directory.is_dir():
            raise RecordError(directory, None, "is not a records folder")
        for path in run_files(directory):
            raw = read_bytes(path)
            record = load(raw, RunRecord, path)
            if record.part is None:
                continue
            problems = part_problems(path, record, raw, key)
            del raw
            if problems:
                raise refuse(path, problems)
            if len(record.cases) >= SHARED_LABELS_FROM:
                share_labels(record.cases)
                record = _latencies_by_entry_ids(record)
            parts.append(_sharing(record, shared))
        report = directory / REPORT_FILE
        if report.is_file():  # with a key, its signature is checked: its notes and run order are used
            reports.append(read_report(report, key))
    if not parts:
        raise RecordError(None, None, "no part records in " + ", ".join(display_path(d) for d in directories)
                          + " (a part is written by a session run with a splitter or --llmgate-part)")
    return parts, reports


def _sharing(record: RunRecord, shared: list[tuple[str, ...]]) -> RunRecord:
    """``record`` with its part's case ids replaced by an equal list already read (one copy for all parts)."""
    assert record.part is not None
    ids = record.part.case_ids
    for known in shared:
        if known is ids or known == ids:  # (tuples of unequal length compare at once)
            return msgspec.structs.replace(record, part=msgspec.structs.replace(record.part, case_ids=known))
    shared.append(ids)
    return record


def share_labels(cases: Sequence[CaseEntry]) -> None:
    """The few label values every case repeats (suite, slice, evidence state) held once, not once per case: a
    million merged cases keep about 170 MB less. The entries are fresh from the decoder and not yet shared."""
    for entry in cases:
        force_setattr(entry, "suite", intern(entry.suite))
        force_setattr(entry, "slice_name", intern(entry.slice_name))
        force_setattr(entry, "evidence_state", intern(entry.evidence_state))


def _latencies_by_entry_ids(record: RunRecord) -> RunRecord:
    """``record`` with its part's latencies keyed by its entries' own case-id strings (one copy of each id, not two)."""
    assert record.part is not None
    latencies = record.part.latencies_ms
    keyed = {entry.case_id: latencies[entry.case_id] for entry in record.cases if entry.case_id in latencies}
    if len(keyed) != len(latencies):
        return record  # latencies of cases the part does not hold: left as they are, for the checks to name
    return msgspec.structs.replace(record, part=msgspec.structs.replace(record.part, latencies_ms=keyed))


def newest_parts(parts: Iterable[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """The parts of each (experiment, template), one per split id: a re-run job's part replaces the earlier one."""
    latest: dict[tuple[str, str, str], RunRecord] = {}
    for record in sorted(parts, key=lambda r: (r.finished_at, r.run_id)):
        assert record.part is not None
        latest[(record.experiment, record.template_id, record.part.split_id)] = record
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for (experiment, template, _), record in sorted(latest.items()):
        groups.setdefault((experiment, template), []).append(record)
    return groups


def _differences(parts: Sequence[RunRecord]) -> list[str]:
    """The fields in which the parts differ (compared params first: ``evaluation_sha`` ...)."""
    fields = compared_fields(parts)
    others = sorted({key for part in parts for key in part.params} - set(fields))
    found = [field for field in [*fields, *others] if len({part.params.get(field) for part in parts}) > 1]
    found += [name for name in ("role", "frozen", "promotion", "budget", "fingerprints")
              if len({msgspec.json.encode(getattr(part, name)) for part in parts}) > 1]
    standings = {msgspec.json.encode(part.evaluator and msgspec.structs.replace(  # the calls are the part's own
        part.evaluator, judge_calls=0, judge_input_tokens=None, judge_output_tokens=None)) for part in parts}
    if len(standings) > 1:  # say a judge fit to gate in one part only, or calibrated anew between the jobs
        found.append("evaluator")
    if len({(p.part.cases_sha256, len(p.part.case_ids)) if p.part else None for p in parts}) > 1 or any(
            p.part is None or p.part.case_ids != parts[0].part.case_ids for p in parts[1:]):  # type: ignore[union-attr]
        found.append("cases")
    return found


def _standing(judge: JudgeStanding | None) -> str:
    """A part's evaluator as a refusal shows it: its file and calibration, whether it may gate, and why."""
    if judge is None:
        return "none"
    calibration = f"calibration {judge.calibration_sha[:12]}" if judge.calibration_sha else "no calibration"
    return (f"{judge.evaluator_id}@{judge.sha256[:12]} ({calibration}, may gate: "
            f"{str(judge.may_gate).lower()}: {judge.reason})")


def _merged_evaluator(parts: Sequence[RunRecord]) -> JudgeStanding | None:
    """The evaluator's standing (the same in every part) with the judge's calls and tokens of all the parts."""
    first = parts[0].evaluator
    if first is None:
        return None
    judges = [part.evaluator for part in parts if part.evaluator is not None]
    return msgspec.structs.replace(first, judge_calls=sum(judge.judge_calls for judge in judges),
                                   judge_input_tokens=total_known([judge.judge_input_tokens for judge in judges]),
                                   judge_output_tokens=total_known([judge.judge_output_tokens for judge in judges]))


def check_mergeable(parts: Sequence[RunRecord]) -> None:
    """Refuse the parts of one (experiment, template) that cannot be merged: not comparable, or evaluating a case
    that is not in the run they were split from. ``merge`` asks it of every run before it writes anything."""
    first = parts[0]
    assert first.part is not None
    differ = _differences(parts)
    if differ:
        shown = "; ".join(f"{p.part.split_id if p.part else '?'} (run {p.run_id}): "
                          + ", ".join(f"{field}={_param_text(p, field)}" for field in differ[:3]) for p in parts)
        raise RecordError(None, None, f"parts of {first.experiment} / {first.template_id} are not comparable: they "
                          f"differ in {', '.join(differ)} ({shown}); merge only parts of one frozen suite and one "
                          "artifact")
    known = set(first.part.case_ids)
    extra = sorted({entry.case_id for part in parts for entry in part.cases} - known)
    if extra:
        raise RecordError(None, None, f"parts of {first.experiment} / {first.template_id} evaluated {len(extra)} "
                          f"case(s) that are not in the run they were split from ({', '.join(extra[:SHOWN])})")


def merge_run(parts: Sequence[RunRecord], baselines: Sequence[RunRecord] = ()) -> RunRecord:
    """The parts of one (experiment, template), which ``check_mergeable`` accepted, as one run (the cases no part
    evaluated: its ``missing_cases``); refused when two parts disagree on a case, or their cases do not give the
    case set they were split from."""
    first = parts[0]
    assert first.part is not None
    ids = first.part.case_ids
    position = dict(zip(ids, range(len(ids)), strict=True))
    pooled = list(chain.from_iterable(  # a part that lists every case holds those it did not run as NOT_RUN
        [entry for entry in part.cases if entry.outcome is not Outcome.NOT_RUN] if part.metrics.not_run_count
        else part.cases for part in parts))
    entries = sorted(pooled, key=lambda entry: position[entry.case_id])  # in the run's order; a case from two
    del pooled  # parts: the later part's after the earlier's
    position.clear()
    latencies: dict[str, tuple[float, ...]] = {}
    if any(map(eq, map(_BY_CASE_ID, entries), map(_BY_CASE_ID, islice(entries, 1, None)))):
        entries = _once(entries, parts)
        for part in parts:  # a case's latencies are those of the part whose entry is kept (the last), or implied
            assert part.part is not None
            listed = part.part.latencies_ms
            for entry in part.cases:
                if entry.outcome is Outcome.NOT_RUN:  # not run here: it takes nothing of the part that ran it
                    continue
                latencies.pop(entry.case_id, None)
                if entry.case_id in listed:
                    latencies[entry.case_id] = listed[entry.case_id]
    else:
        for part in parts:
            assert part.part is not None
            latencies.update(part.part.latencies_ms)
    missing: tuple[str, ...] = ()
    if len(entries) < len(ids):
        present = set(map(_BY_CASE_ID, entries))
        missing = tuple(case_id for case_id in ids if case_id not in present)
    complete = bool(entries) and not missing and all(
        entry.outcome not in (Outcome.ERROR, Outcome.NOT_RUN) for entry in entries)
    figures = aggregates(entries, complete, latencies, list(first.suite_metrics), first.role, first.promotion,
                         first.budget, baselines)
    figures["status"] = judged_status(figures["status"], first.evaluator)  # an unfit judge stays unfit merged
    if not missing and first.part.cases_sha256 is not None and figures["cases_sha256"] != first.part.cases_sha256:
        raise RecordError(None, None, f"the cases of the parts of {first.experiment} / {first.template_id} do not "
                          "give the case set they were split from (cases_sha256): a part's cases were replaced")
    return msgspec.structs.replace(
        first, run_id=new_run_id(utc_now()), started_at=min(p.started_at for p in parts),
        finished_at=max(p.finished_at for p in parts), artifacts=first.artifacts[:1], signature=None,
        comparison=None, part=None, merged_from=tuple(p.run_id for p in parts), missing_cases=missing,
        evaluator=_merged_evaluator(parts), **figures,
    )


def _once(entries: list[CaseEntry], parts: Sequence[RunRecord]) -> list[CaseEntry]:
    """``entries`` (in order) with a case evaluated by several parts kept once (the last part's); refused when
    the parts' outcomes for it differ."""
    owner = {id(entry): part.part.split_id if part.part else "?" for part in parts for entry in part.cases}
    kept: list[CaseEntry] = []
    for entry in entries:
        if kept and kept[-1].case_id == entry.case_id:
            seen = kept.pop()
            if (difference := _difference(seen, entry)) is not None:
                raise RecordError(None, None, f"case {entry.case_id} of {parts[0].template_id} was evaluated in "
                                  f"parts {owner[id(seen)]} and {owner[id(entry)]} with different {difference}; "
                                  "re-run one of them")
        kept.append(entry)
    return kept


def _difference(seen: CaseEntry, entry: CaseEntry) -> str | None:
    """What two parts' verdicts on a case differ in: the outcomes, else the routes, else the trials' routes (None:
    they agree)."""
    if seen.outcome != entry.outcome:
        return f"outcomes ({seen.outcome.value}, {entry.outcome.value})"
    if seen.predicted_route != entry.predicted_route:
        first, second = (e.predicted_route.value if e.predicted_route is not None else "none"
                         for e in (seen, entry))
        return f"routes ({first}, {second})"
    if seen.trial_routes == entry.trial_routes:
        return None
    first, second = (", ".join(route.value for route in e.trial_routes) for e in (seen, entry))
    return f"trial routes ({first}; {second})"


def _param_text(record: RunRecord, field: str) -> str:
    if field == "evaluator":
        return _standing(record.evaluator)
    if field in record.params or field not in RunRecord.__struct_fields__:
        return str(record.params.get(field))
    return "..."


def merge(directories: Sequence[Path], out_dir: Path) -> tuple[SessionResult, dict[str, tuple[str, ...]]]:
    """Merge every part in ``directories``; write the merged runs and report into ``out_dir``. Returns the
    session-like result (for the summaries) and, per merged run id, the cases no part evaluated."""
    key_bytes = signing_key()
    in_place = out_dir.resolve() in {directory.resolve() for directory in directories}
    try:
        parts, reports = read_parts(directories, key_bytes)
        groups = newest_parts(parts)
        for group in groups.values():  # the refusals it can make before anything is written
            check_mergeable(group)
    except BaseException:
        if not in_place:  # a folder of its own: whatever stopped the merge, its last verdict is not this merge's
            mark_in_progress(out_dir, utc_now())
        raise  # (a jobs' folder merged in place keeps its report: the merge's input, read again by a retry)
    # a jobs' folder merged in place: its reports as they are, put back if the merge is refused half-way
    kept = {path: path.read_bytes() if path.is_file() else None
            for path in (out_dir / REPORT_FILE, out_dir / PREVIOUS_REPORT_FILE)} if in_place else {}
    mark_in_progress(out_dir, utc_now())
    order: dict[tuple[str, str], int] = {}
    selected: dict[str, dict[tuple[str, Role], None]] = {}  # each experiment's runs, once each, in order
    listed_prints: dict[str, dict[str, str]] = {}  # an experiment's fingerprints as a part's report lists them
    for report in reports:
        for listed in report.experiments:
            listed_prints.setdefault(listed.experiment, dict(listed.fingerprints))
            for run in (*[(r.template_id, r.role) for r in listed.runs],
                        *[(n.template_id, n.role) for n in listed.not_run]):
                order.setdefault((listed.experiment, run[0]), len(order))
                selected.setdefault(listed.experiment, {})[run] = None
    folders = {path.stem: directory for directory in directories for path in run_files(directory)}  # by run id
    del parts  # each group's parts are let go once merged
    outcomes: list[ExperimentOutcome] = []
    missing: dict[str, tuple[str, ...]] = {}
    run_paths: list[Path] = []
    # an experiment a part's report lists with no part of any of its runs (its job is missing) is merged too:
    # no record, its runs not run, the merge incomplete
    written: list[Path] = []  # this merge's files, removed again if it is refused half-way
    try:
        for name in sorted({experiment for experiment, _ in groups} | selected.keys()):
            keys = sorted((key for key in groups if key[0] == name),
                          key=lambda key: (groups[key][0].role is Role.CANDIDATE, order.get(key, len(order)), key[1]))
            records: list[RunRecord] = []
            for key in keys:
                baselines = [record for record in records if record.role is Role.BASELINE]
                group = groups.pop(key)
                merged = merge_run(group, baselines)
                located = experiment_path_from_out(group, folders, out_dir)
                # its redacted report, then the record (signed with a key), each written piece by piece
                record = sign(write_redacted(msgspec.structs.replace(merged, experiment_path=located), out_dir), key_bytes)
                written.append(out_dir / record.artifacts[-1].path)
                del group
                run_paths.append(out_dir / RUNS / f"{record.run_id}.json")
                write_new(run_paths[-1], dump_chunks(record))
                written.append(run_paths[-1])
                records.append(record)
                if record.missing_cases:
                    missing[record.run_id] = record.missing_cases
            ran = {record.template_id for record in records}
            not_run = [PlannedRun(template_id=t, role=role) for t, role in selected.get(name, {}) if t not in ran]
            verdict = decide(records, (), [plan.template_id for plan in not_run if plan.role is Role.CANDIDATE])
            gaps = [(record, missing[record.run_id]) for record in records if record.run_id in missing]
            if gaps and verdict.status is DecisionStatus.INCOMPLETE_EVALUATION:
                verdict = msgspec.structs.replace(verdict, reason="; ".join(_missing_text(r, ids) for r, ids in gaps))
            if records:
                first = records[0]
                stored = StoredExperiment(name=name, directory=out_dir / (first.experiment_path or "."),
                                          fingerprints=dict(first.fingerprints), budget=first.budget,
                                          promotion=first.promotion)
            else:
                stored = StoredExperiment(name=name, directory=out_dir, fingerprints=listed_prints.get(name, {}),
                                          budget=None, promotion=_NO_PROMOTION)
            outcomes.append(ExperimentOutcome(experiment=cast(Experiment, stored), records=tuple(records),
                                              verdict=verdict, frozen=bool(records) and records[0].frozen,
                                              not_run=tuple(not_run)))
    except BaseException:  # refused half-way (two parts disagree on a case): nothing of this merge stays
        for path in written:
            path.unlink(missing_ok=True)
        for path, data in kept.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                write_replacing(path, data)
        raise
    # what the parts' sessions said once (a model with no known price ...), once; not that each was a part
    notes = tuple(dict.fromkeys(note for part_report in reports for note in part_report.notes
                                if WAITS_FOR_MERGE not in note))
    result = SessionResult(outcomes=tuple(outcomes), report_path=out_dir / REPORT_FILE, run_paths=tuple(run_paths),
                           errors=(), notes=notes)
    write_replacing(out_dir / REPORT_FILE, dump(sign(result.report(timestamp(utc_now())), key_bytes)))
    return result, missing


def experiment_path_from_out(parts: Sequence[RunRecord], folders: Mapping[str, Path], out_dir: Path) -> str | None:
    """The experiment directory relative to ``out_dir``, for the merged record (docs/cli.md, ``llmgate merge``).

    A part's ``experiment_path`` is relative to its own records folder: where that names an experiment (its
    manifest is there), the merged record names the same directory from ``out_dir``. Where no part's does (the
    folders hold only records downloaded from CI jobs), the path is kept as the parts wrote it: it names the
    experiment when ``out_dir`` stands where the jobs' records folders stood (``.llmgate`` in the checkout)."""
    for part in parts:
        folder = folders.get(part.run_id)
        if part.experiment_path is None or folder is None:
            continue
        directory = folder / part.experiment_path
        if (directory / MANIFEST_NAME).is_file():
            return relative_to_records(directory, out_dir) or part.experiment_path
    return parts[0].experiment_path


def _missing_text(record: RunRecord, ids: Sequence[str]) -> str:
    few = ", ".join(ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")
    return (f"{len(ids)} of {len(record.cases) + len(ids)} case(s) of {record.template_id} are in no part ({few}): a part is "
            "missing, or the parts were split from different orders (a shuffler with a seed per job); the merged run "
            f"is {RunStatus.INCOMPLETE_EVALUATION.value}")

