"""Fast feedback (issue 19): what a pytest session pays for the plugin, and what a gating session imports."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "openai", "anthropic", "mlflow", "wandb")


def imported_by(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_plugin_entry_imports_no_heavy_library_and_not_the_core() -> None:
    modules = imported_by("import pytest_llmgate.plugin.entry")
    assert "pytest_llmgate.plugin.entry" in modules
    assert not modules & set(HEAVY)
    assert not {"pytest_llmgate.plugin.wiring", "pytest_llmgate.records.candidate", "pytest_llmgate.engine.session"} & modules


def test_the_package_names_stay_public_and_load_when_used() -> None:
    modules = imported_by("import pytest_llmgate as p\nassert p.Candidate.__name__ == 'Candidate'\n"
                          "assert isinstance(p.__version__, str)\nassert set(p.__all__) <= set(dir(p))")
    assert "pytest_llmgate.records.candidate" in modules


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest_llmgate

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        pytest_llmgate.nothing_here  # noqa: B018


def test_a_package_name_follows_its_module_when_it_is_imported_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester's inline runs drop the modules a run imported, so a provider plugin tested that way imports them
    again: its ``pytest_llmgate.ProviderError`` must be the class the gate then checks for, not one kept from the
    run before (a kept one made the second run's provider error a traceback)."""
    import pytest_llmgate
    from pytest_llmgate import model
    from pytest_llmgate.model import errors

    assert pytest_llmgate.ProviderError is errors.ProviderError
    monkeypatch.setattr(model, "errors", errors)  # restored after the test, as is sys.modules
    monkeypatch.delitem(sys.modules, "pytest_llmgate.model.errors")
    again = importlib.import_module("pytest_llmgate.model.errors")
    assert again is not errors
    assert pytest_llmgate.ProviderError is again.ProviderError


PROBE_CONFTEST = (
    "import json, sys\n"
    "def pytest_unconfigure(config):\n"
    "    open('mods.json', 'w').write(json.dumps(sorted(sys.modules)))\n"
)


def modules_after(pytester: pytest.Pytester, *args: str, passed: int = 1) -> set[str]:
    (pytester.path / "mods.json").unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=passed)
    return set(json.loads((Path(pytester.path) / "mods.json").read_text()))


@pytest.mark.slow
def test_a_bare_pytest_session_does_not_load_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.makepyfile(test_one="def test_one():\n    assert True\n")
    modules = modules_after(pytester)
    assert "pytest_llmgate.plugin.entry" in modules  # the plugin is installed and loaded ...
    assert "pytest_llmgate.plugin.wiring" not in modules  # ... and the gate is not
    assert not modules & set(HEAVY)


# --- a gating session validates with its definitions: jsonschema is not imported -------------------------------


LLM_EXAMPLE = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-llm"


@pytest.fixture
def llm_example(pytester: pytest.Pytester) -> Path:
    import shutil

    target = pytester.path / "example_suites" / LLM_EXAMPLE.name
    shutil.copytree(LLM_EXAMPLE, target)
    pytester.makeconftest(PROBE_CONFTEST)
    return target


@pytest.mark.slow
def test_a_one_case_replayed_session_imports_no_jsonschema_and_no_sdk(
    pytester: pytest.Pytester, llm_example: Path
) -> None:
    first = sorted(line for line in (llm_example / "regression.suite.yaml").read_text().splitlines()
                   if "case_id:" in line)[0].split("case_id:")[1].strip()
    modules = modules_after(pytester, "example_suites", "--llmgate-candidate=ci-answerer-llm-v2", "-k", first)
    assert "pytest_llmgate.plugin.wiring" in modules and "pytest_llmgate.providers.openai_chat" in modules
    assert not {"jsonschema", "openai"} & modules



@pytest.mark.slow
def test_a_test_selected_beside_an_experiment_does_not_load_the_gate(
    pytester: pytest.Pytester, llm_example: Path
) -> None:
    """pytest makes a node for every entry of a directory it walks through: the experiment (or a suite file)
    beside the selected test gets one, and the gate is loaded only if it is collected."""
    pytester.makepyfile(test_one="def test_one():\n    assert True\n")
    (pytester.path / "example_suites" / "test_one.py").write_text("def test_one():\n    assert True\n")
    (pytester.path / "loose.suite.yaml").write_text("cases: []\n")
    assert "pytest_llmgate.plugin.wiring" not in modules_after(pytester, "test_one.py")
    assert "pytest_llmgate.plugin.wiring" not in modules_after(pytester, "example_suites/test_one.py")
    assert not (pytester.path / ".llmgate").exists()
    # the same experiment, selected, is gated
    modules = modules_after(pytester, "example_suites/test_one.py", "example_suites",
                            "--llmgate-candidate=ci-answerer-llm-v2", "-k", "test_one or req_205", passed=2)
    assert "pytest_llmgate.plugin.wiring" in modules
    # the suite file beside it, selected, is a collection error: no manifest lists it
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "loose.suite.yaml")
    result.stdout.fnmatch_lines(["*loose.suite.yaml: is not listed in the suites of any llmgate.yaml*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED

def modules_after_collection(pytester: pytest.Pytester, *args: str) -> set[str]:
    """The modules loaded by a ``--collect-only`` session: no case runs, so no call imports an SDK itself."""
    (pytester.path / "mods.json").unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str()
    return set(json.loads((Path(pytester.path) / "mods.json").read_text()))


@pytest.mark.slow
@pytest.mark.usefixtures("llm_example")
def test_the_sdk_import_starts_at_session_start_when_a_call_may_go_live(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai")
    selected = ("example_suites", "--llmgate-candidate=ci-answerer-llm-v2")
    assert "openai" in modules_after_collection(pytester, *selected, "--llmgate-record=new_episodes")
    assert "openai" not in modules_after_collection(pytester, *selected)  # replay: no call can go live


@pytest.mark.slow
def test_a_live_session_against_a_dead_endpoint_still_says_cannot_connect(
    pytester: pytest.Pytester, llm_example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_EXAMPLE_API_KEY", "sk-test")
    template = llm_example / "templates" / "ci-answerer-llm-v2.yaml"
    template.write_text(template.read_text().replace("127.0.0.1:8000", "127.0.0.1:9"), encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "example_suites", "--llmgate-freeze",
                                           "--llmgate-candidate=ci-answerer-llm-v2", "--llmgate-record=all",
                                           "--llmgate-concurrency=1", "-x")
    result.stdout.fnmatch_lines(["*cannot connect to http://127.0.0.1:9/v1*"])
    assert "openai" in json.loads((Path(pytester.path) / "mods.json").read_text())


@pytest.mark.slow
def test_ptw_reruns_the_replayed_gate_when_a_file_is_saved(pytester: pytest.Pytester) -> None:
    """The local loop of docs/loop.md: pytest-watcher reruns the gate on save, replaying the recordings.

    The experiment is at the watched folder's top: on this machine the watcher saw no change in a subfolder
    (inotify watches are shared by many processes here), which is the watcher's business, not the gate's."""
    import os
    import shutil
    import signal
    import time

    for item in LLM_EXAMPLE.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, pytester.path / item.name)
    pytester.makeconftest(PROBE_CONFTEST)

    ptw = shutil.which("ptw", path=str(Path(sys.executable).parent))
    if ptw is None:
        pytest.skip("pytest-watcher is not installed: pip install 'pytest-llmgate[test]'")
    log = pytester.path / "ptw.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")])}
    with log.open("w") as out:
        watcher = subprocess.Popen(
            [ptw, ".", "--now", "--delay", "0.1", "--patterns", "*.yaml,*.jsonl", "--runner",
             str(Path(sys.executable).parent / "pytest"), ".",
             "--llmgate-candidate=ci-answerer-llm-v2"],
            cwd=pytester.path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
    try:
        def runs() -> int:
            return log.read_text(errors="replace").count(" passed in ")  # sessions finished

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + 90
            while runs() < count and time.monotonic() < deadline and watcher.poll() is None:
                time.sleep(0.2)
            assert runs() >= count, log.read_text(errors="replace")

        wait_for(1)  # --now: the first run
        first = runs()
        time.sleep(1.0)  # a change made while a run is under way is not watched for
        manifest = pytester.path / "llmgate.yaml"
        manifest.write_text(manifest.read_text() + "\n# edited\n", encoding="utf-8")
        wait_for(first + 1)  # the save started a second run ...
        # ... replayed: 4 cases and the candidate's run item, twice
        assert log.read_text(errors="replace").count("5 passed in ") == 2, log.read_text(errors="replace")
    finally:
        os.killpg(watcher.pid, signal.SIGTERM)
        watcher.wait(timeout=30)
