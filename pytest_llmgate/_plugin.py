"""The pytest plugin ``llmgate``: thin hooks that hand off to the session's ``GateSession``."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from . import _hookspecs
from ._errors import LlmgateError, RecordError
from ._markdown import markdown_summary
from ._store import DEFAULT_DIR, write_replacing
from ._evaluate import CaseResult
from ._experiment import MANIFEST_NAME, is_suite_file
from ._nodes import GATE_KEY, RESULT_ATTRIBUTE, CaseItem, ExperimentDir, OrphanSuite, gate_of
from ._options import add_options, value
from ._vocab import RecordMode
from ._session import GateSession, Selection, SessionResult, selection_hint
from ._suite import SuiteCache
from ._terminal import summary_lines
from .providers import ProviderFactory, ProviderOptions, builtin_factory
from .providers._calls import DEFAULT_CONCURRENCY

COLLECTED_KEY = "llmgate_collected"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


class BuiltinProviders:
    """The built-in providers, found through the same hook as any plugin's (tried last: a plugin may override one)."""

    @pytest.hookimpl(trylast=True)
    def pytest_llmgate_make_provider(self, config: pytest.Config, name: str) -> ProviderFactory | None:
        return builtin_factory(name)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(BuiltinProviders(), "llmgate-providers")
    pytest_cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    cache = SuiteCache(pytest_cache.mkdir("llmgate-suites")) if pytest_cache is not None and value(config, "suite_cache") != "off" else None
    gate = GateSession(
        Selection(candidates=value(config, "candidates"), baselines=value(config, "baselines")),
        value(config, "out") or config.rootpath / DEFAULT_DIR, freeze=value(config, "freeze"), cache=cache,
        options=ProviderOptions(record_mode=RecordMode(value(config, "record") or RecordMode.NONE.value),
                                trials=value(config, "trials")),
        concurrency=value(config, "concurrency") or DEFAULT_CONCURRENCY,
        make_provider=lambda name: config.hook.pytest_llmgate_make_provider(config=config, name=name),
        compare_to=value(config, "compare_to"),
    )
    config.stash[GATE_KEY] = gate
    config.pluginmanager.register(_ResultListener(gate), "llmgate-results")
    if value(config, "mlflow") and not hasattr(config, "workerinput"):
        from ._mlflow import MlflowExporter, default_uri  # MLflow itself is imported at the first record

        uri = value(config, "mlflow_uri") or default_uri(gate.out_dir)
        config.pluginmanager.register(MlflowExporter(uri), "llmgate-mlflow")
    if value(config, "wandb") and not hasattr(config, "workerinput"):
        from ._wandb import WandbExporter  # W&B itself is imported at the first record

        exporter = WandbExporter(gate.out_dir / "wandb", value(config, "wandb_project"))
        config.pluginmanager.register(exporter, "llmgate-wandb")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    gate = gate_of(config)
    controller = not hasattr(config, "workerinput")
    try:
        gate.start(_discover(config), controller=controller)
        if controller and not gate.selection.empty and not config.option.collectonly:
            gate.mark_in_progress()
    except LlmgateError as exc:
        raise pytest.UsageError(exc.message()) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    return gate_of(config).header_lines()


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (path / MANIFEST_NAME).is_file():
        return ExperimentDir.from_parent(parent, path=path)
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_suite_file(file_path) and not gate_of(parent.config).claims(file_path):
        return OrphanSuite.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if isinstance(item, CaseItem):
        item.attach_result(report)
    return report


class _ResultListener:
    """Receives every test report (on the xdist controller: from every worker) and each worker's end."""

    def __init__(self, gate: GateSession) -> None:
        self.gate = gate

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, RESULT_ATTRIBUTE, None)
        if payload is not None:
            self.gate.add_result(CaseResult.from_payload(payload))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; merge the experiments it collected."""
        collected = getattr(node, "workeroutput", {}).get(COLLECTED_KEY, [])
        self.gate.collected.update(Path(directory) for directory in collected)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    gate = gate_of(config)
    if hasattr(config, "workerinput"):
        config.workeroutput[COLLECTED_KEY] = sorted(str(d) for d in gate.collected)  # type: ignore[attr-defined]
        return
    if config.option.collectonly or exitstatus in _NO_RECORDS:
        return
    result = gate.finish(
        on_record=lambda record, files: config.hook.pytest_llmgate_run_record(config=config, record=record, files=files),
        on_report=lambda report, path: config.hook.pytest_llmgate_session_report(config=config, report=report, path=path),
    )
    summary_errors = _write_summaries(config, result)
    config.stash[_RESULT_KEY] = result = result.with_errors(summary_errors)
    if result.errors and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    gate = gate_of(config)
    hint = selection_hint(gate.experiments) if gate.selection.empty else None
    if hint:
        terminalreporter.write_line(hint)
    result = config.stash.get(_RESULT_KEY, None)
    if result is None or not (result.outcomes or result.errors):
        return
    terminalreporter.write_sep("=", "llmgate")
    for line in summary_lines(result):
        terminalreporter.write_line(line)


_NO_RECORDS = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
_RESULT_KEY = pytest.StashKey[Any]()


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
        from ._html import html_report  # only when asked for

        gate = gate_of(config)
        try:
            write_replacing(html_target, html_report(result, gate.out_dir).encode("utf-8"))
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


def _discover(config: pytest.Config) -> list[Path]:
    """Experiment directories under the paths pytest was given (or that hold a suite it was given)."""
    ignored = {Path(p).resolve() for p in config.getoption("ignore") or []}
    norecurse = config.getini("norecursedirs")
    found: list[Path] = []
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path.is_dir():
            for top, dirs, files in os.walk(path):
                if MANIFEST_NAME in files:
                    found.append(Path(top))
                dirs[:] = sorted(
                    d for d in dirs
                    if not any(fnmatch.fnmatch(d, pattern) for pattern in norecurse)
                    and Path(top, d) not in ignored
                    and not Path(top, d, "pyvenv.cfg").exists()
                )
        elif path.is_file():
            for parent in path.parents:
                if (parent / MANIFEST_NAME).is_file():
                    found.append(parent)
                    break
    return list(dict.fromkeys(found))
