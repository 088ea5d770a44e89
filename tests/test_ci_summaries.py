"""CI summaries: Markdown for $GITHUB_STEP_SUMMARY or any file, and JUnit XML properties on each item."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import BASELINE, EVALUATION_SHA, FIX, FIX_B, THREE_RUNS, MakeExperiment, case


@pytest.mark.usefixtures("example")
def test_markdown_summary_goes_to_the_step_summary_and_to_a_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = pytester.path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-markdown=gate.md")
    text = (pytester.path / "gate.md").read_text()
    assert step_summary.read_text() == "earlier step\n" + text  # appended, never replaced
    assert f"| `{FIX}` | candidate | 0 | 1 | 75% | REJECT_UNNECESSARY_ABSTENTION |" in text
    assert f"evaluation `{EVALUATION_SHA}`" in text
    assert f"**Decision:** PROMOTE {FIX_B} -> canary_candidate" in text
    assert f"| `{FIX}` (candidate) | `hold_001` | holdout |" in text and "UNNECESSARY_ABSTENTION |" in text
    assert f"| `{BASELINE}` (baseline) | `req_205` | regression | unsupported_root_cause | no_source | UNSAFE_CLAIM_SERVED |" in text


def test_a_manifest_s_text_cannot_reorder_or_drive_what_the_reviewer_reads(
    pytester: pytest.Pytester, example: Path
) -> None:
    # stop 36: a bidi override or an escape in a manifest reached the PR comment and the terminal as it was
    manifest = example / "llmgate.yaml"
    tricky = "review \u202eweiver on\u202c \x1b[8mhidden\x7f"
    manifest.write_text(re.sub(r"limitation: .*", lambda _: f"limitation: {json.dumps(tricky)}", manifest.read_text()))
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-markdown=gate.md")
    shown = "review \\u202eweiver on\\u202c \\u001b[8mhidden\\u007f"
    markdown = (pytester.path / "gate.md").read_text()
    for text in (result.stdout.str(), markdown):
        assert "\u202e" not in text and "\x1b" not in text
    assert shown in result.stdout.str()
    assert "review \\\\u202eweiver on\\\\u202c" in markdown  # a backslash is a Markdown sign: escaped, it shows
    done = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "promote", "--last"], cwd=pytester.path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "\u202e" not in done.stdout + done.stderr and "\x1b" not in done.stdout
    assert json.loads(done.stdout)["limitation"] == tricky  # the decision printed is the same JSON, shown safely


def test_a_suites_label_and_a_limitations_line_break_stay_on_their_line(
    pytester: pytest.Pytester, example: Path
) -> None:
    # a slice name with an escape and a line break reached the failure message raw; a limitation's line break split
    # the decision line in two
    suite = example / "holdout.suite.yaml"
    suite.write_text(suite.read_text().replace("slice_name: dependency_error", 'slice_name: "dep\\e[31mRED\\nNL"', 1))
    manifest = example / "llmgate.yaml"
    manifest.write_text(re.sub(r"limitation: .*", lambda _: 'limitation: "first line\\nsecond line"',
                               manifest.read_text()))
    stopped = pytester.runpytest("example_suites", *THREE_RUNS)  # the lock names the edit, shown safely
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR and "\x1b" not in stopped.stderr.str()
    stopped.stderr.fnmatch_lines(["*hold_001: slice_name dependency_error -> dep\\u001b[31mRED"])
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-freeze")
    out = result.stdout.str()
    assert "\x1b" not in out
    assert "slice dep\\u001b[31mRED\\nNL, evidence" in out  # the failure message and the short summary
    result.stdout.fnmatch_lines(["  decision: PROMOTE *; first line\\nsecond line)"])
    assert "\nsecond line" not in out


@pytest.mark.usefixtures("example")
def test_no_summary_without_the_variable_or_the_option(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    assert not list(pytester.path.glob("*.md"))


@pytest.mark.usefixtures("example")
def test_junit_xml_carries_template_suite_and_fingerprint(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    pytester.runpytest("example_suites", *THREE_RUNS, "--junitxml=junit.xml", *workers)
    cases = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    found = {}
    for testcase in cases:
        properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        found[testcase.get("name")] = properties
    assert len(found) == 12 + 2  # and each candidate's run item, named by its template id
    assert found[FIX_B] == {"llmgate_template_id": FIX_B, "llmgate_evaluation_sha": EVALUATION_SHA}
    assert found[f"hold_001[{FIX}]"] == {"llmgate_template_id": FIX, "llmgate_suite": "holdout",
                                         "llmgate_evaluation_sha": EVALUATION_SHA}
    # every case item, passed, failed (FIX on hold_001) or xfailed (the baseline's broken guardrails), carries all three
    for name, properties in found.items():
        if "[" in name:
            template = name.split("[", 1)[1].rstrip("]")
            suite = "holdout" if name.startswith("hold_") else "regression"
            assert properties == {"llmgate_template_id": template, "llmgate_suite": suite,
                                  "llmgate_evaluation_sha": EVALUATION_SHA}, name


ANSWERS_PY = """
def answer(case, artifact):
    if case["case_id"] == "c3":
        raise RuntimeError("no answer today")
    return "SERVE"
"""
TEARDOWN_FAILS = """
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    yield  # pytest's own teardown first: raising before it would leave its setup state to fail the next item
    if item.name.startswith("c2["):
        raise RuntimeError("a teardown of the project's own fails")
"""


def test_junit_properties_are_on_a_case_whatever_its_outcome(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    # c1 passes, c2 fails (served where it should abstain) and a conftest's teardown then errors (JUnit closes the
    # failed call's testcase and opens one for the teardown), c3 is an error in setup (the candidate raised).
    directory = make_experiment("exp", suites={"main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN"),
                                                        case("c3", "log", "SERVE")]},
                                templates={"cand": {"provider": "python", "callable": "gate_answers:answer"}})
    (directory / "gate_answers.py").write_text(ANSWERS_PY)
    (pytester.path / "conftest.py").write_text(TEARDOWN_FAILS)
    result = pytester.runpytest("exp", "--llmgate-candidate=cand", "--junitxml=junit.xml", *workers)
    result.assert_outcomes(passed=1, failed=2, errors=2)  # c2's call and the run item; c2's teardown, c3's setup
    result.stdout.fnmatch_lines(["*ERROR: cand raised RuntimeError on case c3*", "*no answer today*"])
    result.stdout.no_fnmatch_line("*not torn down properly*")
    testcases = [testcase for testcase in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
                 if "[" in (testcase.get("name") or "")]
    assert sorted(testcase.get("name") for testcase in testcases) == ["c1[cand]", "c2[cand]", "c2[cand]", "c3[cand]"]
    for testcase in testcases:
        properties = {p.get("name"): p.get("value") for p in testcase.iter("property")}
        assert properties.keys() == {"llmgate_template_id", "llmgate_suite", "llmgate_evaluation_sha"}, testcase.get("name")
        assert properties["llmgate_template_id"] == "cand" and properties["llmgate_suite"] == "main"
