"""The gate's pytest side, loaded by ``_plugin`` only when a session gates or collects an experiment.

``Wiring`` builds the session's ``GateSession`` and registers what listens for results and exports runs; the
light hooks in ``_plugin`` hand each step to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.model.defaults import DEFAULT_CONCURRENCY, DEFAULT_DIR
from pytest_llmgate.model.errors import LlmgateError, RecordError
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.reports.markdown import markdown_summary
from pytest_llmgate.plugin.nodes import GATE_KEY, RESULT_ATTRIBUTE, CaseItem, ExperimentDir, OrphanSuite
from pytest_llmgate.plugin.options import value
from pytest_llmgate.engine.session import GateSession, PartSpec, Selection, selection_hint
from pytest_llmgate.records.outcome import SessionResult
from pytest_llmgate.io.store import write_replacing
from pytest_llmgate.reports.terminal import summary_lines
from pytest_llmgate.model.vocab import RecordMode, ShowMode
from pytest_llmgate.providers import ProviderFactory, ProviderOptions, builtin_factory

COLLECTED_KEY = "llmgate_collected"
DESELECTED_KEY = "llmgate_deselected"
_EXPORTERS = ("llmgate-mlflow", "llmgate-wandb")
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
        config.pluginmanager.register(BuiltinProviders(), "llmgate-providers")
        self.gate = gate = GateSession(
            Selection(candidates=value(config, "candidates"), baselines=value(config, "baselines")),
            value(config, "out") or config.rootpath / DEFAULT_DIR, freeze=value(config, "freeze"),
            options=ProviderOptions(record_mode=RecordMode(value(config, "record") or RecordMode.NONE.value),
                                    trials=value(config, "trials")),
            concurrency=value(config, "concurrency") or DEFAULT_CONCURRENCY,
            make_provider=lambda name: config.hook.pytest_llmgate_make_provider(config=config, name=name),
            show=ShowMode(value(config, "show") or ShowMode.FAILURES.value),
            compare_to=value(config, "compare_to"),
        )
        config.stash[GATE_KEY] = gate
        replies = value(config, "save_replies")
        if replies:
            from pytest_llmgate.plugin.replies import ReplySaver  # only when asked for

            config.pluginmanager.register(ReplySaver(replies, gate.out_dir, config), "llmgate-replies")
        config.pluginmanager.register(_ResultListener(gate, self.controller), "llmgate-results")
        if value(config, "mlflow") and self.controller:
            from pytest_llmgate.exporters.mlflow import MlflowExporter  # MLflow is imported at the first record

            config.pluginmanager.register(MlflowExporter.for_records(gate.out_dir, value(config, "mlflow_uri")),
                                          "llmgate-mlflow")
        if value(config, "wandb") and self.controller:
            from pytest_llmgate.exporters.wandb import WandbExporter  # W&B itself is imported at the first record

            config.pluginmanager.register(WandbExporter.for_records(gate.out_dir, value(config, "wandb_project")),
                                          "llmgate-wandb")

    def start(self, found: list[Path]) -> None:
        """Load the experiments found, check the selection, freeze; mark the report in progress."""
        if self.started:
            return
        self.started = True
        gate = self.gate
        try:
            gate.start(found, controller=self.controller)
            if not self._distributing():
                gate.warm()  # the SDK's import overlaps collection, in the process that makes the calls
            if self.controller and not gate.selection.empty and not self.config.option.collectonly:
                gate.mark_in_progress()
        except LlmgateError as exc:
            raise pytest.UsageError(exc.message()) from None

    def _distributing(self) -> bool:
        """Whether this is an xdist controller: its workers make the calls, not it."""
        option = self.config.option
        return self.controller and bool(getattr(option, "numprocesses", None)) and getattr(option, "dist", "no") != "no"

    def header_lines(self) -> list[str]:
        return self.gate.header_lines()

    def experiment_dir(self, path: Path, parent: pytest.Collector) -> pytest.Collector:
        return ExperimentDir.from_parent(parent, path=path)

    def suite_file(self, path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """A suite file that no collected manifest lists is a collection error."""
        if self.gate.claims(path):
            return None
        return OrphanSuite.from_parent(parent, path=path)

    def finish(self, session: pytest.Session, exitstatus: int) -> None:
        config, gate = self.config, self.gate
        if not self.controller:
            config.workeroutput[COLLECTED_KEY] = sorted(str(d) for d in gate.collected)  # type: ignore[attr-defined]
            config.workeroutput[DESELECTED_KEY] = gate.deselected  # type: ignore[attr-defined]
            saver = config.pluginmanager.get_plugin("llmgate-replies")
            if saver is not None:
                saver.write_part()
            return
        listener = config.pluginmanager.get_plugin("llmgate-results")
        if (listener is not None and listener.collection_errors and not config.option.continue_on_collection_errors
                and exitstatus not in _NO_RECORDS):
            # Under xdist the workers run the items that did collect and the session ends with 1; serially pytest
            # stops with 2 (INTERRUPTED) and no record is written. The same input gives the same status either way.
            session.exitstatus = exitstatus = pytest.ExitCode.INTERRUPTED
        if config.option.collectonly or exitstatus in _NO_RECORDS:
            return
        gate.part = part_spec(config, gate.deselected)
        listened = bool(config.hook.pytest_llmgate_run_record.get_hookimpls())
        result = gate.finish(
            on_record=(lambda record, files: config.hook.pytest_llmgate_run_record(config=config, record=record,
                                                                                   files=files))
            if listened else None,
            on_report=lambda report, path: config.hook.pytest_llmgate_session_report(config=config, report=report,
                                                                                    path=path),
        )
        self.result = result = result.with_errors(_write_summaries(config, result))
        saver = config.pluginmanager.get_plugin("llmgate-replies")
        if saver is not None:
            self.result = result = result.with_errors(saver.write(result))
        if (result.errors or result.over_budget) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal_summary(self, terminalreporter: Any) -> None:
        gate, result = self.gate, self.result
        hint = selection_hint(gate.experiments) if gate.selection.empty else None
        if hint:
            terminalreporter.write_line(hint)
        if result is None or not (result.outcomes or result.errors):
            return
        terminalreporter.write_sep("=", "llmgate")
        for line in summary_lines(result):
            terminalreporter.write_line(line)
        saver = self.config.pluginmanager.get_plugin("llmgate-replies")
        if saver is not None:
            terminalreporter.write_line(saver.summary_line())
        for name in _EXPORTERS:  # where an exporter put the runs (its own lines, when it has any)
            exporter = self.config.pluginmanager.get_plugin(name)
            for line in getattr(exporter, "summary_lines", lambda: [])():
                terminalreporter.write_line(line)


class _ResultListener:
    """Receives every test report (on the xdist controller: from every worker) and each worker's end."""

    def __init__(self, gate: GateSession, controller: bool) -> None:
        self.gate = gate
        self.controller = controller
        self.collection_errors = 0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Counted on the controller (xdist forwards its workers' reports): see ``Wiring.finish``."""
        if report.failed:
            self.collection_errors += 1

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Case items deselected by a splitter, -k or --deselect: the session runs a part of a split run."""
        self.gate.deselected += sum(isinstance(item, CaseItem) for item in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The controller (or the single process) takes each result off its report: pytest keeps every report to
        the end of the session, the gate keeps the result (compactly). An xdist worker leaves it for the wire."""
        if self.controller:
            payload = report.__dict__.pop(RESULT_ATTRIBUTE, None)
            if payload is not None:
                self.gate.add_result(CaseResult.from_payload(payload))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; merge the experiments it collected."""
        collected = getattr(node, "workeroutput", {}).get(COLLECTED_KEY, [])
        self.gate.collected.update(Path(directory) for directory in collected)
        # every worker collects and deselects the same items: one worker's count is the session's
        self.gate.deselected = max(self.gate.deselected, getattr(node, "workeroutput", {}).get(DESELECTED_KEY, 0))


def part_spec(config: pytest.Config, deselected: int) -> PartSpec | None:
    """The session's part of a split run: ``--llmgate-part=ID``, or case items deselected (by pytest-split,
    pytest-shard, -k, --deselect, --lf); None for a session that ran everything it collected."""
    split_id = value(config, "part")
    option = config.option
    splits, group = getattr(option, "splits", None), getattr(option, "group", None)
    shards, shard = getattr(option, "num_shards", None), getattr(option, "shard_id", None)
    if not split_id and not deselected and not (splits and group) and not (shards and shards > 1):
        return None  # pytest-shard drops items without deselecting them: its options say it
    split_job = bool(split_id or (splits and group) or (shards and shards > 1))
    if splits and group:
        how, split_id = f"pytest-split group {group} of {splits}", split_id or f"split-{group}-of-{splits}"
    elif shards and shards > 1:
        how, split_id = f"pytest-shard shard {shard} of {shards}", split_id or f"shard-{shard}-of-{shards}"
    else:
        narrowed = [f"-k {option.keyword!r}"] if getattr(option, "keyword", "") else []
        narrowed += [f"-m {option.markexpr!r}"] if getattr(option, "markexpr", "") else []
        narrowed += [f"--deselect {len(option.deselect)} id(s)"] if getattr(option, "deselect", None) else []
        how = " ".join(narrowed) or ("--llmgate-part" if not deselected else "deselected case items")
    if deselected:
        how += f"; {deselected} case item(s) deselected"
    return PartSpec(split_id=split_id or None, selection=how, only_evaluated=split_job)


def _write_summaries(config: pytest.Config, result: SessionResult) -> list[LlmgateError]:
    """The Markdown summary, to ``--llmgate-markdown`` and appended to ``$GITHUB_STEP_SUMMARY`` when set; the
    HTML report to ``--llmgate-html``."""
    if not result.outcomes:
        return []
    text = markdown_summary(result)
    errors: list[LlmgateError] = []
    target = value(config, "markdown")
    if target:
        try:
            write_replacing(target, text.encode("utf-8"))
        except LlmgateError as exc:
            errors.append(exc)
    html_target = value(config, "html")
    if html_target:
        from pytest_llmgate.reports.html import html_report  # only when asked for

        try:
            write_replacing(html_target, html_report(result, config.stash[GATE_KEY].out_dir).encode("utf-8"))
        except LlmgateError as exc:
            errors.append(exc)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            errors.append(RecordError(Path(step_summary), None, f"cannot append the summary: {exc.strerror or exc}"))
    return errors
