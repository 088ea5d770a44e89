"""The gate's pytest side, loaded by ``plugin.entry`` only when a session gates or collects an experiment.

``Wiring`` builds the session's ``GateSession`` and registers what listens for results and exports runs; the
light hooks in ``plugin.entry`` hand each step to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import pytest

from pytest_llmgate.engine.plan import PartSpec, Selection, selection_hint
from pytest_llmgate.engine.session import GateSession
from pytest_llmgate.engine.writer import mark_in_progress
from pytest_llmgate.io.store import timestamp, utc_now, write_replacing
from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY, DEFAULT_DIR
from pytest_llmgate.model.errors import INCOMPLETE_EVALUATION, LlmgateError, RecordError, SuiteError, display_path
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.vocab import Outcome, RecordMode, Role, ShowMode
from pytest_llmgate.plugin.nodes import (
    GATE_KEY,
    RESULT_ATTRIBUTE,
    CaseItem,
    RunItem,
    RunItemInfo,
    experiment_nodes,
)
from pytest_llmgate.plugin.options import value
from pytest_llmgate.providers import ProviderFactory, builtin_factory
from pytest_llmgate.records.outcome import SessionResult, run_gate_failure
from pytest_llmgate.reports.markdown import in_progress_markdown, markdown_summary, summary_target_problem
from pytest_llmgate.reports.terminal import summary_lines

if TYPE_CHECKING:
    from pytest_llmgate.exporters.export import Exporter
    from pytest_llmgate.plugin.replies import ReplySaver

COLLECTED_KEY = "llmgate_collected"
DESELECTED_KEY = "llmgate_deselected"
RUN_DESELECTED_KEY = "llmgate_deselected_runs"
RUN_ITEMS_KEY = "llmgate_run_items"
_NO_RECORDS = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)


class BuiltinProviders:
    """The built-in providers, found through the same hook as any plugin's (tried last: a plugin may override one)."""

    @pytest.hookimpl(trylast=True)
    def pytest_llmgate_make_provider(self, config: pytest.Config, name: str) -> ProviderFactory | None:
        return builtin_factory(name)


class Wiring:
    """One session's gate on the pytest side: the ``GateSession``, its listeners and exporters."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.controller = not hasattr(config, "workerinput")
        self.started = False
        self.result: SessionResult | None = None
        self.summary_files: list[str] = []  # the Markdown summary and HTML report written, as said at the end
        self.exporters: list[Exporter] = []  # the exporters asked for (registered as plugins of the record hooks)
        config.pluginmanager.register(BuiltinProviders(), "llmgate-providers")
        self.gate = gate = GateSession(
            Selection(candidates=value(config, "candidates"), baselines=value(config, "baselines")),
            value(config, "out") or config.rootpath / DEFAULT_DIR, freeze=value(config, "freeze"),
            record_mode=RecordMode(value(config, "record") or RecordMode.NONE.value), trials=value(config, "trials"),
            concurrency=value(config, "concurrency") or DEFAULT_CONCURRENCY,
            processes=int(getattr(config, "workerinput", {}).get("workercount", 1)),
            make_provider=lambda name: config.hook.pytest_llmgate_make_provider(config=config, name=name),
            show=ShowMode(value(config, "show") or ShowMode.FAILURES.value),
            compare_to=value(config, "compare_to"),
        )
        config.stash[GATE_KEY] = gate
        if self.controller and not config.option.collectonly:  # --collect-only writes nothing
            refuse_summary_targets(config, gate.out_dir)
        # each is None when registering it was blocked (``-p no:llmgate-replies``)
        self.saver: ReplySaver | None = None
        replies = value(config, "save_replies")
        if replies:
            from pytest_llmgate.plugin.replies import ReplySaver  # only when asked for

            saver = ReplySaver(replies, gate.out_dir, config)
            self.saver = saver if config.pluginmanager.register(saver, "llmgate-replies") else None
        listener = _ResultListener(gate, self.controller)
        self.listener = listener if config.pluginmanager.register(listener, "llmgate-results") else None
        if (value(config, "mlflow") or value(config, "wandb")) and self.controller:
            from pytest_llmgate.exporters.export import exporters_for  # only when asked for

            for name, exporter in exporters_for(
                gate.out_dir, mlflow=value(config, "mlflow"), mlflow_uri=value(config, "mlflow_uri"),
                wandb=value(config, "wandb"), wandb_project=value(config, "wandb_project"),
            ).items():
                config.pluginmanager.register(exporter, name)
                self.exporters.append(exporter)

    def start(self, found: list[Path]) -> None:
        """Load the experiments found, check the selection, freeze; mark the report in progress."""
        if self.started:
            return
        self.started = True
        gate = self.gate
        try:
            if self.controller and not self.config.option.collectonly:
                try:
                    gate.read_stored()  # main's runs, before this session's report is marked: it may be the one read
                finally:  # then, before any other check can stop the session (an unknown id, no recordings, a lock)
                    _mark_in_progress(self.config, gate)
            gate.start(found, controller=self.controller)
            if not self._distributing():
                gate.warm()  # the SDK's import overlaps collection, in the process that makes the calls
            if self.controller and not self.config.option.collectonly:
                gate.check_ready()  # no key for a live call, nothing to replay: one usage error, before any case
        except LlmgateError as exc:
            raise pytest.UsageError(exc.message()) from None

    def _distributing(self) -> bool:
        """Whether this is an xdist controller: its workers make the calls, not it."""
        option = self.config.option
        return self.controller and bool(getattr(option, "numprocesses", None)) and getattr(option, "dist", "no") != "no"

    def experiment_nodes(self, directory: pytest.Dir) -> tuple[list[pytest.Item | pytest.Collector], frozenset[Path]]:
        return experiment_nodes(directory)

    def check_listed(self, suite: pytest.File) -> None:
        """A suite file that no loaded manifest lists is a collection error (one that is listed is collected by
        its experiment)."""
        if not self.gate.loading.claims(suite.path):
            error = SuiteError(suite.path, None, "is not listed in the suites of any llmgate.yaml; a suite belongs "
                               "to the manifest that lists it")
            raise suite.CollectError(error.message())

    def finish(self, session: pytest.Session, exitstatus: int) -> None:
        config, gate, listener = self.config, self.gate, self.listener
        run_items = [item.info() for item in session.items if isinstance(item, RunItem)]
        if not self.controller:
            config.workeroutput[COLLECTED_KEY] = sorted(str(d) for d in gate.collected)  # type: ignore[attr-defined]
            config.workeroutput[DESELECTED_KEY] = gate.deselected  # type: ignore[attr-defined]
            config.workeroutput[RUN_ITEMS_KEY] = msgspec.to_builtins(run_items)  # type: ignore[attr-defined]
            if listener is not None:
                config.workeroutput[RUN_DESELECTED_KEY] = [  # type: ignore[attr-defined]
                    list(run) for run in sorted(listener.deselected_runs)]
            if self.saver is not None:
                self.saver.write_part()
            return
        if listener is not None:
            run_items += [info for info in listener.run_items.values() if info not in run_items]
        # xdist ends a -x/--maxfail stop as INTERRUPTED (pytest's line: "stopping after N failures"), where a serial
        # session ends with 1; either way the records are written, not run cases and all. A Ctrl-C writes none.
        collection_errors = listener is not None and listener.collection_errors
        stopped = exitstatus == pytest.ExitCode.INTERRUPTED and bool(session.shouldfail) and not collection_errors
        if collection_errors and not config.option.continue_on_collection_errors and exitstatus not in _NO_RECORDS:
            # Under xdist the workers run the items that did collect and the session ends with 1; serially pytest
            # stops with 2 (INTERRUPTED) and no record is written. The same input gives the same status either way.
            session.exitstatus = exitstatus = pytest.ExitCode.INTERRUPTED
        if config.option.collectonly or (exitstatus in _NO_RECORDS and not stopped):
            return
        gate.part = part_spec(config, gate.deselected)
        partial_line = (partial_note(config, gate.deselected, gate.not_run(), gate.incomplete_runs())
                        if gate.part is None else None)
        if partial_line is not None:
            gate.notes.append(partial_line)
        elif gate.part is None and listener is not None:  # pytest passes a deselected test: say what that leaves
            # out (a partial session's line says already that its runs are never promoted)
            gate.notes += [f"llmgate: the run-level gates of {template_id} ({display_path(Path(directory))}) were "
                           "deselected: its run's status does not count in this session's exit status"
                           for directory, template_id in sorted(listener.deselected_runs)]
        hook = config.hook
        result = gate.finish(
            on_record=(lambda record, files: hook.pytest_llmgate_run_record(config=config, record=record, files=files))
            if hook.pytest_llmgate_run_record.get_hookimpls() else None,
            on_report=(lambda report, path: hook.pytest_llmgate_session_report(config=config, report=report, path=path))
            if hook.pytest_llmgate_session_report.get_hookimpls() else None,
        )
        # each built-in exporter keeps its own failure (never raised into the hook call, where pluggy would skip
        # the other exporters): one error line each
        result = result.with_errors([failure for exporter in self.exporters for failure in exporter.failures])
        errors, self.summary_files = _write_summaries(config, result)
        self.result = result = result.with_errors(errors)
        if self.saver is not None:
            self.result = result = result.with_errors(self.saver.write(result))
        if gate.part is None and listener is not None:
            run_items += _uncollected_run_items(config, result, run_items, listener.deselected_runs)
        failed = self._judge_runs(run_items, result)
        # pytest worked out its exit status before these reports: a failed run item is a failed test. A record,
        # report or summary that could not be written fails the session too (its ERROR line says which).
        if (failed or result.errors) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _judge_runs(self, run_items: list[RunItemInfo], result: SessionResult) -> bool:
        """Report each gating candidate's run item through the ordinary report hooks (terminal counts, short
        summary, JUnit, --lf): failed with the run-level gate it broke, passed, or, in a job of a split run (a
        splitter's options or ``--llmgate-part``), skipped: its run is judged by ``llmgate merge``. A partial
        session (narrowed by -k, --deselect or --lf) that kept the run item judges it as any other: its run is
        incomplete. Whether one failed."""
        hook, gate = self.config.hook, self.gate
        failed_runs = self.listener.failed_runs if self.listener is not None else set()
        narrowed_by_lf = bool(getattr(self.config.option, "lf", False)) and bool(gate.deselected or gate.not_run())
        failed = False
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and run_items:
            if self._distributing():
                reporter.write("\n")  # xdist's line of results ends with its progress: the run items go below
            reporter.currentfspath = None  # pytest wrote the run loop's progress already: not once more
        outcome: Literal["passed", "failed", "skipped"]
        for info in run_items:
            found = result.outcome_of(info.experiment_dir)
            properties = [("llmgate_template_id", info.template_id)] + (
                [("llmgate_evaluation_sha", found.experiment.short_fingerprints["evaluation"])] if found else [])
            if gate.part is not None:
                longrepr: Any = (info.location[0], None, f"Skipped: {info.template_id}: the run-level gates of a job "
                                 f"of a split run ({gate.part.selection}) are judged by `llmgate merge`")
                outcome = "skipped"
            else:
                failure = run_gate_failure(found, info.template_id, (info.experiment_dir, info.template_id) in failed_runs)
                if isinstance(failure, INCOMPLETE_EVALUATION) and narrowed_by_lf:
                    failure = INCOMPLETE_EVALUATION(
                        f"{failure}; --lf kept this run item, which failed last time, with only the cases that "
                        "failed, and a run is judged whole: run once without --lf (--ff runs every case, the "
                        "failures first; docs/loop.md)")
                longrepr, outcome = (None, "passed") if failure is None else (_failure_repr(failure), "failed")
            failed = failed or outcome == "failed"
            hook.pytest_runtest_logstart(nodeid=info.nodeid, location=info.location)
            phases: tuple[tuple[Literal["setup", "call", "teardown"], Literal["passed", "failed", "skipped"], Any],
                          ...] = (("setup", "passed", None), ("call", outcome, longrepr), ("teardown", "passed", None))
            for when, this, this_repr in phases:
                hook.pytest_runtest_logreport(report=pytest.TestReport(
                    nodeid=info.nodeid, location=info.location, keywords={info.template_id: 1}, outcome=this,
                    longrepr=this_repr, when=when, user_properties=properties))
            hook.pytest_runtest_logfinish(nodeid=info.nodeid, location=info.location)
        fill = getattr(reporter, "_write_progress_information_filling_space", None)
        if run_items and callable(fill) and getattr(reporter, "_show_progress_info", False):
            fill()  # the final [100%] that pytest writes after its run loop, which these items came after
        return failed

    def terminal_summary(self, terminalreporter: Any) -> None:
        gate, result = self.gate, self.result
        hint = selection_hint(gate.experiments) if gate.selection.empty else None
        if hint:
            terminalreporter.write_line(hint)
        if result is None or not (result.outcomes or result.errors):
            return
        terminalreporter.write_sep("=", "llmgate")
        saved = self.saver.summary_lines() if self.saver is not None else []
        # where an exporter put the runs (its own lines, when it has any)
        exported = [line for exporter in self.exporters for line in exporter.summary_lines()]
        for line in [*summary_lines(result), *self.summary_files, *saved, *exported]:
            terminalreporter.write_line(line)


_GUARDRAIL_OUTCOMES = (Outcome.UNSAFE_CLAIM_SERVED, Outcome.UNNECESSARY_ABSTENTION)


class _ResultListener:
    """Receives every test report (on the xdist controller: from every worker) and each worker's end."""

    def __init__(self, gate: GateSession, controller: bool) -> None:
        self.gate = gate
        self.controller = controller
        self.collection_errors = 0
        self.run_items: dict[str, RunItemInfo] = {}  # from the xdist workers, by node id
        self.failed_runs: set[tuple[str, str]] = set()  # (experiment dir, template id) with a case item failed
        self._runs_of: dict[str, tuple[str, str]] = {}  # a case item's node id -> its run (experiment dir, template)
        self.deselected_runs: set[tuple[str, str]] = set()  # run items deselected: (experiment dir, template id)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Counted on the controller (xdist forwards its workers' reports): see ``Wiring.finish``."""
        if report.failed:
            self.collection_errors += 1

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Case items deselected by a splitter, -k or --deselect: the session runs a part of a split run. A run
        item deselected is noted: its run is not judged (``Wiring.finish``)."""
        self.gate.deselected += sum(isinstance(item, CaseItem) for item in items)
        self.deselected_runs.update((item.experiment_dir, item.template_id) for item in items
                                    if isinstance(item, RunItem))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller (or the single process) takes each result off its report: pytest keeps every report to
        the end of the session, the gate keeps the result (compactly). An xdist worker leaves it for the wire."""
        if self.controller:
            payload = report.__dict__.pop(RESULT_ATTRIBUTE, None)
            if payload is not None:
                result = CaseResult.from_payload(payload)
                self.gate.add_result(result)
                if result.outcome in _GUARDRAIL_OUTCOMES and result.role is Role.CANDIDATE:  # kept for the few
                    self._runs_of[report.nodeid] = (result.experiment_dir, result.template_id)
            if report.failed and report.nodeid in self._runs_of:  # any attempt's failure (a rerun's last one too)
                self.failed_runs.add(self._runs_of[report.nodeid])

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; merge the experiments it collected."""
        output = getattr(node, "workeroutput", {})
        for info in msgspec.convert(output.get(RUN_ITEMS_KEY, []), list[RunItemInfo]):
            self.run_items[info.nodeid] = info
        self.gate.collected.update(Path(directory) for directory in output.get(COLLECTED_KEY, []))
        # every worker collects and deselects the same items: one worker's count is the session's
        self.gate.deselected = max(self.gate.deselected, output.get(DESELECTED_KEY, 0))
        self.deselected_runs.update((directory, template_id) for directory, template_id
                                    in output.get(RUN_DESELECTED_KEY, []))


def _uncollected_run_items(config: pytest.Config, result: SessionResult, run_items: list[RunItemInfo],
                           deselected: set[tuple[str, str]]) -> list[RunItemInfo]:
    """The run items of gating candidates whose every case ran in this session while their own item was never
    collected (the session was given suite files, not the experiment): judged all the same, so that a session
    does not exit 0 on a run its gates reject. A run item deselected (-k, --deselect) stays unjudged."""
    listed = {(info.experiment_dir, info.template_id) for info in run_items}
    found = []
    for outcome in result.outcomes:
        manifest = outcome.experiment.manifest_path
        nodeid = Path(os.path.relpath(manifest, config.rootpath)).as_posix()
        for record in outcome.records:
            key = (str(outcome.experiment.directory), record.template_id)
            if record.role is Role.CANDIDATE and record.complete and key not in listed and key not in deselected:
                found.append(RunItemInfo(f"{nodeid}::{record.template_id}",
                                         (nodeid, None, f"{record.template_id} [run-level gates]"), *key))
    return found


def _failure_repr(failure: BaseException) -> Any:
    """A run item's failure as pytest shows a failed assertion without its traceback: ``NAME: reason`` in the
    short summary, the failure section and JUnit's message."""
    try:
        raise failure
    except BaseException:
        shown = pytest.ExceptionInfo.from_current().getrepr(style="value")
    entries = getattr(getattr(shown, "reprtraceback", None), "reprentries", None)
    if entries:  # the failure section says the status too, as the short summary does
        entries[-1].lines = [f"{type(failure).__name__}: {failure}"]
    return shown


def part_spec(config: pytest.Config, deselected: int) -> PartSpec | None:
    """The session's part of a split run: ``--llmgate-part=ID`` or a splitter's options (pytest-split,
    pytest-shard); None for any other session, one narrowed by -k, --deselect or --lf included (it is partial:
    ``partial_note``)."""
    split_id = value(config, "part")
    option = config.option
    splits, group = getattr(option, "splits", None), getattr(option, "group", None)
    shards, shard = getattr(option, "num_shards", None), getattr(option, "shard_id", None)
    if splits and group:
        how, split_id = f"pytest-split group {group} of {splits}", split_id or f"split-{group}-of-{splits}"
    elif shards and shards > 1:  # pytest-shard drops items without deselecting them: its options say it
        how, split_id = f"pytest-shard shard {shard} of {shards}", split_id or f"shard-{shard}-of-{shards}"
    elif split_id:
        how = " ".join(_narrowed(config)) or "--llmgate-part"
    else:
        return None
    if deselected:
        how += f"; {deselected} case item(s) deselected"
    return PartSpec(split_id=split_id or None, selection=how)


def _narrowed(config: pytest.Config) -> list[str]:
    option = config.option
    narrowed = [f"-k {option.keyword!r}"] if getattr(option, "keyword", "") else []
    narrowed += [f"-m {option.markexpr!r}"] if getattr(option, "markexpr", "") else []
    narrowed += [f"--deselect {len(option.deselect)} id(s)"] if getattr(option, "deselect", None) else []
    narrowed += ["--lf"] if getattr(option, "lf", False) else []
    return narrowed


def partial_note(config: pytest.Config, deselected: int, not_run: int, incomplete: tuple[list[str], int]
                 ) -> str | None:
    """What a session narrowed by -k, --deselect, --lf or by the paths it was given (not a job of a split run)
    says once: it is partial. (--lf drops the passed cases of a file at collection, without deselecting them, and
    a suite file given alone leaves the other suites' cases uncollected: both are ``not_run``. An --lf session
    that reran every case is whole: pytest's stored failures, this session's own included, do not say.)
    ``incomplete``: the runs that miss a case and how many runs there are; when some ran every case (only a
    baseline's cases deselected, say), the line names those that did not."""
    if not deselected and not not_run:
        return None
    how = " ".join(_narrowed(config)) or (f"{not_run} case(s) not run" if not_run and not deselected
                                          else "deselected case items")
    if deselected:
        how += f"; {deselected} case item(s) deselected"
    short, planned = incomplete
    runs = f"the run(s) of {', '.join(short)} (the others ran every case)" if len(short) < planned else "its runs"
    return (f"llmgate: partial session ({how}): {runs} list the cases it did not run as NOT_RUN, are incomplete "
            "and are never promoted; run every case for a decision (llmgate runs lists partial runs with --all)")


def refuse_summary_targets(config: pytest.Config, out_dir: Path) -> None:
    """A usage error, before the session writes anything there, when ``--llmgate-markdown`` or ``--llmgate-html``
    names a file that is not theirs to replace (``summary_target_problem``)."""
    problem = summary_target_problem(_summary_targets(config), out_dir, "--llmgate-")
    if problem is not None:
        raise pytest.UsageError(problem)


def _summary_targets(config: pytest.Config) -> dict[str, Path]:
    """``--llmgate-markdown`` and ``--llmgate-html``'s files, by option, as given."""
    return {option: Path(target) for option in ("markdown", "html") if (target := value(config, option))}


def _mark_in_progress(config: pytest.Config, gate: GateSession) -> None:
    """Before anything can stop the session, replace the last session's ``report.json`` (when the session gates a
    candidate or baseline), Markdown summary and HTML report with ones that hold no verdict: after a collection
    error, a usage error or a kill, a CI step never reads (or posts) a verdict this session did not reach. Each is
    tried, whichever fails; the first failure is raised."""
    failures = _replace_verdicts(config, gate.out_dir, gate.started, gating=not gate.selection.empty)
    if failures:
        raise failures[0]


def mark_no_verdict(config: pytest.Config) -> None:
    """After a usage error found before the gate was built (a bad option value, a target refused), as
    ``_mark_in_progress`` would have done: the usage error is what the session says, so a file that cannot be
    replaced is left as it is, and a summary target that is not the gate's (``summary_target_problem``) is left
    alone."""
    out_dir = value(config, "out") or config.rootpath / DEFAULT_DIR
    _replace_verdicts(config, out_dir, utc_now(), gating=bool(value(config, "candidates") or value(config, "baselines")),
                      only_ours=True)


def _replace_verdicts(config: pytest.Config, out_dir: Path, started: datetime, *, gating: bool,
                      only_ours: bool = False) -> list[LlmgateError]:
    """The no-verdict ``report.json`` (when ``gating``), Markdown summary and HTML report, each tried; what failed."""
    shown = timestamp(started)
    writes: list[Callable[[], None]] = []
    if gating:
        writes.append(lambda: mark_in_progress(out_dir, started))
    targets = _summary_targets(config)
    if only_ours:  # neither when both name one file; else each unless refused on its own
        distinct = len({path.resolve() for path in targets.values()}) == len(targets)
        targets = {option: path for option, path in targets.items()
                   if distinct and summary_target_problem({option: path}, out_dir, "--llmgate-") is None}
    if "markdown" in targets:
        writes.append(lambda: write_replacing(targets["markdown"], in_progress_markdown(shown).encode("utf-8")))
    if "html" in targets:
        from pytest_llmgate.reports.html import in_progress_html  # only when asked for

        writes.append(lambda: write_replacing(targets["html"], in_progress_html(shown).encode("utf-8")))
    failures: list[LlmgateError] = []
    for write in writes:
        try:
            write()
        except LlmgateError as exc:
            failures.append(exc)
    return failures


def _write_summaries(config: pytest.Config, result: SessionResult) -> tuple[list[LlmgateError], list[str]]:
    """The Markdown summary, to ``--llmgate-markdown`` and appended to ``$GITHUB_STEP_SUMMARY`` when set; the
    HTML report to ``--llmgate-html``. What could not be written, and a line for each file that was."""
    if not result.outcomes:
        return [], []
    text = markdown_summary(result)
    errors: list[LlmgateError] = []
    written: list[str] = []
    target = value(config, "markdown")
    if target:
        try:
            write_replacing(target, text.encode("utf-8"))
            written.append(f"markdown: {display_path(Path(target))}")
        except LlmgateError as exc:
            errors.append(exc)
    html_target = value(config, "html")
    if html_target:
        from pytest_llmgate.reports.html import html_report  # only when asked for

        try:
            write_replacing(html_target, html_report(result, config.stash[GATE_KEY].out_dir).encode("utf-8"))
            written.append(f"html: {display_path(Path(html_target))} (open it in a browser)")
        except LlmgateError as exc:
            errors.append(exc)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            errors.append(RecordError(Path(step_summary), None, f"cannot append the summary: {exc.strerror or exc}"))
    return errors, written
