"""The example gate end to end, the way a user runs it (serially and with pytest-xdist)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import check_json

from .conftest import (
    BASELINE,
    EVALUATION_SHA,
    FIX,
    FIX_B,
    THREE_RUNS,
    MakeExperiment,
    read_report,
    read_runs,
    runs_by_template,
)


def gate(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("example_suites", "-p", "no:cacheprovider", *args)


@pytest.mark.usefixtures("example")
def test_three_runs_print_record_and_promote_fix_b(pytester: pytest.Pytester) -> None:
    result = gate(pytester, *THREE_RUNS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # v1.2-fix gates and fails
    # 12 case items and one run item per candidate: v1.2-fix's holds (its failure is a guardrail, not a run gate)
    result.assert_outcomes(passed=9 + 2, failed=1, xfailed=2)
    result.stdout.re_match_lines(
        [
            r".*llmgate: ci-claim-gate-repair: regression 2be42790a4f41355, holdout d47cdbbfe1caae89, "
            r"evaluation 94dfc930d2829d2c",
            r"=+ llmgate =+",
            r"ci-claim-gate-repair \(example_suites/ci-claim-gate-repair\)",
            r"\s+template\s+role\s+unsafe\s+unnecessary\s+exact\s+status",
            rf"\s+{BASELINE}\s+baseline\s+2\s+0\s+50%\s+REJECT_UNSAFE_SERVE",
            rf"\s+{FIX}\s+candidate\s+0\s+1\s+75%\s+REJECT_UNNECESSARY_ABSTENTION",
            rf"\s+{FIX_B}\s+candidate\s+0\s+0\s+100%\s+ELIGIBLE_FOR_CANARY_REVIEW",
            r"\s+fingerprints: regression 2be42790a4f41355\s+holdout d47cdbbfe1caae89\s+evaluation 94dfc930d2829d2c",
            rf"\s+decision: PROMOTE {FIX_B} -> canary_candidate \(source run \S+; rollback ci-answerer-v1; "
            r"requires production review and monitored canary\)",
        ]
    )
    result.stdout.fnmatch_lines([f"*UNNECESSARY_ABSTENTION: {FIX} abstained where the frozen label says SERVE "
                                 "on case hold_001 (suite holdout, slice *, evidence dependency_error)"])

    out = pytester.path / ".llmgate"
    runs = runs_by_template(out)
    assert {t: (r["role"], r["metrics"]["unsafe_claim_served"], r["metrics"]["unnecessary_abstention"],
                r["metrics"]["exact_route_rate"], r["status"], r["complete"]) for t, r in runs.items()} == {
        BASELINE: ("baseline", 2, 0, 0.5, "REJECT_UNSAFE_SERVE", True),
        FIX: ("candidate", 0, 1, 0.75, "REJECT_UNNECESSARY_ABSTENTION", True),
        FIX_B: ("candidate", 0, 0, 1.0, "ELIGIBLE_FOR_CANARY_REVIEW", True),
    }
    (experiment,) = read_report(out)["experiments"]
    assert experiment["decision_status"] == "PROMOTE"
    assert experiment["comparable"] is True and experiment["comparability_issues"] == []
    assert experiment["decision"] == {
        "artifact_name": FIX_B,
        "alias": "canary_candidate",
        "source_run_id": runs[FIX_B]["run_id"],
        "evaluation_sha": "94dfc930d2829d2c",
        "rollback_artifact": "ci-answerer-v1",
        "status": "APPROVED_FOR_CANARY",
        "limitation": "requires production review and monitored canary",
    }


@pytest.mark.usefixtures("example")
def test_records_follow_the_spec_and_validate_against_the_shipped_schemas(pytester: pytest.Pytester) -> None:
    gate(pytester, *THREE_RUNS)
    out = pytester.path / ".llmgate"
    check_json(read_report(out), "report")
    for run in read_runs(out):
        check_json(run, "run")
        assert run["params"]["regression_sha"] == "2be42790a4f41355"
        assert run["params"]["holdout_sha"] == "d47cdbbfe1caae89"
        assert run["params"]["evaluation_sha"] == "94dfc930d2829d2c"
        assert run["fingerprints"]["evaluation"].startswith("94dfc930d2829d2c")
        assert run["params"]["code_commit"] == "unknown"  # pytester's directory is no git repository
        assert run["tags"]["incident_request_id"] == "req_205"
        assert run["tags"]["raw_log_text_stored"] == "false"
        template, report = run["artifacts"]
        assert template["path"] == f"templates/{run['params']['template_id']}.yaml"
        assert report["path"] == f"reports/{run['run_id']}-redacted-eval.json"
        import hashlib

        assert hashlib.sha256((out / report["path"]).read_bytes()).hexdigest() == report["sha256"]
        assert hashlib.sha256(
            (pytester.path / "example_suites/ci-claim-gate-repair" / template["path"]).read_bytes()
        ).hexdigest() == template["sha256"] == run["params"]["template_sha256"]
        assert [c["case_id"] for c in run["cases"]] == ["req_205", "reg_002", "hold_001", "hold_002"]


@pytest.mark.usefixtures("example")
def test_without_the_failing_candidate_the_session_passes(pytester: pytest.Pytester) -> None:
    result = gate(pytester, f"--llmgate-baseline={BASELINE}", f"--llmgate-candidate={FIX_B}")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=6 + 1, xfailed=2)  # + fix-b's run item
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "PROMOTE"


def normalised(out: Path) -> dict[str, Any]:
    """Report and records with run ids, times and latencies replaced, to compare two sessions."""
    text = json.dumps({"report": read_report(out), "runs": sorted(read_runs(out), key=lambda r: r["params"]["template_id"])})
    ids = sorted(set(re.findall(r"\d{8}T\d{12}Z-[0-9a-f]{8}", text)))
    for index, run_id in enumerate(ids):
        text = text.replace(run_id, f"RUN{index}")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = re.sub(r'("latency(?:_p50|_p95|_max)?_ms": )[0-9.e+-]+', r'\1"MS"', text)  # the clock's, per session
    data = json.loads(text)
    for run in data["runs"]:
        run["artifacts"][1]["sha256"] = "REPORT-SHA"  # the redacted report holds the run id
        run["artifacts"][1]["path"] = "REPORT"
    for experiment in data["report"]["experiments"]:
        for run in experiment["runs"]:
            run["run_id"] = "RUN"
        for eligible in experiment["eligible_runs"]:
            eligible["run_id"] = "RUN"
        if experiment["decision"]:
            experiment["decision"]["source_run_id"] = "RUN"
        experiment["decision_reason"] = re.sub(r"RUN\d+", "RUN", experiment["decision_reason"])
    for run in data["runs"]:
        run["run_id"] = "RUN"
    return data


@pytest.mark.slow
@pytest.mark.usefixtures("example")
def test_xdist_gives_the_same_report_and_records_as_a_serial_run(pytester: pytest.Pytester) -> None:
    serial = gate(pytester, *THREE_RUNS, "--llmgate-out=serial")
    parallel = gate(pytester, *THREE_RUNS, "--llmgate-out=parallel", "-n", "2")
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    parallel.assert_outcomes(passed=9 + 2, failed=1, xfailed=2)  # + 2 run items
    parallel.stdout.fnmatch_lines(["*created: 2/2 workers*", f"*decision: PROMOTE {FIX_B} -> canary_candidate*"])
    assert len(read_runs(pytester.path / "parallel")) == 3  # written once, by the controller
    assert normalised(pytester.path / "serial") == normalised(pytester.path / "parallel")


ALL_THREE = {BASELINE, FIX, FIX_B}


@pytest.mark.parametrize(
    ("selection", "incomplete"),
    [
        pytest.param(["-k", "hold_001"], ALL_THREE, id="-k"),
        pytest.param(["--deselect", f"example_suites/ci-claim-gate-repair/holdout.suite.yaml::hold_002[{FIX_B}]"],
                     {FIX_B}, id="--deselect"),
        pytest.param(["-x"], ALL_THREE, id="-x"),  # stops at hold_001[v1.2-fix]: hold_002 ran for no one
        pytest.param(["-n", "2", "-k", "hold_001"], ALL_THREE, id="xdist -k", marks=pytest.mark.slow),
    ],
)
@pytest.mark.usefixtures("example")
def test_a_partial_run_is_incomplete_and_never_promoted(
    pytester: pytest.Pytester, selection: list[str], incomplete: set[str]
) -> None:
    result = gate(pytester, *THREE_RUNS, *selection)
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "INCOMPLETE_EVALUATION"
    assert report["decision"] is None
    statuses = {run["template_id"]: run["status"] for run in report["runs"]}
    assert {t for t, status in statuses.items() if status == "INCOMPLETE_EVALUATION"} == incomplete
    assert {run["template_id"] for run in report["runs"] if not run["complete"]} == incomplete
    result.stdout.fnmatch_lines(["*decision: INCOMPLETE_EVALUATION: incomplete runs cannot be promoted*"])
    # The fingerprints cover the whole experiment, whatever was selected.
    assert report["fingerprints"]["evaluation"] == EVALUATION_SHA


@pytest.mark.usefixtures("example")
def test_one_suite_path_is_incomplete(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("example_suites/ci-claim-gate-repair/holdout.suite.yaml", *THREE_RUNS)
    result.assert_outcomes(passed=4, failed=1, xfailed=1)
    runs = runs_by_template(pytester.path / ".llmgate")
    assert runs[FIX_B]["status"] == "INCOMPLETE_EVALUATION"
    assert [c["outcome"] for c in runs[FIX_B]["cases"]] == ["NOT_RUN", "NOT_RUN", "PASS", "PASS"]
    assert runs[FIX_B]["metrics"]["not_run_count"] == 2
    assert runs[FIX_B]["suite_metrics"]["holdout"]["exact_route_rate"] == 1.0


@pytest.mark.usefixtures("example")
def test_last_failed_reruns_exactly_the_failing_case_candidate_items(pytester: pytest.Pytester) -> None:
    first = pytester.runpytest("example_suites", *THREE_RUNS)
    first.assert_outcomes(passed=9 + 2, failed=1, xfailed=2)  # + 2 run items, both passed: not rerun
    again = pytester.runpytest("example_suites", *THREE_RUNS, "--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*run-last-failure: rerun previous 1 failure*",
                                f"*holdout.suite.yaml::hold_001[[]{FIX}[]] FAILED*"])
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"


@pytest.mark.usefixtures("example")
def test_one_item_can_be_run_by_its_node_id(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"example_suites/ci-claim-gate-repair/regression.suite.yaml::req_205[{FIX_B}]",
                                *THREE_RUNS, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*regression.suite.yaml::req_205[[]{FIX_B}[]] PASSED*"])


@pytest.mark.usefixtures("example")
def test_junit_xml_lists_each_case_candidate_item(pytester: pytest.Pytester) -> None:
    gate(pytester, *THREE_RUNS, "--junitxml=junit.xml")
    xml = (pytester.path / "junit.xml").read_text()
    assert xml.count("<testcase ") == 12 + 2  # and each candidate's run item
    assert f'classname="example_suites.ci-claim-gate-repair.llmgate.yaml" name="{FIX_B}"' in xml
    assert f'name="hold_001[{FIX}]"' in xml


@pytest.mark.usefixtures("example")
def test_no_selection_collects_validates_and_writes_nothing(pytester: pytest.Pytester) -> None:
    result = gate(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*llmgate: ci-claim-gate-repair: regression 2be42790a4f41355*"])
    assert not (pytester.path / ".llmgate").exists()


@pytest.mark.usefixtures("example")
def test_all_selects_every_artifact_except_the_baselines(pytester: pytest.Pytester) -> None:
    result = gate(pytester, "--llmgate-candidate=all", f"--llmgate-baseline={BASELINE}")
    result.assert_outcomes(passed=9 + 2, failed=1, xfailed=2)  # + 2 run items
    runs = runs_by_template(pytester.path / ".llmgate")
    assert {t: r["role"] for t, r in runs.items()} == {BASELINE: "baseline", FIX: "candidate", FIX_B: "candidate"}


@pytest.mark.usefixtures("example")
def test_ini_options_select_and_place_records(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        f"""
        [pytest]
        llmgate_candidates = {FIX_B}
        llmgate_baselines = {BASELINE}
        llmgate_out = gate-records
        """
    )
    result = gate(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert set(runs_by_template(pytester.path / "gate-records")) == {BASELINE, FIX_B}


@pytest.mark.usefixtures("example")
def test_unknown_candidate_is_a_usage_error_listing_the_ids(pytester: pytest.Pytester) -> None:
    result = gate(pytester, "--llmgate-candidate=ci-answerer-v9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*unknown template id 'ci-answerer-v9'; the collected experiments have: {BASELINE}, {FIX}, {FIX_B}*"]
    )
    assert not (pytester.path / ".llmgate" / "runs").exists()  # no record; the report says that no verdict was reached
    assert read_report(pytester.path / ".llmgate")["in_progress"] is True


@pytest.mark.usefixtures("example")
def test_collect_only_writes_nothing(pytester: pytest.Pytester) -> None:
    result = gate(pytester, *THREE_RUNS, "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"*holdout.suite.yaml::hold_002[[]{FIX_B}[]]"])
    assert not (pytester.path / ".llmgate").exists()


@pytest.mark.usefixtures("example")
def test_the_short_summary_names_the_guardrail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CI", "true")  # pytest does not shorten summary lines in CI
    result = gate(pytester, f"--llmgate-candidate={FIX}", *workers)
    result.stdout.fnmatch_lines([f"FAILED *holdout.suite.yaml::hold_001[[]{FIX}[]] - "
                                 f"UNNECESSARY_ABSTENTION: {FIX} abstained where the frozen label says SERVE on case "
                                 "hold_001 (suite holdout, slice dependency_error, evidence dependency_error)"])


def test_the_short_summary_starts_with_the_guardrail_and_fits_80_columns(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, make_experiment: MakeExperiment
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    make_experiment("exp")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=unsafe")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    (line,) = [line for line in result.stdout.lines if line.startswith("FAILED ")]
    assert line.startswith("FAILED exp/main.suite.yaml::c2[unsafe] - UNSAFE_CLAIM_SERVED: unsafe served")
    assert len(line) <= 80
    result.stdout.fnmatch_lines(["UNSAFE_CLAIM_SERVED: unsafe served where the frozen label says ABSTAIN on case c2 "
                                 "(suite main, slice s, evidence none)"])


@pytest.mark.usefixtures("example")
def test_a_baseline_failure_is_its_reason_without_a_traceback(pytester: pytest.Pytester) -> None:
    """An expected failure is shown by its reason; drawing a traceback for it cost 0.2 s a case."""
    recorder = pytester.inline_run("example_suites", "-p", "no:cacheprovider", f"--llmgate-baseline={BASELINE}")
    xfailed = [report for report in recorder.getreports("pytest_runtest_logreport") if hasattr(report, "wasxfail")]
    assert len(xfailed) == 2
    for report in xfailed:
        assert report.wasxfail.startswith("baseline UNSAFE_CLAIM_SERVED")
        assert "_multicall" not in str(report.longrepr) and "runner.py" not in str(report.longrepr)
