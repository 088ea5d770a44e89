"""The Markdown summary (the pull-request comment) and the HTML report: never a stale verdict after a session that
did not finish, bounded however many experiments or however long a text, and nothing a user wrote is live in it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_llmgate.reports.markdown import COMMENT_LIMIT, IN_PROGRESS_MARKER, MARKER

from .conftest import MakeExperiment, case, write_experiment

OUTPUTS = ("--llmgate-markdown=comment.md", "--llmgate-html=report.html")


def promoted(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> tuple[Path, Path]:
    """A session that promotes ``good``: the comment and the report both say PROMOTE."""
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", *OUTPUTS, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    comment, report = pytester.path / "comment.md", pytester.path / "report.html"
    assert comment.read_text().startswith(MARKER) and "PROMOTE good" in comment.read_text()
    assert "PROMOTE" in report.read_text()
    return comment, report


def assert_no_verdict(comment: Path, report: Path) -> None:
    text = comment.read_text()
    assert text.startswith(IN_PROGRESS_MARKER + "\n") and "No verdict" in text and "PROMOTE" not in text
    page = report.read_text()
    assert "<title>pytest-llmgate: no verdict</title>" in page and "PROMOTE" not in page


def test_after_a_collection_error_no_previous_verdict_is_left(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    comment, report = promoted(pytester, make_experiment)
    suite = pytester.path / "exp" / "main.suite.yaml"
    suite.write_text(suite.read_text() + "  - [unclosed\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", *OUTPUTS, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_no_verdict(comment, report)


def test_after_a_usage_error_no_previous_verdict_is_left(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    comment, report = promoted(pytester, make_experiment)
    result = pytester.runpytest("exp", "--llmgate-candidate=nope", *OUTPUTS, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert_no_verdict(comment, report)
    # report.json too: a CI step that reads it after an unknown id (or a missing key) never sees the last PROMOTE
    stored = json.loads((pytester.path / ".llmgate" / "report.json").read_text())
    assert (stored["in_progress"], stored["experiments"]) == (True, [])
    assert json.loads((pytester.path / ".llmgate" / "report.previous.json").read_text())["experiments"]
    # a second stopped session (a CI retry) keeps the last verdict aside, not the first one's marker
    assert pytester.runpytest("exp", "--llmgate-candidate=nope", "-p", "no:cacheprovider").ret == (
        pytest.ExitCode.USAGE_ERROR)
    kept = json.loads((pytester.path / ".llmgate" / "report.previous.json").read_text())
    assert kept["experiments"][0]["decision_status"] == "PROMOTE" and "in_progress" not in kept


@pytest.mark.parametrize(("args", "ini", "words"), [
    (("--llmgate-trials=0",), "", "--llmgate-trials=0: must be 1 or more"),
    (("--llmgate-concurrency=x",), "", "--llmgate-concurrency='x': expected a whole number"),
    (("--llmgate-record=bogus",), "", "--llmgate-record='bogus': expected one of none, once, new_episodes, all"),
    ((), "llmgate_trials = two", "llmgate_trials (ini)='two': expected a whole number"),
    (("--llmgate-save-replies=exp/llmgate.yaml",), "", "--llmgate-save-replies=*exp/llmgate.yaml: is a file that "
                                                       "holds no saved replies"),
], ids=["count", "not-a-number", "choice", "ini-count", "replies-target"])
def test_after_a_bad_option_value_no_previous_verdict_is_left(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, args: tuple[str, ...], ini: str, words: str
) -> None:
    # an outside review: a value refused before the gate started left the last session's PROMOTE in all three
    comment, report = promoted(pytester, make_experiment)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    manifest = (pytester.path / "exp" / "llmgate.yaml").read_bytes()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", *OUTPUTS, *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {words}*"])
    assert_no_verdict(comment, report)
    assert json.loads((pytester.path / ".llmgate" / "report.json").read_text())["in_progress"] is True
    assert (pytester.path / "exp" / "llmgate.yaml").read_bytes() == manifest  # a refused target is never written


def test_a_summary_target_that_is_not_the_gates_is_left_and_the_others_are_marked(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    comment, _ = promoted(pytester, make_experiment)
    manifest = (pytester.path / "exp" / "llmgate.yaml").read_bytes()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-markdown=comment.md",
                                "--llmgate-html=exp/llmgate.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --llmgate-html=*llmgate.yaml: is a file the gate did not write*"])
    assert (pytester.path / "exp" / "llmgate.yaml").read_bytes() == manifest
    text = comment.read_text()
    assert text.startswith(IN_PROGRESS_MARKER + "\n") and "PROMOTE" not in text
    assert json.loads((pytester.path / ".llmgate" / "report.json").read_text())["in_progress"] is True


def test_a_bad_option_value_is_a_usage_error_in_a_session_that_gates_nothing(pytester: pytest.Pytester) -> None:
    # as argparse refused a bad --llmgate-record before: a value given is checked whether or not the gate runs
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("--llmgate-trials=0", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --llmgate-trials=0: must be 1 or more"])
    assert not (pytester.path / ".llmgate").exists()
    assert pytester.runpytest("--help").ret == pytest.ExitCode.OK  # --help shows the options whatever their values
    empty = pytester.runpytest("--llmgate-record=", "-p", "no:cacheprovider")  # refused by argparse before
    assert empty.ret == pytest.ExitCode.USAGE_ERROR
    empty.stderr.fnmatch_lines(["ERROR: --llmgate-record='': expected one of none, once, new_episodes, all"])


@pytest.mark.skipif(int(pytest.__version__.split(".")[0]) < 9, reason="[tool.pytest] (native TOML) is pytest 9's")
def test_native_toml_settings_of_the_plugin_are_read_in_a_session_that_gates_nothing(pytester: pytest.Pytester) -> None:
    # the review of this stop: read as text, a flag's native TOML boolean stopped every pytest run of the project
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    pytester.makefile(".toml", pyproject="[tool.pytest]\nllmgate_wandb = false\nllmgate_mlflow = false\n")
    assert pytester.runpytest("-p", "no:cacheprovider").ret == pytest.ExitCode.OK


def test_an_unwritable_summary_leaves_the_others_marked(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    _, report = promoted(pytester, make_experiment)
    (pytester.path / "blocker").write_text("a file, not a folder")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-markdown=blocker/comment.md",
                                "--llmgate-html=report.html", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    page = report.read_text()
    assert "<title>pytest-llmgate: no verdict</title>" in page and "PROMOTE" not in page
    assert json.loads((pytester.path / ".llmgate" / "report.json").read_text())["in_progress"] is True


@pytest.mark.parametrize(("option", "target", "said"), [
    ("html", ".llmgate/report.json", "is one of the records folder's own files"),
    ("markdown", ".llmgate/runs/summary.md", "is one of the records folder's own files"),
    ("markdown", "exp/main.suite.yaml", "is a file the gate did not write; it is never replaced"),
    ("html", "other.html", "is a file the gate did not write; it is never replaced"),
])
def test_a_summary_never_replaces_a_file_it_did_not_write(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, option: str, target: str, said: str
) -> None:
    make_experiment()
    pytester.runpytest("exp", "--llmgate-candidate=good", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    (pytester.path / "other.html").write_text("<html><title>pytest-html report</title></html>")
    before = {path: path.read_bytes() for path in pytester.path.rglob("*") if path.is_file()}
    result = pytester.runpytest("exp", "--llmgate-candidate=good", f"--llmgate-{option}={target}",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llmgate-{option}=*{Path(target).name}: {said}*"])
    records = pytester.path / ".llmgate"
    after = {path: path.read_bytes() for path in pytester.path.rglob("*") if path.is_file()}
    # the target is left as it was; the last verdict is set aside, as after any usage error
    assert json.loads(after.pop(records / "report.json"))["in_progress"] is True
    assert after.pop(records / "report.previous.json") == before.pop(records / "report.json")
    assert after == before


def test_an_empty_file_or_collect_only_is_never_refused(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment()
    (pytester.path / "empty.md").write_text("")  # mktemp's, or one a CI step touched
    (pytester.path / "other.html").write_text("<html><title>another tool</title></html>")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-markdown=empty.md", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK and (pytester.path / "empty.md").read_text().startswith(MARKER)
    listed = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-html=other.html", "--collect-only",
                                "-p", "no:cacheprovider")  # writes nothing, so refuses nothing
    assert listed.ret == pytest.ExitCode.OK and "another tool" in (pytester.path / "other.html").read_text()


def test_the_summary_and_the_report_are_never_one_file(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-markdown=out.txt",
                                "--llmgate-html=out.txt", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmgate-markdown and --llmgate-html name the same file*"])
    assert not (pytester.path / "out.txt").exists()
    assert json.loads((pytester.path / ".llmgate" / "report.json").read_text())["in_progress"] is True


HANG_PY = '''
import os, time
from pathlib import Path

def route(case, artifact):
    Path(os.environ["STARTED_FILE"]).write_text("started")
    time.sleep(60)
    return "SERVE"
'''


@pytest.mark.slow
def test_after_a_kill_no_previous_verdict_is_left(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    comment, report = promoted(pytester, make_experiment)
    write_experiment(pytester.path, templates={"hangs": {"provider": "python", "callable": "hang_candidate:route"}})
    (pytester.path / "exp" / "hang_candidate.py").write_text(HANG_PY)
    started = pytester.path / "started"
    env = {**os.environ, "STARTED_FILE": str(started), "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "exp", "--llmgate-candidate=hangs", *OUTPUTS, "-p", "no:cacheprovider"],
        cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert started.exists(), "the candidate was never called"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert_no_verdict(comment, report)


# -- bounded and inert ---------------------------------------------------------------------------
HOSTILE = "@octocat ![t](https://evil.example/p.png)"


@pytest.mark.slow
def test_250_experiments_and_a_100_kb_limitation_stay_under_the_limit_and_say_so(pytester: pytest.Pytester) -> None:
    limitation = "requires review " * 6_400  # 102,400 characters
    for index in range(250):
        write_experiment(pytester.path, f"exp{index:03d}", promotion={"limitation": limitation},
                         suites={"main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN", slice_name=HOSTILE)]})
    result = pytester.runpytest(".", "--llmgate-candidate=good", "--llmgate-markdown=comment.md",
                                "-p", "no:cacheprovider", "-q")
    assert result.ret == pytest.ExitCode.OK
    text = (pytester.path / "comment.md").read_text()
    assert len(text) <= 60_000 < COMMENT_LIMIT
    assert text.startswith(MARKER)
    assert "### exp000" in text  # the first experiments in full ...
    assert "requires review requires" in text and "more characters cut" in text  # ... the limitation cut, saying so
    assert "experiment(s) summarised in one line" in text  # ... the rest summarised, and the summary says so
    assert "- exp249: PROMOTE" in text or "left out entirely" in text
    assert_inert(text)


def test_a_hostile_slice_name_is_shown_as_text_never_a_mention_image_or_link(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment(suites={"main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN", slice_name=HOSTILE)]},
                    promotion={"limitation": "ask <b>@admins</b> at www.evil.example or see #12 [here](http://x.example)"
                                             " | a&amp;b"})
    result = pytester.runpytest("exp", "--llmgate-candidate=unsafe", "--llmgate-candidate=good",
                                "--llmgate-markdown=comment.md", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = (pytester.path / "comment.md").read_text()
    # the failing case's row shows the slice name, every sign of it escaped
    assert r"| @&#8203;octocat !\[t\](https:&#8203;//evil.example/p.png) |" in text
    # the decision's limitation (PROMOTE good): no tag, no mention, no link
    assert (r"ask &lt;b>@&#8203;admins&lt;/b> at www&#8203;.evil.example or see #&#8203;12 \[here\](http:&#8203;//x.example)"
            r" \| a&amp;amp;b") in text  # a column break and an entity of the user's shown as written
    assert_inert(text)


def assert_inert(text: str) -> None:
    """Nothing in the comment that GitHub would make a mention, an image, a link or an HTML tag of, outside what the
    summary writes itself (its first-line marker and the collapsed sections)."""
    import re

    own = text.replace(MARKER, "").replace("<details>", "").replace("</details>", "")
    own = re.sub(r"<summary>[^<]*</summary>", "", own)
    assert "<" not in own.replace("&lt;", "")
    assert not re.search(r"(?<![&\w])@\w", text)  # a mention: @ then a word character
    assert "](" not in text.replace(r"\](", "")  # a link or image: ](, unescaped
    assert "://" not in text and not re.search(r"(?<!\w)www\.", text)
