"""One gate session, free of pytest: what it was asked, and the parts that load, call, gather and write.

``GateSession`` is the face the pytest plugin talks to; each part is its own class: ``Experiments`` (loading and
locks, engine/loading.py), ``Providers`` (factories, providers and the call pool, engine/providing.py),
``Pricing`` (engine/pricing.py), and ``RecordWriter`` (records and the report, engine/writer.py), which is handed
what to write (``ExperimentToWrite``) and holds none of the others. The session keeps the case results itself."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from pytest_llmgate.engine.judging import judge_not_ready
from pytest_llmgate.engine.loading import Experiments
from pytest_llmgate.engine.plan import WAITS_FOR_MERGE, PartSpec, Selection, check_selection, plan_runs
from pytest_llmgate.engine.pricing import Pricing
from pytest_llmgate.engine.providing import Answers, Providers
from pytest_llmgate.engine.writer import ExperimentToWrite, RecordHook, RecordWriter, ReportHook, RunToWrite
from pytest_llmgate.io.history import comparable_runs
from pytest_llmgate.io.signing import signing_key
from pytest_llmgate.model.case import Case
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY, SHOWN
from pytest_llmgate.model.errors import CandidateError, LlmgateError, display_path
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.results import CaseIndex, RunResults
from pytest_llmgate.model.vocab import RecordMode, Route, ShowMode
from pytest_llmgate.providers import MakeProvider, Provider, builtin_factory
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import PlannedRun, SessionResult


class GateSession:
    """A session's selection and options, its case results, and the parts that do the work."""

    def __init__(
        self,
        selection: Selection,
        out_dir: Path,
        *,
        freeze: bool = False,
        record_mode: RecordMode = RecordMode.NONE,
        trials: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        processes: int = 1,
        make_provider: MakeProvider = builtin_factory,
        show: ShowMode = ShowMode.FAILURES,
        compare_to: Path | None = None,
    ) -> None:
        self.selection = selection
        self.compare_to = compare_to
        self.show = show  # what a failing case shows of its prompt and reply (terminal and JUnit only)
        self.out_dir = out_dir
        self.freeze = freeze
        self.answers = Answers(concurrency, processes)  # processes: the xdist workers making the calls at once
        self.providing = Providers(record_mode, trials, self.answers, make_provider)
        self.loading = Experiments(self.providing.factory)
        self.pricing = Pricing()
        self._results: dict[tuple[str, str], RunResults] = {}  # by (experiment directory, template id)
        self._indexes: dict[str, CaseIndex | None] = {}  # by experiment directory
        self.notes = self.pricing.notes  # what the session says once at the end, in the summary
        self.writer = RecordWriter(out_dir, self.notes)
        self.writer.compare_to = compare_to
        self.started = self.writer.started
        self.collected: set[Path] = set()
        self.deselected = 0  # case items deselected (by a splitter, -k, --deselect), summed over xdist workers
        self.part: PartSpec | None = None  # set before ``finish`` when the session runs one part of a split run

    # -- what was asked ----------------------------------------------------------------------
    def plans(self, experiment: Experiment) -> tuple[PlannedRun, ...]:
        return plan_runs(experiment, self.selection)

    def _planned(self) -> Iterator[tuple[Experiment, PlannedRun]]:
        return ((experiment, plan) for experiment in self.experiments for plan in self.plans(experiment))

    # -- experiments (engine/loading.py) ---------------------------------------------------------
    def load(self, directory: Path) -> Experiment:
        return self.loading.load(directory)

    @property
    def experiments(self) -> list[Experiment]:
        return self.loading.loaded

    def frozen(self, experiment: Experiment) -> bool:
        return self.loading.frozen(experiment)

    def start(self, directories: Iterable[Path], *, controller: bool) -> None:
        """Load the experiments found at session start; check the selection; freeze or check each lock.

        A directory that fails to load is reported later, as a collection error of that directory. Only the
        controller (or the single process) writes locks, before any xdist worker starts.
        """
        for directory in directories:
            with contextlib.suppress(LlmgateError):
                self.loading.load(directory)
        if not self.loading.load_errors:
            check_selection(self.experiments, self.selection)
        if self.freeze and controller:
            self.loading.freeze_all()
        for experiment in self.experiments:
            self.loading.frozen(experiment)  # suites that differ from their lock stop the session before any run

    def read_stored(self) -> None:
        """The runs of ``--llmgate-compare-to``, checked as `llmgate verify` checks them: a refused or unreadable
        folder or report stops the session here. Read on the controller before it marks its own report in
        progress (the stored report may be that one)."""
        if self.compare_to is not None:
            stored = comparable_runs(self.compare_to, signing_key())
            self.writer.stored = stored.records
            self.loading.notices += [f"llmgate: note: {note}" for note in stored.notes]

    def warm(self) -> None:
        self.providing.warm(self._planned())

    def check_ready(self) -> None:
        """Before any case runs: a selected artifact none of whose cases can be answered (no API key for a live
        call, nothing recorded to replay) is one ``CandidateError`` saying so, not an error per case."""
        for experiment in self.experiments:
            plans = self.plans(experiment)
            context = self.providing.context(experiment)
            problems = [factory.ready(candidate, context)
                        for _, candidate, factory in self.providing.known((experiment, plan) for plan in plans)]
            if plans:  # the judge of the experiment's evaluator, when it has one
                problems.append(judge_not_ready(experiment, context, self.providing.factory))
            for problem in problems:
                if problem:
                    raise CandidateError(None, None, str(problem))

    # -- providers (engine/providing.py) ---------------------------------------------------------
    def provider(self, experiment: Experiment, template_id: str) -> Provider:
        return self.providing.provider(experiment, template_id)

    def routes(
        self, provider: Provider, case: Mapping[str, Any],
        upcoming: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> tuple[tuple[Route, Usage], ...]:
        return self.providing.routes(provider, case, upcoming)

    # -- results -----------------------------------------------------------------------------
    def add_result(self, result: CaseResult) -> None:
        key = (result.experiment_dir, result.template_id)
        run = self._results.get(key)
        if run is None:
            run = self._results[key] = RunResults(result.experiment_dir, result.template_id, result.role,
                                                  self._case_index(result.experiment_dir))
        run.add(result)

    def not_run(self) -> int:
        """Cases that a run of this session has no result for (not collected, deselected, never reached), counted
        once per experiment however many of its runs miss them: a session with any is partial."""
        missing: dict[str, int] = {}
        for (directory, _), results in self._results.items():
            found = self.loading.found(Path(directory))
            if isinstance(found, Experiment):
                missing[directory] = max(missing.get(directory, 0), len(found.cases) - len(results))
        return sum(missing.values())

    def incomplete_runs(self) -> tuple[list[str], int]:
        """The planned runs this session has no result for some case of (their template ids), and how many runs
        were planned."""
        planned = list(self._planned())
        return [plan.template_id for experiment, plan in planned
                if len(self._results.get((str(experiment.directory), plan.template_id), ())) < len(experiment.cases)
                ], len(planned)

    def _case_index(self, experiment_dir: str) -> CaseIndex | None:
        """The case positions of a loaded experiment (None: this process has not loaded it; its results are kept
        whole)."""
        if experiment_dir not in self._indexes:
            found = self.loading.found(Path(experiment_dir))
            self._indexes[experiment_dir] = (CaseIndex([case.case_id for case in found.cases])
                                             if isinstance(found, Experiment) else None)
        return self._indexes[experiment_dir]

    # -- writing (engine/writer.py) ----------------------------------------------------------------
    def finish(self, on_record: RecordHook | None = None, on_report: ReportHook | None = None) -> SessionResult:
        """Stop the call pool, then write every run record and the session report (see ``RecordWriter``)."""
        self.answers.shutdown()
        if self.part is not None:
            self.part = msgspec.structs.replace(self.part, split_id=self._split_id())
            ran = sum(len(cases) for cases in self._results.values())
            self.notes.append(f"llmgate: this session is part {self.part.split_id} of a split run "
                              f"({self.part.selection}; {ran} case result(s)); its exit status reflects only the cases "
                              f"it ran; {WAITS_FOR_MERGE}")
            if self.compare_to is not None:
                self.notes.append("llmgate: a part of a split run is not compared with stored runs (it holds some "
                                  "cases of each run): compare the merged run, llmgate diff MAIN MERGED")
        self.notes += [note for experiment in self.experiments if self.plans(experiment)
                       for note in _repeats_note(experiment)]
        self.writer.part = self.part
        return self.writer.finish(self._to_write(), on_record, on_report)

    def _split_id(self) -> str:
        """The part's split id: as asked for, else ``cases-`` and a digest of every (experiment, template, case) run."""
        if self.part is not None and self.part.split_id:
            return self.part.split_id
        ran = sorted(f"{experiment}\0{template}\0{case_id}" for (experiment, template), cases in self._results.items()
                     for case_id in cases)
        return "cases-" + hashlib.sha256("\n".join(ran).encode("utf-8")).hexdigest()[:12]

    def _to_write(self) -> Iterator[ExperimentToWrite]:
        """Each collected experiment that loaded and has planned runs, with what its runs that ran need to be
        written (made one experiment at a time, as the writer gets to it)."""
        for directory in sorted(self.collected):
            try:
                experiment = self.loading.load(directory)
            except LlmgateError:
                continue
            plans = self.plans(experiment)
            if not plans:
                continue
            ran = []
            for plan in plans:
                results = self._results.get((str(experiment.directory), plan.template_id))
                if results:
                    candidate = experiment.candidates[plan.template_id]
                    try:
                        params = self.providing.factory(candidate).params(candidate, self.providing.context(experiment))
                        ran.append(RunToWrite(plan=plan, results=results, params=params,
                                              pricer=self.pricing.pricer(candidate, results)))
                    except LlmgateError as exc:  # e.g. its recordings moved out of the experiment: not recorded
                        ran.append(RunToWrite(plan=plan, results=results, unrecordable=exc))
            yield ExperimentToWrite(experiment=experiment, frozen=self.loading.frozen(experiment), plans=plans,
                                    ran=tuple(ran))

    def header_lines(self) -> list[str]:
        lines = list(self.loading.notices)
        for experiment in self.experiments:
            prints = ", ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
            lines.append(f"llmgate: {experiment.name}: {prints}")
        if self.compare_to is not None and self.writer.stored:
            lines.append(f"llmgate: comparing with {len(self.writer.stored)} stored run(s) of {display_path(self.compare_to)}")
        if not self.selection.empty:
            lines.append(
                "llmgate: candidates: " + (", ".join(self.selection.candidates) or "none")
                + "; baselines: " + (", ".join(self.selection.baselines) or "none")
            )
        lines.extend(self.providing.deterministic_note(self._planned()))
        return lines


def _repeats_note(experiment: Experiment) -> list[str]:
    """The line naming the cases that repeat another case's input and evidence (none: no line)."""
    repeats = experiment.repeated_inputs()
    if not repeats:
        return []

    def named(case: Case) -> str:
        return f"{case.suite}/{case.case_id}"

    shown = "; ".join(f"{' and '.join(map(named, copies[:SHOWN]))} repeat{'s' if len(copies) == 1 else ''} "
                      f"{named(case)}" for case, copies in repeats[:SHOWN])
    return [f"llmgate: {experiment.name}: {sum(len(copies) for _, copies in repeats)} case(s) repeat the input and "
            f"evidence of another case ({shown}): each counts as a case of evidence, and the confidence bounds assume "
            "independent cases"]
