"""The suite lock: frozen across time, a changed label stops the session, a refreeze starts a new comparison set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIX_B, MakeExperiment, read_report, read_runs, runs_by_template, snapshot

REGRESSION = "example_suites/ci-claim-gate-repair/regression.suite.yaml"


def freeze(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("example_suites", "--llmgate-freeze", *args)


def test_freeze_writes_the_lock_and_runs_are_frozen(pytester: pytest.Pytester, example: Path) -> None:
    (example / "llmgate.lock").unlink(missing_ok=True)
    unfrozen = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=before")
    unfrozen.stdout.fnmatch_lines(["*frozen: NO - no llmgate.lock; pytest --llmgate-freeze freezes these suites*"])
    assert runs_by_template(pytester.path / "before")[FIX_B]["frozen"] is False
    assert read_report(pytester.path / "before")["experiments"][0]["frozen"] is False

    result = freeze(pytester, f"--llmgate-candidate={FIX_B}")
    assert result.ret == pytest.ExitCode.OK
    lock = json.loads((example / "llmgate.lock").read_text())
    assert lock["schema"] == "llmgate.lock/1"
    assert lock["fingerprints"]["evaluation"].startswith("94dfc930d2829d2c")
    assert sorted(lock["cases"]) == ["hold_001", "hold_002", "reg_002", "req_205"]
    assert lock["cases"]["reg_002"]["expected_route"] == "SERVE" and len(lock["cases"]["reg_002"]["sha256"]) == 64
    result.stdout.fnmatch_lines(["*frozen: yes (llmgate.lock matches)*"])
    assert runs_by_template(pytester.path / ".llmgate")[FIX_B]["frozen"] is True


def change_label(example: Path, old: str, new: str) -> None:
    path = example / "regression.suite.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_lock_whose_case_digest_alone_differs_says_so(pytester: pytest.Pytester, example: Path) -> None:
    # protects: a case whose digest alone differs was named with nothing after it ("reg_002: ")
    freeze(pytester, f"--llmgate-candidate={FIX_B}")
    lock = example / "llmgate.lock"
    data = json.loads(lock.read_text())
    data["cases"]["reg_002"]["sha256"] = "0" * 64
    lock.write_text(json.dumps(data))
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the suites differ from the lock: reg_002: its sha256 differs, and no field the "
                                 "lock names (the lock edited?)*"])


def test_a_changed_label_after_freezing_stops_the_session_before_any_candidate_runs(
    pytester: pytest.Pytester, example: Path, workers: tuple[str, ...]
) -> None:
    freeze(pytester, f"--llmgate-candidate={FIX_B}")
    before = snapshot(pytester.path / ".llmgate")
    change_label(example, "expected_route: SERVE", "expected_route: ABSTAIN")  # reg_002
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: example_suites/ci-claim-gate-repair/llmgate.lock: the suites differ from the lock: "
        "reg_002: expected_route SERVE -> ABSTAIN.*refreeze with pytest --llmgate-freeze*"
    ])
    result.stdout.no_fnmatch_line("*created: 2/2 workers*")
    result.stdout.no_fnmatch_line("*passed*")
    after = snapshot(pytester.path / ".llmgate")
    # no record touched; the last verdict kept aside, never left as this session's (docs/records.md)
    assert {name: data for name, data in after.items() if not name.startswith("report")} == {
        name: data for name, data in before.items() if not name.startswith("report")}
    assert after["report.previous.json"] == before["report.json"]
    assert json.loads(after["report.json"])["in_progress"] is True


def test_added_removed_and_moved_cases_are_each_named(pytester: pytest.Pytester, example: Path) -> None:
    freeze(pytester)
    regression = example / "regression.suite.yaml"
    holdout = example / "holdout.suite.yaml"
    reg_text = regression.read_text()
    start = reg_text.index("  - case_id: reg_002")
    moved = reg_text[start:]
    regression.write_text(reg_text[:start] + moved.replace("reg_002", "reg_003"))
    holdout.write_text(holdout.read_text() + moved)
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    result.stderr.fnmatch_lines(["*reg_002: suite regression -> holdout; reg_003: added (suite regression)*"])
    regression.write_text(reg_text[:start])
    holdout.write_text(holdout.read_text().replace(moved, ""))
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    result.stderr.fnmatch_lines(["*the suites differ from the lock: reg_002: removed (was in suite regression).*"])


def test_refreeze_starts_a_new_comparison_set(pytester: pytest.Pytester, example: Path) -> None:
    freeze(pytester, f"--llmgate-candidate={FIX_B}")
    change_label(example, "slice_name: confirmed_failure", "slice_name: confirmed_test_failure")
    result = freeze(pytester, f"--llmgate-candidate={FIX_B}")
    assert result.ret == pytest.ExitCode.OK
    old, new = read_runs(pytester.path / ".llmgate")
    assert old["params"]["regression_sha"] != new["params"]["regression_sha"]
    assert old["params"]["evaluation_sha"] != new["params"]["evaluation_sha"]
    assert old["params"]["holdout_sha"] == new["params"]["holdout_sha"]
    assert new["frozen"] is True


def test_an_unreadable_lock_is_a_clear_error(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    directory = make_experiment("exp")
    (directory / "llmgate.lock").write_text("{not json")
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exp/llmgate.lock:1: cannot be read as JSON*"])


BARRIER = '''
import os, time
from pathlib import Path

def pytest_sessionfinish(session):
    """Hold each session just before it writes its records until both sessions are there."""
    barrier = Path(os.environ["LLMGATE_BARRIER"])
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
'''


@pytest.mark.slow
def test_two_sessions_writing_at_once_keep_every_run_file(pytester: pytest.Pytester, example: Path) -> None:
    pytester.makeconftest(BARRIER)
    barrier = pytester.mkdir("barrier")
    env = {**__import__("os").environ, "LLMGATE_BARRIER": str(barrier)}
    command = [sys.executable, "-m", "pytest", "example_suites", "-p", "no:cacheprovider", "--llmgate-out=shared",
               "--llmgate-baseline=ci-answerer-v1.1-regression", "--llmgate-candidate=ci-answerer-v1.2-fix",
               f"--llmgate-candidate={FIX_B}"]
    sessions = [subprocess.Popen(command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for _ in range(2)]
    outputs = [session.communicate(timeout=120)[0].decode() for session in sessions]
    assert [session.returncode for session in sessions] == [1, 1], outputs
    assert len(list(barrier.iterdir())) == 2  # both sessions really met before writing
    runs = read_runs(pytester.path / "shared")
    assert len(runs) == 6 and len({run["run_id"] for run in runs}) == 6
    assert len(list((pytester.path / "shared" / "reports").iterdir())) == 6
    assert not list((pytester.path / "shared").rglob("*.tmp"))
    assert read_report(pytester.path / "shared")["experiments"][0]["decision_status"] == "PROMOTE"
