"""The pytest plugin ``llmgate``: thin hooks. A session that gates nothing pays for nothing.

This module imports only pytest and the option table. The gate itself (experiments, providers, records:
``plugin.wiring``) is loaded when a session asks for it: an llmgate option or ini key selects a run or a freeze,
or pytest collects an experiment directory (``llmgate.yaml``) or a suite file.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmgate.model.defaults import MANIFEST_NAME, SUITE_SUFFIXES
from pytest_llmgate.plugin import hookspecs as _hookspecs
from pytest_llmgate.plugin.options import add_options, check_given, value

if TYPE_CHECKING:
    from pytest_llmgate.plugin.wiring import Wiring

_WIRING = pytest.StashKey["Wiring"]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(_hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _active(config: pytest.Config) -> Wiring | None:
    return config.stash.get(_WIRING, None)


def _activate(config: pytest.Config) -> Wiring:
    """The gate's machinery for this session, loaded the first time it is needed."""
    wiring = _active(config)
    if wiring is None:
        from pytest_llmgate.plugin.wiring import Wiring

        with _no_verdict_on_usage_error(config):
            wiring = config.stash[_WIRING] = Wiring(config)
    return wiring


@contextlib.contextmanager
def _no_verdict_on_usage_error(config: pytest.Config) -> Iterator[None]:
    """A usage error found before the gate starts (a bad option value, a target refused) still replaces the last
    session's verdicts with no-verdict ones, as one found later does (``Wiring.start``)."""
    try:
        yield
    except pytest.UsageError:
        if not hasattr(config, "workerinput") and not config.option.collectonly:
            from pytest_llmgate.plugin.wiring import mark_no_verdict

            mark_no_verdict(config)
        raise


def pytest_configure(config: pytest.Config) -> None:
    if not config.option.help:  # `pytest --help` shows the options whatever their values
        with _no_verdict_on_usage_error(config):
            check_given(config)
    if value(config, "candidates") or value(config, "baselines") or value(config, "freeze"):
        _activate(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    found = discover(config)
    if found or _active(config) is not None:
        _activate(config).start(found)


def pytest_report_header(config: pytest.Config) -> list[str]:
    wiring = _active(config)
    return wiring.gate.header_lines() if wiring is not None else []


class ExperimentDir(pytest.Dir):  # type: ignore[misc]  # Dir is final for typing; only collect() is extended
    """A directory holding ``llmgate.yaml``: yields its suites and run items first, then whatever else pytest
    finds there, collected exactly as pytest would (conftest files, Python tests, sub-directories).

    pytest makes a node for every entry of a directory it walks through, selected or not (``pytest
    test_one.py`` makes one for an experiment beside it): the gate is loaded when this node is collected, not
    when it is made."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        nodes, listed = _activate(self.config).experiment_nodes(self)
        yield from nodes
        for node in super().collect():
            if node.path.resolve() not in listed:
                yield node


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if (path / MANIFEST_NAME).is_file():
        return ExperimentDir.from_parent(parent, path=path)
    return None


class SuiteFileNode(pytest.File):
    """A suite file met outside its experiment's collector. Its experiment collects the cases; collecting this
    node loads the gate (not making it: pytest makes one for every file of a folder it walks through) and is a
    collection error when no manifest lists the file."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        _activate(self.config).check_listed(self)
        return iter(())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUITE_SUFFIXES):
        return SuiteFileNode.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None, None, None]:
    """After every other plugin (-k, --lf, a splitter, a shuffler): the run items go last, after every case item,
    so that the last case item's teardown is the only one that leads to them (they are never set up)."""
    yield
    if _active(config) is not None:
        items.sort(key=_judged_at_end)  # stable: each group keeps its order


def _judged_at_end(item: pytest.Item) -> bool:
    return bool(getattr(item, "judged_at_session_end", False))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A run item is judged and reported at session end (``Wiring.finish``): its turn in the run loop does nothing,
    whatever marks or hooks of a conftest would do to a test."""
    return True if _judged_at_end(item) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    attach = getattr(item, "attach_result", None)  # a gate's case item (no import needed to tell)
    if attach is not None:
        attach(report)
    return report


@pytest.hookimpl(tryfirst=True)  # before the JUnit, cache and terminal plugins: the run items' reports reach them
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    wiring = _active(session.config)
    if wiring is not None:
        wiring.finish(session, exitstatus)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    wiring = _active(config)
    if wiring is not None:
        wiring.terminal_summary(terminalreporter)


def discover(config: pytest.Config) -> list[Path]:
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
            experiment = next((parent for parent in path.parents if (parent / MANIFEST_NAME).is_file()), None)
            found += [experiment] if experiment is not None else []
    return list(dict.fromkeys(found))
