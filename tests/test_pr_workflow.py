"""The pull-request workflow's shell steps (docs/examples/pr-gate.sh), run locally on two git checkouts of the
example: main, and a branch that edits a template. Only ``gh`` is a stub: a script on PATH that records its
arguments and the comment body."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLE, FIX_B, THREE_RUNS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "examples" / "pr-gate.sh"
GH_STUB = """#!/usr/bin/env bash
# gh, as far as the workflow uses it: `gh pr comment N [--edit-last] --body-file FILE`.
log="$GH_STUB_DIR/calls.jsonl"
body=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--body-file" ]; then body="$arg"; fi
  prev="$arg"
done
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> "$log"
if [[ " $* " == *" --edit-last "* ]] && [ ! -f "$GH_STUB_DIR/posted.md" ]; then
  echo "no comments found for current user" >&2
  exit 1
fi
cp "$body" "$GH_STUB_DIR/posted.md"
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


def _step(checkout: Path, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), mode], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_workflow_steps_post_one_comment_naming_what_broke(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    shutil.copytree(EXAMPLE, origin / "example_suites" / EXAMPLE.name)
    _git(origin, "init", "-q", "-b", "main")
    _git(origin, "add", ".")
    _git(origin, "commit", "-q", "-m", "main")
    main, branch = tmp_path / "main", tmp_path / "branch"
    _git(tmp_path, "clone", "-q", str(origin), str(main))
    _git(tmp_path, "clone", "-q", str(origin), str(branch))
    _git(branch, "checkout", "-q", "-b", "narrow-fix-b")
    template = branch / "example_suites" / EXAMPLE.name / "templates" / f"{FIX_B}.yaml"
    template.write_text(template.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    _git(branch, "commit", "-q", "-am", "fix-b: only test failure logs")

    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "gh").write_text(GH_STUB)
    (stub / "gh").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}", "GH_STUB_DIR": str(stub),
           "PYTHON": sys.executable, "LLMGATE_ARGS": " ".join(["example_suites", *THREE_RUNS, "-p", "no:cacheprovider"]),
           "PR_NUMBER": "7"}
    env.pop("GITHUB_STEP_SUMMARY", None)

    on_main = _step(main, "main", env)
    assert on_main.returncode == 1, on_main.stdout + on_main.stderr  # the example's fix fails, as on main today
    assert (main / ".llmgate" / "report.html").is_file()
    shutil.copytree(main / ".llmgate", branch / "main-llmgate")  # what the artifact download does

    on_branch = _step(branch, "pr", env)
    assert on_branch.returncode == 1, on_branch.stdout + on_branch.stderr
    calls = [json.loads(line) for line in (stub / "calls.jsonl").read_text().splitlines()]
    assert calls == [["pr", "comment", "7", "--edit-last", "--body-file", "llmgate-comment.md"],
                     ["pr", "comment", "7", "--body-file", "llmgate-comment.md"]]  # none yet: post the first
    body = (stub / "posted.md").read_text()
    assert body.startswith("<!-- pytest-llmgate summary -->")
    assert f"| `{FIX_B}` | candidate | 0 | 1 | 75% | REJECT_UNNECESSARY_ABSTENTION | 1 broken, 0 fixed, exact -25.0 pt |" in body
    assert f"| `{FIX_B}` | `hold_001` | holdout | broken | PASS | UNNECESSARY_ABSTENTION |" in body
    assert body.count("| broken |") == 1 and "| fixed |" not in body
    assert (branch / ".llmgate" / "report.html").is_file()

    again = _step(branch, "pr", env)  # a new push: the same comment is edited, not a second one posted
    assert again.returncode == 1
    calls = [json.loads(line) for line in (stub / "calls.jsonl").read_text().splitlines()]
    assert calls[2:] == [["pr", "comment", "7", "--edit-last", "--body-file", "llmgate-comment.md"]]

    # a push that breaks a suite: the gate stops at collection, its comment file holds no verdict, nothing is posted
    suite = branch / "example_suites" / EXAMPLE.name / "holdout.suite.yaml"
    suite.write_text(suite.read_text() + "\n  - [unclosed\n")
    broken = _step(branch, "pr", env)
    assert broken.returncode == pytest.ExitCode.INTERRUPTED, broken.stdout + broken.stderr
    assert "pr-gate: no verdict in llmgate-comment.md" in broken.stderr
    assert len((stub / "calls.jsonl").read_text().splitlines()) == 3  # no new call
    assert (branch / "llmgate-comment.md").read_text().startswith("<!-- pytest-llmgate in progress: no verdict -->")
    assert "<title>pytest-llmgate: no verdict</title>" in (branch / ".llmgate" / "report.html").read_text()
