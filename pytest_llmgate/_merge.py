"""``llmgate merge``: the parts of a split run (one per CI job) combined into the run one session would have made.

A part is a run record with a ``part`` block (``_record.Part``). The per-case entries are the unit merged: each
case is taken from the part that evaluated it, and the merged record's figures, status, evidence, comparisons
and the decision come from the same code as a session's (``_record.aggregates``, ``_decision.decide``,
``_report.experiment_report``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgspec

from ._codec import dump, load, to_data
from ._costs import Budget
from ._defaults import MANIFEST_NAME
from ._decision import compared_fields, decide
from ._errors import RecordError, display_path
from ._experiment import Experiment, Promotion
from ._fingerprint import short
from ._history import load_run, run_files
from ._record import Artifact, CaseEntry, RunRecord, aggregates, redacted_eval
from ._report import SessionReport
from ._session import ExperimentOutcome, PlannedRun, SessionResult, _relative, _sha256
from ._signing import signed, signing_key
from ._store import REPORT_FILE, REPORTS, RUNS, new_run_id, timestamp, utc_now, write_new, write_replacing
from ._vocab import DecisionStatus, Outcome, Role, RunStatus

#: How many missing case ids a message names.
SHOWN = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredExperiment:
    """What the summaries read of an experiment, from its parts' records (the experiment need not be on disk)."""

    name: str
    directory: Path
    fingerprints: dict[str, str]
    budget: Budget | None
    promotion: Promotion

    @property
    def short_fingerprints(self) -> dict[str, str]:
        return {name: short(value) for name, value in self.fingerprints.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged:
    """One merged run and the cases no part evaluated."""

    record: RunRecord
    missing: tuple[str, ...]


def read_parts(directories: Sequence[Path]) -> tuple[list[RunRecord], list[SessionReport]]:
    """Every part record of the records folders, and their session reports (for the order of the runs)."""
    parts: list[RunRecord] = []
    reports: list[SessionReport] = []
    for directory in directories:
        if not directory.is_dir():
            raise RecordError(directory, None, "is not a records folder")
        parts.extend(record for record in map(load_run, run_files(directory)) if record.part is not None)
        report = directory / REPORT_FILE
        if report.is_file():
            reports.append(load(report.read_bytes(), SessionReport, report))
    if not parts:
        raise RecordError(None, None, "no part records in " + ", ".join(display_path(d) for d in directories)
                          + " (a part is written by a session run with a splitter, -k/--deselect or --llmgate-part)")
    return parts, reports


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
    for name in ("role", "frozen", "promotion", "budget", "fingerprints", "experiment_path"):
        if len({msgspec.json.encode(getattr(part, name)) for part in parts}) > 1:
            found.append(name)
    if len({tuple(entry.case_id for entry in part.cases) for part in parts}) > 1:
        found.append("cases")
    return found


def merge_run(parts: Sequence[RunRecord], baselines: Sequence[RunRecord] = ()) -> Merged:
    """The parts of one (experiment, template) as one run; refused when they are not comparable or disagree."""
    first = parts[0]
    differ = _differences(parts)
    if differ:
        shown = "; ".join(f"{p.part.split_id if p.part else '?'} (run {p.run_id}): "
                          + ", ".join(f"{field}={_shown(p, field)}" for field in differ[:3]) for p in parts)
        raise RecordError(None, None, f"parts of {first.experiment} / {first.template_id} are not comparable: they "
                          f"differ in {', '.join(differ)} ({shown}); merge only parts of one frozen suite and one "
                          "artifact")
    chosen: dict[str, tuple[CaseEntry, RunRecord]] = {}
    latencies: dict[str, tuple[float, ...]] = {}
    for part in parts:
        assert part.part is not None
        evaluated = set(part.part.evaluated)
        for entry in part.cases:
            if entry.case_id not in evaluated:
                continue
            seen = chosen.get(entry.case_id)
            if seen is not None and _judged(seen[0]) != _judged(entry):
                other = seen[1].part.split_id if seen[1].part else "?"
                raise RecordError(None, None, f"case {entry.case_id} of {first.template_id} was evaluated in parts "
                                  f"{other} and {part.part.split_id} with different outcomes "
                                  f"({seen[0].outcome.value}, {entry.outcome.value}); re-run one of them")
            chosen[entry.case_id] = (entry, part)
            if entry.case_id in part.part.latencies_ms:
                latencies[entry.case_id] = part.part.latencies_ms[entry.case_id]
    entries = tuple(chosen[entry.case_id][0] if entry.case_id in chosen else entry for entry in first.cases)
    missing = tuple(entry.case_id for entry in first.cases if entry.case_id not in chosen)
    complete = bool(entries) and not missing and all(
        entry.outcome not in (Outcome.ERROR, Outcome.NOT_RUN) for entry in entries)
    suites = list(first.suite_metrics)
    record = msgspec.structs.replace(
        first, run_id=new_run_id(utc_now()), started_at=min(p.started_at for p in parts),
        finished_at=max(p.finished_at for p in parts), artifacts=first.artifacts[:1], signature=None,
        comparison=None, part=None, merged_from=tuple(p.run_id for p in parts),
        **aggregates(entries, complete, latencies, suites, first.role, first.promotion, first.budget, baselines),
    )
    return Merged(record=record, missing=missing)


def _judged(entry: CaseEntry) -> tuple[Any, ...]:
    return entry.outcome, entry.predicted_route, entry.trial_routes


def _shown(record: RunRecord, field: str) -> str:
    if field in record.params or field not in RunRecord.__struct_fields__:
        return str(record.params.get(field))
    return "..."


def merge(directories: Sequence[Path], out_dir: Path) -> tuple[SessionResult, dict[str, tuple[str, ...]]]:
    """Merge every part in ``directories``; write the merged runs and report into ``out_dir``. Returns the
    session-like result (for the summaries) and, per merged run id, the cases no part evaluated."""
    parts, reports = read_parts(directories)
    order: dict[tuple[str, str], int] = {}
    selected: dict[str, list[tuple[str, Role]]] = {}
    for report in reports:
        for listed in report.experiments:
            for run in (*[(r.template_id, r.role) for r in listed.runs],
                        *[(n.template_id, n.role) for n in listed.not_run]):
                order.setdefault((listed.experiment, run[0]), len(order))
                if run not in selected.setdefault(listed.experiment, []):
                    selected[listed.experiment].append(run)
    groups = newest_parts(parts)
    folders = part_folders(directories)
    key_bytes = signing_key()
    outcomes: list[ExperimentOutcome] = []
    missing: dict[str, tuple[str, ...]] = {}
    run_paths: list[Path] = []
    for name in sorted({experiment for experiment, _ in groups}):
        keys = sorted((key for key in groups if key[0] == name),
                      key=lambda key: (groups[key][0].role is Role.CANDIDATE, order.get(key, len(order)), key[1]))
        records: list[RunRecord] = []
        for key in keys:
            baselines = [record for record in records if record.role is Role.BASELINE]
            merged = merge_run(groups[key], baselines)
            located = experiment_path_from_out(groups[key], folders, out_dir)
            record = _write(msgspec.structs.replace(merged.record, experiment_path=located), out_dir, key_bytes)
            run_paths.append(out_dir / RUNS / f"{record.run_id}.json")
            records.append(record)
            if merged.missing:
                missing[record.run_id] = merged.missing
        ran = {record.template_id for record in records}
        not_run = [PlannedRun(template_id=t, role=role) for t, role in selected.get(name, []) if t not in ran]
        verdict = decide(records, (), [plan.template_id for plan in not_run if plan.role is Role.CANDIDATE])
        gaps = [(record, missing[record.run_id]) for record in records if record.run_id in missing]
        if gaps and verdict.status is DecisionStatus.INCOMPLETE_EVALUATION:
            verdict = dataclasses.replace(verdict, reason="; ".join(_missing_text(r, ids) for r, ids in gaps))
        first = groups[keys[0]][0]
        stored = StoredExperiment(name=name, directory=out_dir / (records[0].experiment_path or "."),
                                      fingerprints=dict(first.fingerprints), budget=first.budget,
                                      promotion=first.promotion)
        outcomes.append(ExperimentOutcome(experiment=cast(Experiment, stored), records=tuple(records),
                                          verdict=verdict, frozen=first.frozen, not_run=tuple(not_run)))
    result = SessionResult(outcomes=tuple(outcomes), report_path=out_dir / REPORT_FILE, run_paths=tuple(run_paths),
                           errors=())
    report = to_data(result.report(timestamp(utc_now())))
    write_replacing(out_dir / REPORT_FILE, dump(signed(report, key_bytes)))
    return result, missing


def part_folders(directories: Sequence[Path]) -> dict[str, Path]:
    """The records folder of each part, by run id (a record's file is named for its run id)."""
    return {path.stem: directory for directory in directories for path in run_files(directory)}


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
            return _relative(directory, out_dir) or part.experiment_path
    return parts[0].experiment_path


def _missing_text(record: RunRecord, ids: Sequence[str]) -> str:
    few = ", ".join(ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")
    return (f"{len(ids)} of {len(record.cases)} case(s) of {record.template_id} are in no part ({few}): a part is "
            f"missing; the merged run is {RunStatus.INCOMPLETE_EVALUATION.value}")


def _write(record: RunRecord, out_dir: Path, key: bytes | None) -> RunRecord:
    """The merged run's redacted evaluation report, then its record (signed when a key is set)."""
    report_rel = f"{REPORTS}/{record.run_id}-redacted-eval.json"
    report_bytes = dump(redacted_eval(record))
    write_new(out_dir / report_rel, report_bytes)
    record = msgspec.structs.replace(
        record, artifacts=(*record.artifacts, Artifact(path=report_rel, sha256=_sha256(report_bytes))))
    data: Mapping[str, Any] = signed(to_data(record), key)
    stored = msgspec.convert(data, RunRecord)
    write_new(out_dir / RUNS / f"{record.run_id}.json", dump(stored))
    return stored
