"""Writing what a session found: a run record (and its redacted report) per planned run, then the session report,
signed when a key is set, each handed to the exporters' hooks (a record once written, the report before); and the
in-progress marker at the start."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pytest_llmgate.engine.judging import judge_notes, judged_verdict, with_standing
from pytest_llmgate.engine.plan import WAITS_FOR_MERGE, PartSpec
from pytest_llmgate.io.provenance import code_commit, llmgate_version
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
from pytest_llmgate.model.costs import Pricer
from pytest_llmgate.model.decision import decide
from pytest_llmgate.model.errors import ExportError, LlmgateError, RecordError, redact_urls
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.results import RunResults
from pytest_llmgate.model.vocab import DecisionStatus, Role
from pytest_llmgate.records.codec import dump, dump_chunks, from_data, to_data
from pytest_llmgate.records.comparison import compare, counterpart
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import ExperimentOutcome, PlannedRun, SessionResult
from pytest_llmgate.records.report import SessionReport, report_data
from pytest_llmgate.records.run import (
    Part,
    RunRecord,
    aggregates,
    build_run_record,
    implied_latencies,
)

T = TypeVar("T")

RecordHook = Callable[[dict[str, Any], Mapping[str, Path]], None]
ReportHook = Callable[[dict[str, Any], Path], None]


class RunToWrite(msgspec.Struct, frozen=True, kw_only=True):
    """A planned run that ran, as the session hands it over: its results, its provider's params, its pricer; or
    why it cannot be recorded (``unrecordable``: its provider's params or price could not be had)."""

    plan: PlannedRun
    results: RunResults
    params: Mapping[str, str] = {}
    pricer: Pricer | None = None
    unrecordable: LlmgateError | None = None


class ExperimentToWrite(msgspec.Struct, frozen=True, kw_only=True):
    """An experiment's planned runs, and those of them that ran (to be recorded; the others are listed in the
    report as not run)."""

    experiment: Experiment
    frozen: bool
    plans: tuple[PlannedRun, ...]
    ran: tuple[RunToWrite, ...]


class RecordWriter:
    """Writes a session's records and report into ``out_dir``: it is handed what to write, and holds only where,
    whether the session is one part of a split run (``part``, its split id resolved), and the runs of
    ``--llmgate-compare-to`` (``stored``). ``notes`` is the session's own list of what it says at the end."""

    def __init__(self, out_dir: Path, notes: list[str]) -> None:
        self.out_dir = out_dir
        self.notes = notes
        self.started = utc_now()
        self.part: PartSpec | None = None
        self.compare_to: Path | None = None
        self.stored: list[RunRecord] = []

    def finish(self, experiments: Iterable[ExperimentToWrite], on_record: RecordHook | None,
               on_report: ReportHook | None) -> SessionResult:
        """Build, write, and hand to the hooks every run record, then the session report. ``on_record`` and
        ``on_report`` are None when nothing listens: a record or the report is then written as built, never turned
        into plain data."""
        finished = utc_now()
        outcomes: list[ExperimentOutcome] = []
        run_paths: list[Path] = []
        errors: list[LlmgateError] = []
        for written in experiments:
            experiment, ran = written.experiment, {run.plan.template_id for run in written.ran}
            not_run = tuple(plan for plan in written.plans if plan.template_id not in ran)  # deselected, never reached
            records: list[RunRecord] = []
            unrecorded: list[tuple[str, str]] = []
            for run in written.ran:
                baselines = [record for record in records if record.role is Role.BASELINE]
                try:
                    if run.unrecordable is not None:
                        raise run.unrecordable
                    record, path = self._write_run(experiment, written.frozen, run, finished, on_record, errors,
                                                   baselines)
                except LlmgateError as exc:
                    errors.append(exc)
                    unrecorded.append((run.plan.template_id, exc.message()))
                    continue
                records.append(record)
                run_paths.append(path)
            not_run_candidates = [plan.template_id for plan in not_run if plan.role is Role.CANDIDATE]
            verdict = judged_verdict(decide(records, [template_id for template_id, _ in unrecorded], not_run_candidates),
                                     records)
            self.notes.extend(judge_notes(experiment, [plan.template_id for plan in written.plans],
                                          experiment.judge_standing()))
            if self.part is not None and verdict.status is DecisionStatus.INCOMPLETE_EVALUATION:
                verdict = msgspec.structs.replace(
                    verdict, reason=f"{verdict.reason}; this session is part {self.part.split_id} of a split run: "
                                    f"{WAITS_FOR_MERGE}")
            outcomes.append(ExperimentOutcome(
                experiment=experiment, records=tuple(records), not_run=not_run,
                verdict=verdict, frozen=written.frozen, unrecorded=tuple(unrecorded),
            ))
        notes = tuple(self.notes)
        saved: Path | None = None  # no report without an experiment, nor when it cannot be written
        if outcomes:
            report = SessionResult(outcomes=tuple(outcomes), report_path=None, run_paths=(), errors=(),
                                   notes=notes).report(timestamp(finished))
            report_path = self.out_dir / REPORT_FILE
            try:
                if on_report is not None:  # as data, for the hooks to see and edit; an edited copy is checked
                    data = report_data(report)
                    _call_hook(partial(on_report, data, report_path), errors)
                    report = _checked(data, SessionReport, report_path)
                write_replacing(report_path, dump(sign(report, signing_key())))
                saved = report_path
            except RecordError as exc:
                errors.append(exc)
        return SessionResult(outcomes=tuple(outcomes), report_path=saved, run_paths=tuple(run_paths),
                             errors=tuple(errors), notes=notes)

    def _write_run(
        self, experiment: Experiment, frozen: bool, run: RunToWrite, finished: datetime,
        on_record: RecordHook | None, errors: list[LlmgateError], baselines: Sequence[RunRecord] = (),
    ) -> tuple[RunRecord, Path]:
        run_id = new_run_id(utc_now())
        results = run.results
        draft = build_run_record(
            experiment=experiment,
            candidate=experiment.candidates[run.plan.template_id],
            role=run.plan.role,
            results=results,
            run_id=run_id,
            started_at=timestamp(self.started),
            finished_at=timestamp(finished),
            code_commit=code_commit(experiment.directory),
            version=llmgate_version(),
            frozen=frozen,
            extra_params=dict(run.params),
            baselines=baselines,
            pricer=run.pricer,
            budget=experiment.budget,
            experiment_path=relative_to_records(experiment.directory, self.out_dir),
        )
        if self.part is not None:
            draft = self._as_part(experiment, draft, results, baselines)
        draft = with_standing(draft, experiment.judge_standing(), results)
        if self.compare_to is not None and self.part is None:  # a part holds some cases: its merge is compared
            before, matched_by = counterpart(draft, self.stored)
            draft = msgspec.structs.replace(draft, comparison=compare(before, draft, matched_by))
        record = write_redacted(draft, self.out_dir)
        del draft
        report_path = self.out_dir / record.artifacts[-1].path
        path = self.out_dir / RUNS / f"{run_id}.json"
        written = False
        try:  # the pair is kept consistent: no redacted report stays behind without its run record
            key = signing_key()
            signed = sign(record, key)
            write_new(path, dump_chunks(signed))
            written = True  # a run goes to the exporters only once its record is written, and they see that one
            if on_record is not None:
                # As data, for the hooks to see and edit; an edited copy is checked, signed, and replaces the record
                # (one a hook left invalid does not: the record stays as written, and the hook's error is said).
                data = to_data(record)
                files = {artifact.path: experiment.directory / artifact.path for artifact in record.artifacts[:1]}
                files[record.artifacts[-1].path] = report_path
                _call_hook(partial(on_record, data, files), errors)
                try:
                    edited = _checked(data, RunRecord, path, "it stays as written")
                except RecordError as exc:
                    errors.append(exc)
                    edited = record
                del data
                if edited != record:
                    signed = sign(edited, key)
                    write_replacing(path, dump_chunks(signed))
        except BaseException:
            report_path.unlink(missing_ok=True)
            if written:
                path.unlink(missing_ok=True)
            raise
        return signed, path

    def _as_part(self, experiment: Experiment, draft: RunRecord, results: Mapping[str, Sequence[CaseResult]],
                 baselines: Sequence[RunRecord]) -> RunRecord:
        """A part's record and what the merge needs of it: the cases it evaluated and their figures."""
        assert self.part is not None
        evaluated = [entry for entry in draft.cases if entry.case_id in results]
        latencies = {case_id: tuple(call.latency_ms for call in ran[-1].calls if call.latency_ms is not None)
                     for case_id, ran in results.items() if ran}
        assert self.part.split_id, "the session resolves the split id before writing"
        part = Part(split_id=self.part.split_id, selection=self.part.selection,
                    case_ids=tuple(entry.case_id for entry in draft.cases), cases_sha256=draft.cases_sha256,
                    latencies_ms={entry.case_id: latencies[entry.case_id] for entry in evaluated
                                  if latencies.get(entry.case_id, ()) != implied_latencies(entry.cost)})
        return msgspec.structs.replace(
            draft, part=part,
            **aggregates(evaluated, draft.complete, latencies, [suite.name for suite in experiment.suites], draft.role,
                         draft.promotion, draft.budget, baselines),
        )


def mark_in_progress(out_dir: Path, started: datetime) -> None:
    """Before any run (or merge), replace the last report in ``out_dir`` with one that holds no verdict: a CI step
    reading ``report.json`` after this session stopped on bad input, was interrupted or killed never sees a
    verdict this session did not reach. The last report is kept whole as ``report.previous.json``."""
    report = out_dir / REPORT_FILE
    try:
        previous = report.read_bytes()
    except OSError:
        previous = None
    if previous is not None and not _in_progress(previous):  # a stopped session's marker is no verdict to keep
        write_replacing(out_dir / PREVIOUS_REPORT_FILE, previous)
    marker = SessionReport(generated_at=timestamp(started), experiments=(), in_progress=True)
    write_replacing(report, dump(sign(marker, signing_key())))


def _in_progress(report: bytes) -> bool:
    """Whether ``report`` is the marker a session leaves until it ends (an unreadable file is kept as it is)."""
    try:
        return msgspec.json.decode(report, type=dict[str, Any]).get("in_progress") is True
    except msgspec.DecodeError:
        return False


def _call_hook(call: Callable[[], object], errors: list[LlmgateError]) -> None:
    """Run an exporter hook; its failure is one error line, and the local records are written all the same."""
    try:
        call()
    except LlmgateError as exc:
        errors.append(exc)
    except Exception as exc:
        errors.append(ExportError(None, None, redact_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])))


def _checked(data: Any, kind: type[T], path: Path, otherwise: str = "it is not written") -> T:
    """A hook's edited copy of a record or report, checked against its definition before it is written."""
    try:
        return from_data(data, kind)
    except msgspec.ValidationError as exc:
        raise RecordError(path, None, f"an exporter hook left it invalid ({exc}); {otherwise}") from None
