"""Shared helpers: the example experiment, and experiments written from plain data."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-repair"
BASELINE = "ci-answerer-v1.1-regression"
FIX = "ci-answerer-v1.2-fix"
FIX_B = "ci-answerer-v1.2-fix-b"
EVALUATION_SHA = "94dfc930d2829d2c"  # the example's evaluation fingerprint (docs/experiments.md)
THREE_RUNS = (f"--llmgate-baseline={BASELINE}", f"--llmgate-candidate={FIX}", f"--llmgate-candidate={FIX_B}")

@pytest.fixture(params=[pytest.param((), id="serial"), pytest.param(("-n", "2"), id="xdist", marks=pytest.mark.slow)])
def workers(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """A test that takes ``workers`` runs twice: serially, and under pytest-xdist with two workers (the extra
    arguments for ``pytester.runpytest``; that one starts processes: ``slow``)."""
    args: tuple[str, ...] = request.param
    return args


@pytest.fixture(autouse=True)
def _no_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ``LLMGATE_SIGNING_KEY`` reaches no test: the tests that sign set one themselves."""
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester``, its sessions (in process or not) run in pytest's own order whatever shuffler is
    installed (pytest-randomly, say): the tests read their sessions' output in that order. pytester clears
    ``PYTEST_ADDOPTS`` when it starts; this sets it after."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


# pytester's in-process runs drop modules first imported inside them; the LLM SDKs' HTTP stack caches exception
# classes of its transport module, so it is imported here, once, for every inner run to share.
for _transport in ("httpcore2", "httpcore"):
    with contextlib.suppress(ImportError):
        __import__(_transport)

#: Golden files are data the tests read (an experiment signed the earlier way among them), not tests to collect.
collect_ignore = ["golden"]


@pytest.fixture(scope="session")
def mlflow_imported() -> Any:
    """MLflow and its SQL store, imported once, before any pytester run: pytester's in-process runs drop the modules
    first imported inside them, and MLflow's store breaks when imported again. A fixture, not a module's import, so
    that a session leaving the MLflow tests out (``-m "not slow"``) does not pay for it. Skips without the extra."""
    with warnings.catch_warnings():  # as pytest.importorskip: a dependency's deprecation warning is not ours
        warnings.simplefilter("ignore")
        mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install 'pytest-llmgate[mlflow]'")
        pytest.importorskip("mlflow.store.tracking.sqlalchemy_store")
    return mlflow


@pytest.fixture
def example(pytester: pytest.Pytester) -> Path:
    """A copy of the example experiment under ``example_suites/`` in the pytester directory."""
    target = pytester.path / "example_suites" / EXAMPLE.name
    shutil.copytree(EXAMPLE, target)
    return target


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def case(case_id: str, evidence: str, route: str, *, slice_name: str = "s", source: str = "t", **extra: Any) -> dict[str, Any]:
    return {"case_id": case_id, "slice_name": slice_name, "evidence_state": evidence,
            "expected_route": route, "source": source, **extra}


MakeExperiment = Callable[..., Path]


def write_experiment(
    root: Path,
    name: str = "exp",
    *,
    suites: dict[str, list[dict[str, Any]]] | None = None,
    templates: dict[str, dict[str, Any]] | None = None,
    **manifest_extra: Any,
) -> Path:
    """Write an experiment under ``root``: ``suites`` maps suite name -> cases, ``templates`` maps id -> fields."""
    directory = root / name
    suites = suites if suites is not None else {
        "main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN")]
    }
    templates = templates if templates is not None else {
        "good": {"provider": "evidence_policy", "serve_evidence": ["log"]},
        "also-good": {"provider": "evidence_policy", "serve_evidence": ["log", "other"]},
        "unsafe": {"provider": "evidence_policy", "serve_evidence": "*"},
    }
    manifest = {
        "experiment": name,
        "policy_id": "p1",
        "evidence_version": "e1",
        "evaluator_version": "v1",
        "suites": {suite: f"{suite}.suite.yaml" for suite in suites},
        **manifest_extra,
    }
    write_yaml(directory / "llmgate.yaml", manifest)
    for suite, cases in suites.items():
        write_yaml(directory / f"{suite}.suite.yaml", {"cases": cases})
    for template_id, fields in templates.items():
        write_yaml(directory / "templates" / f"{template_id}.yaml", {"template_id": template_id, **fields})
    return directory


@pytest.fixture
def make_experiment(pytester: pytest.Pytester) -> MakeExperiment:
    """Write an experiment in the pytester folder (see ``write_experiment``)."""
    return functools.partial(write_experiment, pytester.path)


def read_report(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def read_runs(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "runs").glob("*.json"))]


def runs_by_template(out: Path) -> dict[str, dict[str, Any]]:
    return {run["params"]["template_id"]: run for run in read_runs(out)}


@dataclass(frozen=True)
class Done:
    """What a command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def llmgate(cwd: Path, *args: str, key: str | None = None) -> Done:
    """``llmgate ARGS`` run from ``cwd`` in this process (the console script's ``main``, without a Python start per
    call), with ``LLMGATE_SIGNING_KEY`` set to ``key`` or unset. The installed script itself is run as a process by
    tests/test_cli.py."""
    from pytest_llmgate.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.chdir(cwd)
        if key is None:
            patch.delenv("LLMGATE_SIGNING_KEY", raising=False)
        else:
            patch.setenv("LLMGATE_SIGNING_KEY", key)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: a usage error (2) or --help (0)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Done(code, out.getvalue(), err.getvalue())


class MadeRuns:
    """The example's three runs (``pytest example_suites`` with ``THREE_RUNS``), made once per signing key in a
    test session, in a folder of their own, and copied into each test that asks: many tests only read or edit
    what such a session wrote. A test that needs runs of its own (new run ids, another option) runs pytest."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._made: dict[str | None, Path] = {}

    def into(self, pytester: pytest.Pytester, key: str | None = None) -> dict[str, dict[str, Any]]:
        """``example_suites/`` and ``.llmgate/`` of that session, signed with ``key`` (or not), copied into the
        pytester folder (beside what it holds); that session's runs by template id."""
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._make(key)
        shutil.copytree(made, pytester.path, dirs_exist_ok=True)
        return runs_by_template(made / ".llmgate")

    def _make(self, key: str | None) -> Path:
        made = self._folder / f"made-{len(self._made)}"
        shutil.copytree(EXAMPLE, made / "example_suites" / EXAMPLE.name)
        env = {name: text for name, text in os.environ.items()  # not this session's pytest or xdist worker
               if not name.startswith(("PYTEST_", "LLMGATE_SIGNING_KEY"))}
        if key is not None:
            env["LLMGATE_SIGNING_KEY"] = key
        done = subprocess.run([sys.executable, "-m", "pytest", "example_suites", *THREE_RUNS, "-p", "no:cacheprovider",
                               "-p", "no:randomly"], cwd=made, env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        last = done.stdout.splitlines()[-1] if done.stdout else ""
        # + the two gating candidates' run items
        assert done.returncode == 1 and "1 failed, 11 passed, 2 xfailed" in last, done.stdout + done.stderr
        return made


@pytest.fixture(scope="session")
def made_runs(tmp_path_factory: pytest.TempPathFactory) -> MadeRuns:
    return MadeRuns(tmp_path_factory.mktemp("made-runs"))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes (to prove nothing was lost or half-written)."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


class LLMServer:
    """The test chat-completions server (tests/llm_server.py), running in its own process."""

    def __init__(self, url: str, process: Any) -> None:
        self.url = url
        self._process = process

    @property
    def root(self) -> str:
        """The server's address without ``/v1`` (the Anthropic SDK's kind of base_url)."""
        return self.url.rsplit("/v1", 1)[0]

    @property
    def running(self) -> bool:
        return bool(self._process.poll() is None)

    def stop(self) -> None:
        """Stop the server: from here on, nothing listens at its address (the next test gets a new one)."""
        if self.running:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url.rsplit("/v1", 1)[0] + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def control(self, mode: str = "ok", delay: float = 0.0, reset: bool = False, limit_first: int = 0,
                **usage: Any) -> None:
        """Switch behaviour; ``limit_first``: the next N chat requests get a 429 with ``Retry-After: 1``;
        ``usage=...``: every reply reports that usage (``None``: none) instead of the counted one."""
        self._call("POST", "/control", {"mode": mode, "delay": delay, "reset": reset, "limit_first": limit_first,
                                        **usage})

    @property
    def stats(self) -> dict[str, Any]:
        """``requests``, ``max_in_flight``, ``arrivals`` ([in flight on arrival, status] per chat request) and
        ``usages`` ({"user": message, "usage": as reported} per 200 reply), since the last reset."""
        return self._call("GET", "/stats")

    @property
    def requests(self) -> int:
        return int(self._call("GET", "/stats")["requests"])

    @property
    def max_in_flight(self) -> int:
        """The most chat requests the server was answering at one time (since the last reset)."""
        return int(self._call("GET", "/stats")["max_in_flight"])


def start_llm_server(folder: Path) -> LLMServer:
    import sys
    import time

    port_file = folder / "port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "llm_server.py"), "--port-file", str(port_file),
                                "--exit-with-parent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = LLMServer("", process)
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text()):
        if time.monotonic() > deadline or not server.running:
            server.stop()
            raise RuntimeError("the test LLM server (tests/llm_server.py) did not start within 20 s")
        time.sleep(0.02)
    server.url = f"http://127.0.0.1:{port_file.read_text()}/v1"
    return server


@pytest.fixture(scope="session")
def _llm_servers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The test server of this process (of each xdist worker): one for the session, started again after a test
    that stopped it."""
    folder = tmp_path_factory.mktemp("llm-server")
    running: list[LLMServer] = []
    yield folder, running
    for server in running:
        server.stop()


@pytest.fixture
def llm_server(_llm_servers: tuple[Path, list[LLMServer]]) -> LLMServer:
    """The test server, in its default behaviour with its counts at zero (requests still being answered for an
    earlier test are not counted)."""
    folder, running = _llm_servers
    if not running or not running[-1].running:
        running[:] = [start_llm_server(folder)]
    running[-1].control("ok", reset=True)
    return running[-1]
