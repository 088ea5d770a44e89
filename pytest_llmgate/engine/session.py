"""One gate session, free of pytest: experiments, selected runs, case results, and what gets written."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pytest_llmgate.records.candidate import Candidate
from pytest_llmgate.model.costs import Pricer, Usage, listed_pricer, override_price
from pytest_llmgate.model.decision import decide
from pytest_llmgate.records.diff import compare, counterpart
from pytest_llmgate.io.history import stored_runs
from pytest_llmgate.model.errors import (
    CandidateError, ExportError, LlmgateError, RecordError,
    SelectionError, redact_urls,
)
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.errors import display_path
from pytest_llmgate.records.experiment import EVALUATION, Experiment, load_experiment
from pytest_llmgate.model.fingerprint import short
from pytest_llmgate.io.lock import frozen_state, read_lock, write_lock
from pytest_llmgate.providers import (
    MakeProvider, Provider, ProviderContext, ProviderFactory, ProviderOptions, builtin_factory, check_settings, warm,
    not_ready, unknown_provider,
)
from pytest_llmgate.providers._calls import DEFAULT_CONCURRENCY, Answers
from pytest_llmgate.records.candidate import CASE_TIMEOUT
from pytest_llmgate.model.results import CaseIndex, RunResults
from pytest_llmgate.records.run import Artifact, Part, RunRecord, aggregates, build_run_record, implied_latencies, redacted_eval
from pytest_llmgate.io.provenance import code_commit, llmgate_version
from pytest_llmgate.engine.judging import (
    check_evaluator, judge_not_ready, judge_notes, judged, judged_verdict, standing, with_standing,
)
from pytest_llmgate.records.codec import dump, dump_chunks, from_data, to_data
from pytest_llmgate.io.signing import sign, signing_key
from pytest_llmgate.records.outcome import ExperimentOutcome, PlannedRun, SessionResult
from pytest_llmgate.records.report import SessionReport
from pytest_llmgate.io.store import PREVIOUS_REPORT_FILE, REPORT_FILE, REPORTS, RUNS, new_run_id, relative_to_records, timestamp, utc_now, write_new, write_new_hashed, write_replacing
from pytest_llmgate.model.vocab import DecisionStatus, Role, Route, ShowMode

T = TypeVar("T")

ALL = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The template ids asked for as candidates (``all`` for every artifact) and as baselines."""

    candidates: tuple[str, ...]
    baselines: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.candidates and not self.baselines


@dataclass(frozen=True, slots=True, kw_only=True)
class PartSpec:
    """A session that runs one part of a split run: the split id asked for (None: worked out from the cases run)
    and how the session was narrowed, in words (``pytest-split group 1 of 4``, ``-k ...``). ``only_evaluated``:
    a job of a split (a splitter or ``--llmgate-part``) records only the cases it evaluated; a session narrowed
    by ``-k``, ``--deselect`` or ``--lf`` records every case, those it did not run as NOT_RUN (SPEC §5.1)."""

    split_id: str | None
    selection: str
    only_evaluated: bool = True


#: What a part session says, in its summary and report, instead of a decision.
WAITS_FOR_MERGE = "the decision waits for `llmgate merge` of every part"


def plan_runs(experiment: Experiment, selection: Selection) -> tuple[PlannedRun, ...]:
    """The runs of ``experiment``: baselines first, then candidates, each in the order asked for."""
    baselines = [t for t in dict.fromkeys(selection.baselines) if t in experiment.candidates]
    if ALL in selection.candidates:
        candidates = [t for t in experiment.candidates if t not in baselines]
    else:
        candidates = [t for t in dict.fromkeys(selection.candidates) if t in experiment.candidates]
    return tuple(
        [PlannedRun(template_id=t, role=Role.BASELINE) for t in baselines]
        + [PlannedRun(template_id=t, role=Role.CANDIDATE) for t in candidates]
    )


def check_selection(experiments: Iterable[Experiment], selection: Selection) -> None:
    """Every id asked for exists in some experiment, and none is both candidate and baseline."""
    known = sorted({t for experiment in experiments for t in experiment.candidates})
    both = sorted(set(selection.candidates) & set(selection.baselines))
    if both:
        raise SelectionError(None, None, f"{', '.join(both)}: asked for as both candidate and baseline")
    if ALL in selection.baselines:
        raise SelectionError(None, None, "'all' selects candidates only; name each baseline")
    unknown = [t for t in dict.fromkeys(selection.candidates + selection.baselines) if t != ALL and t not in known]
    if unknown:
        raise SelectionError(
            None, None,
            f"unknown template id {', '.join(map(repr, unknown))}; the collected experiments have: "
            + (", ".join(known) if known else "no candidate artifacts"),
        )


RecordHook = Callable[[dict[str, Any], Mapping[str, Path]], None]
ReportHook = Callable[[dict[str, Any], Path], None]


class GateSession:
    """Loads experiments once, plans runs, gathers case results and writes records at the end."""

    def __init__(
        self,
        selection: Selection,
        out_dir: Path,
        *,
        freeze: bool = False,
        options: ProviderOptions | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        make_provider: MakeProvider = builtin_factory,
        show: ShowMode = ShowMode.FAILURES,
        compare_to: Path | None = None,
    ) -> None:
        self.selection = selection
        self.compare_to = compare_to
        self.stored: list[RunRecord] = []  # the runs of ``compare_to``, read at start on the controller
        self.options = options or ProviderOptions()
        self.answers = Answers(concurrency)
        self.show = show  # what a failing case shows of its prompt and reply (terminal and JUnit only)
        self._make_provider = make_provider
        self._factories: dict[str, ProviderFactory | None] = {}
        self.out_dir = out_dir
        self.freeze = freeze
        self._frozen: dict[Path, bool] = {}
        self.started = utc_now()
        self._loaded: dict[Path, Experiment | LlmgateError] = {}
        self._providers: dict[tuple[Path, str], Provider] = {}
        self._timeouts: dict[int, float] = {}  # id(provider) -> its artifact's case_timeout
        self._results: dict[tuple[str, str], RunResults] = {}  # by (experiment directory, template id)
        self._indexes: dict[str, CaseIndex | None] = {}  # by experiment directory
        self.collected: set[Path] = set()
        self.notices: list[str] = []  # what the session did before the runs (a freeze), for the header
        self.notes: list[str] = []  # what it says once at the end (a model with no known price), in the summary
        self._priced: dict[tuple[str, str, str | None], Pricer | None] = {}
        self.part: PartSpec | None = None  # set before ``finish`` when the session runs one part of a split run
        self.deselected = 0  # case items deselected (by a splitter, -k, --deselect), summed over xdist workers

    # -- experiments -------------------------------------------------------------------------
    def load(self, directory: Path) -> Experiment:
        """The experiment in ``directory``, loaded once per session; a load error is raised each time."""
        directory = directory.resolve()
        found = self._loaded.get(directory)
        if found is None:
            try:
                found = load_experiment(directory)
                for candidate in found.candidates.values():
                    check_settings(candidate, self._factory(candidate))
                if found.evaluator is not None:
                    check_evaluator(found.evaluator, self._factory)
            except LlmgateError as exc:
                found = exc
            self._loaded[directory] = found
        if isinstance(found, LlmgateError):
            raise found
        return found

    @property
    def experiments(self) -> list[Experiment]:
        return [found for found in self._loaded.values() if isinstance(found, Experiment)]

    @property
    def load_errors(self) -> list[LlmgateError]:
        return [found for found in self._loaded.values() if isinstance(found, LlmgateError)]

    def claims(self, path: Path) -> bool:
        """Whether a loaded experiment lists the suite file at ``path``."""
        resolved = path.resolve()
        return any(resolved in experiment.suite_paths() for experiment in self.experiments)

    def plans(self, experiment: Experiment) -> tuple[PlannedRun, ...]:
        return plan_runs(experiment, self.selection)

    # -- providers ---------------------------------------------------------------------------
    def _factory(self, candidate: Candidate) -> ProviderFactory:
        """The factory for an artifact's ``provider:``, asked of the registry once per name per session."""
        name = candidate.provider
        if name not in self._factories:
            self._factories[name] = self._make_provider(name)
        factory = self._factories[name]
        if factory is None:
            raise unknown_provider(candidate)
        return factory

    def _context(self, experiment: Experiment) -> ProviderContext:
        return ProviderContext(experiment_dir=experiment.directory, record_mode=self.options.record_mode,
                               trials=self.options.trials, throttles=self.answers.throttles)

    def provider(self, experiment: Experiment, template_id: str) -> Provider:
        """The provider of a selected artifact, built once per process; an unusable one raises ``CandidateError``."""
        key = (experiment.directory, template_id)
        if key not in self._providers:
            candidate = experiment.candidates[template_id]
            provider = self._factory(candidate).build(candidate, self._context(experiment))
            if experiment.evaluator is not None:  # its replies are judged (docs/evaluators.md)
                provider = judged(provider, candidate, experiment.evaluator, self._context(experiment), self._factory)
            self._providers[key] = provider
            if CASE_TIMEOUT in candidate.settings:
                self._timeouts[id(provider)] = float(candidate.settings[CASE_TIMEOUT])
        return self._providers[key]

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        """A provider's route for ``case`` in each trial with what its call used, from the session's call pool
        (see ``Answers``), each waited for at most the artifact's ``case_timeout`` (else the provider kind's
        default)."""
        return self.answers.routes(provider, case, upcoming, self._timeouts.get(id(provider)))

    def start(self, directories: Iterable[Path], *, controller: bool) -> None:
        """Load the experiments found at session start; check the selection; freeze or check each lock.

        A directory that fails to load is reported later, as a collection error of that directory. Only the
        controller (or the single process) writes locks, before any xdist worker starts.
        """
        for directory in directories:
            try:
                self.load(directory)
            except LlmgateError:
                pass
        self.check_selection()
        if self.compare_to is not None and controller:
            # checked as `llmgate verify` checks them: a refused or unreadable folder or report stops the session here
            stored = stored_runs(self.compare_to, signing_key())
            self.stored = stored.records
            self.notices += [f"llmgate: note: {note}" for note in stored.notes]
        if self.freeze and controller:
            self.freeze_all()
        for experiment in self.experiments:
            self.frozen(experiment)  # suites that differ from their lock stop the session before any run

    def warm(self) -> None:
        """Let each selected artifact's factory start its slow work in the background (see ``ProviderFactory``)."""
        for experiment in self.experiments:
            for planned in self.plans(experiment):
                candidate = experiment.candidates[planned.template_id]
                try:
                    factory = self._factory(candidate)
                except LlmgateError:
                    continue  # an unknown provider is reported when its cases run
                warm(factory, candidate, self._context(experiment))

    def check_ready(self) -> None:
        """Before any case runs: a selected artifact none of whose cases can be answered (no API key for a live
        call, nothing recorded to replay) is one ``CandidateError`` saying so, not an error per case."""
        for experiment in self.experiments:
            plans = self.plans(experiment)
            problems = []
            for planned in plans:
                candidate = experiment.candidates[planned.template_id]
                try:
                    problems.append(not_ready(self._factory(candidate), candidate, self._context(experiment)))
                except LlmgateError:
                    continue  # an unknown provider is reported when its cases run
            if plans:  # the judge of the experiment's evaluator, when it has one
                problems.append(judge_not_ready(experiment, self._context(experiment), self._factory))
            for problem in problems:
                if problem is not None:
                    raise CandidateError(None, None, problem)

    def frozen(self, experiment: Experiment) -> bool:
        """Whether the experiment matches its lock (False: no lock); a mismatch raises ``LockError``."""
        if experiment.directory not in self._frozen:
            self._frozen[experiment.directory] = frozen_state(experiment)
        return self._frozen[experiment.directory]

    def freeze_all(self) -> list[Path]:
        """Write or refresh the lock of every loaded experiment (``--llmgate-freeze``), saying what it did."""
        paths = []
        for experiment in self.experiments:
            try:
                old = read_lock(experiment)
            except LlmgateError:
                old = None  # an unreadable lock is replaced whole
            path = write_lock(experiment)
            paths.append(path)
            new_sha = short(experiment.fingerprints[EVALUATION])
            where = display_path(path)
            if old is None:
                self.notices.append(f"llmgate: froze {experiment.name}: wrote {where} (evaluation {new_sha})")
            elif old.fingerprints == experiment.fingerprints:
                self.notices.append(f"llmgate: {experiment.name}: {where} unchanged (evaluation {new_sha})")
            else:
                old_sha = short(old.fingerprints.get(EVALUATION, "none"))
                self.notices.append(
                    f"llmgate: refroze {experiment.name}: replaced {where}; a new comparison set starts "
                    f"(evaluation {old_sha} -> {new_sha}); runs before it are not comparable with runs after it"
                )
        return paths

    def check_selection(self) -> None:
        if not self.load_errors:
            check_selection(self.experiments, self.selection)

    # -- results -----------------------------------------------------------------------------
    def add_result(self, result: CaseResult) -> None:
        key = (result.experiment_dir, result.template_id)
        run = self._results.get(key)
        if run is None:
            run = self._results[key] = RunResults(result.experiment_dir, result.template_id, result.role,
                                                  self._case_index(result.experiment_dir))
        run.add(result)

    def _case_index(self, experiment_dir: str) -> CaseIndex | None:
        """The case positions of a loaded experiment (None: this process has not loaded it; its results are kept
        whole)."""
        if experiment_dir not in self._indexes:
            found = self._loaded.get(Path(experiment_dir))
            self._indexes[experiment_dir] = (CaseIndex([case.case_id for case in found.cases])
                                             if isinstance(found, Experiment) else None)
        return self._indexes[experiment_dir]

    # -- finish ------------------------------------------------------------------------------
    def finish(self, on_record: RecordHook | None, on_report: ReportHook) -> SessionResult:
        """Build, hand to the hooks, and write every run record, then the session report. ``on_record`` is None
        when nothing listens for run records: a record is then written as built, never turned into plain data."""
        self.answers.shutdown()
        finished = utc_now()
        if self.part is not None:
            self.notes.append(self._part_note())
        outcomes: list[ExperimentOutcome] = []
        run_paths: list[Path] = []
        errors: list[LlmgateError] = []
        for directory in sorted(self.collected):
            try:
                experiment = self.load(directory)
            except LlmgateError:
                continue
            plans = self.plans(experiment)
            if not plans:
                continue
            records: list[RunRecord] = []
            unrecorded: list[tuple[str, str]] = []
            not_run = []
            for plan in plans:
                if not self._results.get((str(experiment.directory), plan.template_id)):
                    not_run.append(plan)  # deselected or never reached: no record, listed in the report
                    continue
                baselines = [record for record in records if record.role is Role.BASELINE]
                try:
                    record, path = self._write_run(experiment, plan, finished, on_record, errors, baselines)
                except RecordError as exc:
                    errors.append(exc)
                    unrecorded.append((plan.template_id, exc.message()))
                    continue
                records.append(record)
                run_paths.append(path)
            not_run_candidates = [plan.template_id for plan in not_run if plan.role is Role.CANDIDATE]
            verdict = judged_verdict(decide(records, [template_id for template_id, _ in unrecorded], not_run_candidates),
                                     records)
            self.notes.extend(judge_notes(experiment, [plan.template_id for plan in plans], standing(experiment)))
            if self.part is not None and verdict.status is DecisionStatus.INCOMPLETE_EVALUATION:
                verdict = dataclasses.replace(
                    verdict, reason=f"{verdict.reason}; this session is part {self.split_id()} of a split run: "
                                    f"{WAITS_FOR_MERGE}")
            outcomes.append(ExperimentOutcome(
                experiment=experiment, records=tuple(records), not_run=tuple(not_run),
                verdict=verdict, frozen=self.frozen(experiment), unrecorded=tuple(unrecorded),
            ))
        notes = tuple(self.notes)
        if not outcomes:
            return SessionResult(outcomes=(), report_path=None, run_paths=tuple(run_paths), errors=tuple(errors),
                                 notes=notes)
        report = to_data(SessionResult(outcomes=tuple(outcomes), report_path=None, run_paths=(), errors=()).report(
            timestamp(finished)
        ))
        if notes:
            report["notes"] = [*report.get("notes", ()), *notes]
        report_path = self.out_dir / REPORT_FILE
        _call_hook(lambda: on_report(report, report_path), errors)
        try:
            write_replacing(report_path, dump(sign(_checked(report, SessionReport, report_path), signing_key())))
        except RecordError as exc:
            errors.append(exc)
            report_path = None  # type: ignore[assignment]
        return SessionResult(outcomes=tuple(outcomes), report_path=report_path, run_paths=tuple(run_paths),
                             errors=tuple(errors), notes=notes)

    def _write_run(
        self, experiment: Experiment, plan: PlannedRun, finished: datetime, on_record: RecordHook | None,
        errors: list[LlmgateError], baselines: Sequence[RunRecord] = (),
    ) -> tuple[RunRecord, Path]:
        run_id = new_run_id(utc_now())
        results = self._results.get((str(experiment.directory), plan.template_id)) or RunResults(
            str(experiment.directory), plan.template_id, plan.role, None)
        candidate = experiment.candidates[plan.template_id]
        draft = build_run_record(
            experiment=experiment,
            candidate=candidate,
            role=plan.role,
            results=results,
            run_id=run_id,
            started_at=timestamp(self.started),
            finished_at=timestamp(finished),
            code_commit=code_commit(experiment.directory),
            version=llmgate_version(),
            frozen=self.frozen(experiment),
            extra_params=dict(self._factory(candidate).params(candidate, self._context(experiment))),
            baselines=baselines,
            pricer=self._pricer(candidate, results),
            budget=experiment.budget,
            experiment_path=relative_to_records(experiment.directory, self.out_dir),
        )
        if self.part is not None:
            draft = self._as_part(experiment, draft, results, baselines)
        draft = with_standing(draft, standing(experiment), results)
        if self.compare_to is not None:
            before, matched_by = counterpart(draft, self.stored)
            draft = msgspec.structs.replace(draft, comparison=compare(before, draft, matched_by))
        report_rel = f"{REPORTS}/{run_id}-redacted-eval.json"
        report_path = self.out_dir / report_rel
        report_sha256 = write_new_hashed(report_path, dump_chunks(redacted_eval(draft)))
        try:  # the pair is kept consistent: no redacted report stays behind without its run record
            artifact = Artifact(path=report_rel, sha256=report_sha256)
            record = msgspec.structs.replace(draft, artifacts=(*draft.artifacts, artifact))
            del draft
            path = self.out_dir / RUNS / f"{run_id}.json"
            key = signing_key()
            if on_record is None:  # signed as it is, never turned into data whole
                record = sign(record, key)
            else:
                # As data, for the hooks to see and edit, and for the signature; an edited copy is checked.
                data = to_data(record)
                files = {artifact.path: experiment.directory / artifact.path for artifact in record.artifacts[:1]}
                files[report_rel] = report_path
                if on_record is not None:
                    _call_hook(lambda: on_record(data, files), errors)
                record = sign(_checked(data, RunRecord, path), key)
                del data
            write_new(path, dump_chunks(record))
        except BaseException:
            report_path.unlink(missing_ok=True)
            raise
        return record, path

    def _as_part(self, experiment: Experiment, draft: RunRecord, results: Mapping[str, Sequence[CaseResult]],
                 baselines: Sequence[RunRecord]) -> RunRecord:
        """A part's record and what the merge needs of it: a split job's holds the cases it evaluated and their
        figures; a session narrowed by ``-k``/``--deselect``/``--lf`` keeps every case (``PartSpec``)."""
        assert self.part is not None
        evaluated = [entry for entry in draft.cases if entry.case_id in results]
        latencies = {case_id: tuple(call.latency_ms for call in ran[-1].calls if call.latency_ms is not None)
                     for case_id, ran in results.items() if ran}
        part = Part(split_id=self.split_id(), selection=self.part.selection,
                    case_ids=tuple(entry.case_id for entry in draft.cases), cases_sha256=draft.cases_sha256,
                    latencies_ms={entry.case_id: latencies[entry.case_id] for entry in evaluated
                                  if latencies.get(entry.case_id, ()) != implied_latencies(entry.cost)})
        if not self.part.only_evaluated:
            return msgspec.structs.replace(draft, part=part)
        return msgspec.structs.replace(
            draft, part=part,
            **aggregates(evaluated, draft.complete, latencies, [suite.name for suite in experiment.suites], draft.role,
                         draft.promotion, draft.budget, baselines),
        )

    def split_id(self) -> str:
        """The part's split id: as asked for, else ``cases-`` and a digest of every (experiment, template, case) run."""
        if self.part is not None and self.part.split_id:
            return self.part.split_id
        ran = sorted(f"{experiment}\0{template}\0{case_id}" for (experiment, template), cases in self._results.items()
                     for case_id in cases)
        return "cases-" + hashlib.sha256("\n".join(ran).encode("utf-8")).hexdigest()[:12]

    def _part_note(self) -> str:
        ran = sum(len(cases) for cases in self._results.values())
        selection = self.part.selection if self.part is not None else ""
        return (f"llmgate: this session is part {self.split_id()} of a split run ({selection}; {ran} case result(s)); "
                f"its exit status reflects only the cases it ran; {WAITS_FOR_MERGE}")

    def _pricer(self, candidate: Candidate, results: RunResults) -> Pricer | None:
        """How a candidate's calls are priced: its ``price:`` override, else the genai-prices list (looked up only
        when a call reported tokens); a model neither knows is named once per session in the notes."""
        price = override_price(candidate.settings)
        if price is not None:
            return price.of
        if not results.reported_tokens():
            return None
        model = str(candidate.settings.get("model", candidate.template_id))
        base_url = candidate.settings.get("base_url")
        key = (candidate.provider, model, base_url)
        if key not in self._priced:
            self._priced[key] = listed_pricer(model, candidate.provider, base_url)
            if self._priced[key] is None:
                self.notes.append(_unpriced_note(model, candidate))
        return self._priced[key]

    def mark_in_progress(self) -> None:
        """Before any run, replace the last session's report with one that holds no verdict: a CI step reading
        ``report.json`` after this session stopped on bad input, was interrupted or killed never sees a verdict
        this session did not reach. The last report is kept whole as ``report.previous.json``."""
        report = self.out_dir / REPORT_FILE
        try:
            previous = report.read_bytes()
        except OSError:
            previous = None
        if previous is not None:
            write_replacing(self.out_dir / PREVIOUS_REPORT_FILE, previous)
        marker = SessionReport(generated_at=timestamp(self.started), experiments=(), in_progress=True)
        write_replacing(report, dump(sign(marker, signing_key())))

    def header_lines(self) -> list[str]:
        lines = list(self.notices)
        for experiment in self.experiments:
            prints = ", ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
            lines.append(f"llmgate: {experiment.name}: {prints}")
        if self.compare_to is not None and self.stored:
            lines.append(f"llmgate: comparing with {len(self.stored)} stored run(s) of {display_path(self.compare_to)}")
        if not self.selection.empty:
            lines.append(
                "llmgate: candidates: " + (", ".join(self.selection.candidates) or "none")
                + "; baselines: " + (", ".join(self.selection.baselines) or "none")
            )
        lines.extend(self._deterministic_note())
        return lines

    def _deterministic_note(self) -> list[str]:
        """With ``--llmgate-trials`` above 1: the selected runs whose provider is deterministic (a factory with
        ``deterministic = True``), asked once per case all the same."""
        if (self.options.trials or 1) <= 1:
            return []
        once = []
        for experiment in self.experiments:
            for plan in self.plans(experiment):
                candidate = experiment.candidates[plan.template_id]
                if getattr(self._factory(candidate), "deterministic", False):
                    once.append(f"{plan.template_id} ({candidate.provider})")
        if not once:
            return []
        return [f"llmgate: --llmgate-trials={self.options.trials} does not apply to deterministic providers; "
                f"asked once per case: {', '.join(dict.fromkeys(once))}"]


def _unpriced_note(model: str, candidate: Candidate) -> str:
    try:
        import genai_prices  # noqa: F401
    except ImportError:
        why = "the prices extra is not installed (pip install 'pytest-llmgate[prices]')"
    else:
        why = "the genai-prices list does not know it"
    return (f"llmgate: no known price for model {model!r} ({candidate.relative_path}): {why}; its cost is "
            "reported as unknown (null); set price: {input_per_mtok: ..., output_per_mtok: ...} in the artifact")


def _call_hook(call: Callable[[], object], errors: list[LlmgateError]) -> None:
    """Run an exporter hook; its failure is one error line, and the local records are written all the same."""
    try:
        call()
    except LlmgateError as exc:
        errors.append(exc)
    except Exception as exc:  # noqa: BLE001 - any exporter failure is reported, never lost
        errors.append(ExportError(None, None, redact_urls(f"{type(exc).__name__}: {exc}".splitlines()[0])))


def _checked(data: Any, kind: type[T], path: Path) -> T:
    """A hook's edited copy of a record or report, checked against its definition before it is written."""
    try:
        return from_data(data, kind)
    except msgspec.ValidationError as exc:
        raise RecordError(path, None, f"an exporter hook left it invalid ({exc}); it is not written") from None


def selection_hint(experiments: Iterable[Experiment]) -> str | None:
    """One line for a session that collected experiments but selected nothing: what exists and how to pick it."""
    found = {experiment.name: sorted(experiment.candidates) for experiment in experiments}
    if not found:
        return None
    listed = "; ".join(f"{name}: {', '.join(ids) or 'no artifacts'}" for name, ids in sorted(found.items()))
    return (f"llmgate: no candidate or baseline selected, so nothing was gated ({listed}); "
            "pick with --llmgate-candidate=ID (or =all) and --llmgate-baseline=ID")
