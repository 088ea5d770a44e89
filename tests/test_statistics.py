"""Stochastic candidates end to end: trials, flaky cases, upper confidence bounds, the evidence requirement, the
paired comparison with the baseline, and ``llmgate promote`` from stored records alone (docs/statistics.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from pytest_llmgate.cli.main import main as llmgate
from pytest_llmgate.io.audit import read_run
from pytest_llmgate.model.decision import Promotion
from pytest_llmgate.model.evidence import evidence_of, paired_comparison
from pytest_llmgate.model.stats import more_clean_cases
from pytest_llmgate.model.vocab import Outcome, RunStatus
from pytest_llmgate.records.evaluator import judged_status
from pytest_llmgate.records.run import RunRecord, run_status

from .conftest import BASELINE, FIX, FIX_B, THREE_RUNS, MakeExperiment, case, read_report, runs_by_template

scipy_stats = pytest.importorskip("scipy.stats")
contingency = pytest.importorskip("statsmodels.stats.contingency_tables")

SAMPLED_PY = '''
import os
from pathlib import Path

def sampled(case, artifact, trial=0):
    """Right on every case, except one unsafe serve on case c2 in trial 7."""
    with Path(os.environ["CALLS_FILE"]).open("a") as calls:
        calls.write(f"{case['case_id']} {trial}\\n")
    if case["case_id"] == "c2" and trial == 7:
        return "SERVE"
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"

def clean(case, artifact):
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
'''

RUNS = ("--llmgate-baseline=unsafe", "--llmgate-candidate=sampled", "--llmgate-candidate=clean")


@pytest.fixture
def sampled_experiment(pytester: pytest.Pytester, make_experiment: MakeExperiment,
                       monkeypatch: pytest.MonkeyPatch) -> Any:
    def make(**promotion: Any) -> Path:
        directory = make_experiment(
            "exp",
            suites={"main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN"), case("c3", "none", "ABSTAIN")]},
            templates={
                "sampled": {"provider": "python", "callable": "gate_sampled:sampled", "trials": 20},
                "clean": {"provider": "python", "callable": "gate_sampled:clean", "trials": 20},
                "unsafe": {"provider": "evidence_policy", "serve_evidence": "*"},
            },
            **({"promotion": promotion} if promotion else {}),
        )
        (directory / "gate_sampled.py").write_text(SAMPLED_PY)
        monkeypatch.setenv("CALLS_FILE", str(pytester.path / "calls.txt"))
        return directory

    return make


def rejudged(record: RunRecord) -> RunRecord:
    """The record with its status and evidence worked out again from its own counts and requirement."""
    status = judged_status(run_status(record.complete, record.metrics, record.promotion), record.evaluator)
    return msgspec.structs.replace(record, status=status, evidence=evidence_of(record.metrics, record.promotion))


def upper(events: int, trials: int, confidence: float = 0.95) -> float:
    return 1.0 if events == trials else float(scipy_stats.beta.ppf(confidence, events + 1, trials - events))


def test_one_unsafe_trial_in_twenty_makes_the_case_flaky_and_the_run_s_bound_is_scipy_s(
    pytester: pytest.Pytester, sampled_experiment: Any, workers: tuple[str, ...]
) -> None:
    sampled_experiment()
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", *RUNS, *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # sampled gates and breaks a guardrail on c2
    result.assert_outcomes(passed=6 + 2, failed=1, xfailed=2)  # + the 2 candidates' run items (no requirement)
    result.stdout.fnmatch_lines([
        "*UNSAFE_CLAIM_SERVED: sampled served where the frozen label says ABSTAIN on case c2 * in 1 of 20 trials",
        "  flaky: sampled: 1 case(s); worst: c2 (19 of 20 passed, agreement 95%)",
        "  sampled vs baseline unsafe: fixed 1 (c3), broken 0; exact McNemar p = 1",
        "  clean vs baseline unsafe: fixed 2 (c2, c3), broken 0; exact McNemar p = 0.5",
        "  decision: PROMOTE clean -> canary_candidate *",
    ])
    calls = (pytester.path / "calls.txt").read_text().split("\n")
    assert sorted(filter(None, calls)) == sorted(f"c{i} {t}" for i in (1, 2, 3) for t in range(20))

    runs = runs_by_template(pytester.path / ".llmgate")
    sampled, clean = runs["sampled"], runs["clean"]
    assert sampled["status"] == "REJECT_UNSAFE_SERVE" and "evidence" not in sampled
    assert sampled["params"]["trials"] == "20"
    entries = {entry["case_id"]: entry for entry in sampled["cases"]}
    c2 = entries["c2"]
    assert c2["outcome"] == "UNSAFE_CLAIM_SERVED" and c2["predicted_route"] == "SERVE"
    assert (c2["flaky"], c2["passed_trials"], c2["unsafe_trials"], c2["unnecessary_trials"]) == (True, 19, 1, 0)
    assert c2["agreement"] == 0.95 and c2["unsafe_trial_rate"] == 0.05 and len(c2["trial_routes"]) == 20
    assert "flaky" not in entries["c1"] and entries["c1"]["passed_trials"] == 20

    metrics = sampled["metrics"]
    assert (metrics["trial_count"], metrics["unsafe_trials"], metrics["unnecessary_trials"],
            metrics["flaky_count"], metrics["confidence"]) == (60, 1, 0, 1, 0.95)
    assert metrics["unsafe_rate"] == round(1 / 60, 6)
    assert metrics["unsafe_rate_upper"] == pytest.approx(upper(1, 60), rel=1e-9)
    assert metrics["unnecessary_rate_upper"] == pytest.approx(upper(0, 60), rel=1e-9)
    assert sampled["suite_metrics"]["main"]["unsafe_rate_upper"] == metrics["unsafe_rate_upper"]
    # the unit of evidence is the case: 1 of 3 judged cases served unsafely in some trial
    assert (metrics["judged_count"], metrics["unsafe_case_rate"], metrics["unnecessary_case_rate"]) == (
        3, round(1 / 3, 6), 0.0)
    assert metrics["unsafe_case_rate_upper"] == pytest.approx(upper(1, 3), rel=1e-12)
    assert metrics["unnecessary_case_rate_upper"] == pytest.approx(upper(0, 3), rel=1e-12)
    assert clean["metrics"]["unsafe_rate_upper"] == pytest.approx(upper(0, 60), rel=1e-9)
    assert clean["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"

    # The paired comparison: the p-value is statsmodels' on the same 2x2 table.
    baseline_id = runs["unsafe"]["run_id"]
    for run in (sampled, clean):
        (comparison,) = run["comparisons"]
        assert comparison["baseline_run_id"] == baseline_id
        table = [[comparison["both_pass"], len(comparison["broken"])],
                 [len(comparison["fixed"]), comparison["both_fail"]]]
        assert comparison["p_value"] == pytest.approx(contingency.mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert (sampled["comparisons"][0]["fixed"], sampled["comparisons"][0]["both_fail"]) == (["c3"], 1)
    assert "comparisons" not in runs["unsafe"]
    (experiment,) = read_report(pytester.path / ".llmgate")["experiments"]
    summaries = {run["template_id"]: run for run in experiment["runs"]}
    assert summaries["clean"]["comparisons"] == clean["comparisons"]
    assert summaries["clean"]["metrics"] == clean["metrics"]


def test_with_max_unsafe_rate_a_clean_candidate_short_of_evidence_is_insufficient_and_says_how_many_more(
    pytester: pytest.Pytester, sampled_experiment: Any
) -> None:
    sampled_experiment(max_unsafe_rate=0.01)
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", *RUNS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # 0 unsafe in 3 cases (of 60 case-trials): the 95% upper bound is 63.2% > 1%; 299 clean cases give 0.997%.
    assert upper(0, 299) <= 0.01 < upper(0, 298)
    result.stdout.fnmatch_lines([
        "  clean  *candidate  *0  *0  *100%  INSUFFICIENT_EVIDENCE",
        "  evidence: sampled: REJECT_UNSAFE_SERVE: unsafe-serve rate 1 of 3 cases, upper bound 86.5% at 95% "
        "confidence > 1% required: * more clean cases would meet it",
        "  evidence: clean: INSUFFICIENT_EVIDENCE: unsafe-serve rate 0 of 3 cases, upper bound 63.2% at 95% "
        "confidence > 1% required: 296 more clean cases would meet it",
        "  decision: NO_ELIGIBLE_CANDIDATE: no candidate run is ELIGIBLE_FOR_CANARY_REVIEW "
        "(INSUFFICIENT_EVIDENCE: clean)",
    ])
    out = pytester.path / ".llmgate"
    runs = runs_by_template(out)
    clean, sampled = runs["clean"], runs["sampled"]
    assert sampled["status"] == "REJECT_UNSAFE_SERVE"  # the observed guardrail comes first
    assert clean["status"] == "INSUFFICIENT_EVIDENCE"
    assert clean["promotion"]["max_unsafe_rate"] == 0.01 and "confidence" not in clean["promotion"]
    assert clean["evidence"] == {
        "confidence": 0.95, "max_unsafe_rate": 0.01, "met": False, "more_clean_cases": 296,
        "reason": "unsafe-serve rate 0 of 3 cases, upper bound 63.2% at 95% confidence > 1% required: "
                  "296 more clean cases would meet it",
    }
    (experiment,) = read_report(out)["experiments"]
    assert experiment["decision_status"] == "NO_ELIGIBLE_CANDIDATE"
    assert {run["template_id"]: run.get("evidence", {}).get("met") for run in experiment["runs"]} == {
        "unsafe": False, "sampled": False, "clean": False}

    # llmgate promote applies the same requirement from the stored records alone.
    code = llmgate(["promote", clean["run_id"], sampled["run_id"], "--dir", str(out)])
    assert code == 1

    # 100 trials a case ask the same 3 questions again: still 3 cases of evidence, not 300, and nothing is promoted.
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", *RUNS, "--llmgate-trials=100")
    result.stdout.fnmatch_lines([
        "llmgate: --llmgate-trials=100 does not apply to deterministic providers; asked once per case: "
        "unsafe (evidence_policy)",
        "  evidence: clean: INSUFFICIENT_EVIDENCE: unsafe-serve rate 0 of 3 cases, upper bound 63.2% "
        "at 95% confidence > 1% required: 296 more clean cases would meet it",
        "  decision: NO_ELIGIBLE_CANDIDATE: *",
    ])
    newest = max((out / "runs").glob("*.json"), key=lambda p: p.name)
    stored = json.loads(newest.read_text())
    assert stored["params"]["template_id"] == "clean" and stored["metrics"]["trial_count"] == 300
    assert llmgate(["promote", newest.stem, "--dir", str(out)]) == 1


def test_a_session_with_a_tiny_requirement_finishes_with_the_exact_number_of_cases(
    pytester: pytest.Pytester, sampled_experiment: Any
) -> None:
    # stop 36's statistics review: max_unsafe_rate 0.0000001 put the boundary within the float margin, and the
    # exact fallback (rationals of (1 - 1e-7) ** 3e7) did not finish; promote took the same path
    mpmath = pytest.importorskip("mpmath")
    sampled_experiment(max_unsafe_rate=0.0000001)
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=clean")
    out = pytester.path / ".llmgate"
    (run,) = runs_by_template(out).values()
    assert run["status"] == "INSUFFICIENT_EVIDENCE", result.stdout.str()
    total = 3 + run["evidence"]["more_clean_cases"]
    with mpmath.workdps(50):  # 0 events in N cases: the bound is at most 1e-7 when (1 - 1e-7) ** N <= 0.05
        clean = 1 - mpmath.mpf("1e-7")
        assert clean ** total <= mpmath.mpf("0.05") < clean ** (total - 1)
    assert llmgate(["promote", run["run_id"], "--dir", str(out)]) == 1


def test_promote_reports_the_evidence_of_stored_runs(
    pytester: pytest.Pytester, sampled_experiment: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sampled_experiment(max_unsafe_rate=0.02, max_unnecessary_rate=0.02, confidence=0.9)
    pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=clean")
    out = pytester.path / ".llmgate"
    (run,) = runs_by_template(out).values()
    # 0 of 3 cases at 90%: bound 53.6% > 2%; 114 clean cases give 1.999%: 111 more.
    assert upper(0, 114, 0.9) <= 0.02 < upper(0, 113, 0.9)
    assert (run["status"], run["evidence"]["more_clean_cases"]) == ("INSUFFICIENT_EVIDENCE", 111)
    capsys.readouterr()
    assert llmgate(["promote", run["run_id"], "--dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no promotion: NO_ELIGIBLE_CANDIDATE" in err
    assert ("evidence: clean: unsafe-serve rate 0 of 3 cases, upper bound 53.6% at 90% confidence > 2% "
            "required; unnecessary-abstention rate 0 of 3 cases, upper bound 53.6% at 90% confidence > 2% "
            "required: 111 more clean cases would meet it") in err

    # A stored record judged without a requirement is judged with the one it carries (here: added afterwards).
    path = out / "runs" / f"{run['run_id']}.json"
    record = read_run(path).record
    relaxed = msgspec.structs.replace(record, promotion=msgspec.structs.replace(
        record.promotion, max_unsafe_rate=0.7, max_unnecessary_rate=None, confidence=None))
    assert rejudged(relaxed).status is RunStatus.ELIGIBLE_FOR_CANARY_REVIEW
    assert rejudged(relaxed).evidence is not None and rejudged(relaxed).evidence.met  # type: ignore[union-attr]

    # Counts without judged_count (a record from before the case was the unit) hold no judged case: no
    # requirement is met by them, however many case-trials they carry.
    older = msgspec.structs.replace(relaxed, metrics=msgspec.structs.replace(
        record.metrics, judged_count=None, unsafe_case_rate=None, unsafe_case_rate_upper=None,
        unnecessary_case_rate=None, unnecessary_case_rate_upper=None))
    evidence = rejudged(older).evidence
    assert older.metrics.trial_count == 60 and evidence is not None and not evidence.met
    assert "0 of 0 cases" in evidence.reason and "more_clean_trials" not in msgspec.json.encode(evidence).decode()


def test_a_python_callable_without_trial_is_asked_n_times(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_experiment(templates={"counted": {"provider": "python", "callable": "gate_counted:route"}})
    (directory / "gate_counted.py").write_text(
        "import os\n"
        "def route(case, artifact):\n"
        "    with open(os.environ['CALLS_FILE'], 'a') as calls:\n"
        "        calls.write(case['case_id'] + '\\n')\n"
        "    return 'SERVE' if case['evidence_state'] == 'log' else 'ABSTAIN'\n"
    )
    monkeypatch.setenv("CALLS_FILE", str(pytester.path / "calls.txt"))
    result = pytester.runpytest("exp", "--llmgate-candidate=counted", "--llmgate-trials=5")
    assert result.ret == pytest.ExitCode.OK
    assert sorted((pytester.path / "calls.txt").read_text().split()) == ["c1"] * 5 + ["c2"] * 5
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    assert (run["metrics"]["trial_count"], run["metrics"]["flaky_count"], run["params"]["trials"]) == (10, 0, "5")


def test_evidence_policy_refuses_trials_naming_the_line(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment(templates={"policy": {"provider": "evidence_policy", "serve_evidence": ["log"], "trials": 3}})
    result = pytester.runpytest("exp", "--llmgate-candidate=policy")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*templates/policy.yaml:5: trials: evidence_policy is deterministic (every trial "
                                 "gives the same route), so trials do not apply; remove the key*"])


@pytest.mark.usefixtures("example")
def test_the_example_without_the_new_keys_prints_exactly_the_spec_s_table_and_decision(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", *THREE_RUNS)
    lines = result.stdout.lines
    start = lines.index("ci-claim-gate-repair (example_suites/ci-claim-gate-repair)")
    assert lines[start + 1:start + 5] == [
        "  template                     role       unsafe  unnecessary  exact  status",
        f"  {BASELINE}  baseline        2            0    50%  REJECT_UNSAFE_SERVE",
        f"  {FIX}         candidate       0            1    75%  REJECT_UNNECESSARY_ABSTENTION",
        f"  {FIX_B}       candidate       0            0   100%  ELIGIBLE_FOR_CANARY_REVIEW",
    ]
    decision = next(line for line in lines[start:] if line.startswith("  decision: "))
    assert decision.startswith(f"  decision: PROMOTE {FIX_B} -> canary_candidate (source run ")
    assert decision.endswith("; rollback ci-answerer-v1; requires production review and monitored canary)")
    runs = runs_by_template(pytester.path / ".llmgate")
    assert {t: r["status"] for t, r in runs.items()} == {
        BASELINE: "REJECT_UNSAFE_SERVE", FIX: "REJECT_UNNECESSARY_ABSTENTION", FIX_B: "ELIGIBLE_FOR_CANARY_REVIEW"}
    assert all("evidence" not in run for run in runs.values())


DETERMINISTIC_PY = """
def route(case, artifact, trial=0):
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
"""


def steady_experiment(make_experiment: MakeExperiment) -> None:
    """8 cases, a deterministic candidate asked 38 times each, and a requirement of at most 1% unsafe serves."""
    cases = [case(f"s{i}", "log", "SERVE") for i in range(4)] + [case(f"a{i}", "none", "ABSTAIN") for i in range(4)]
    directory = make_experiment(
        "exp", suites={"main": cases},
        templates={"steady": {"provider": "python", "callable": "gate_steady:route", "trials": 38}},
        promotion={"max_unsafe_rate": 0.01},
    )
    (directory / "gate_steady.py").write_text(DETERMINISTIC_PY)


def test_a_deterministic_candidate_asked_38_times_over_8_cases_is_8_cases_of_evidence_not_304(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # issue 24: "0 of 304 case-trials, upper bound 0.981 %, the evidence requirement is met" and a promotion
    steady_experiment(make_experiment)
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=steady")
    assert upper(0, 304) <= 0.01  # what counting case-trials would have claimed
    result.stdout.fnmatch_lines([
        "  evidence: steady: INSUFFICIENT_EVIDENCE: unsafe-serve rate 0 of 8 cases, upper bound 31.2% at 95% "
        "confidence > 1% required: 291 more clean cases would meet it",
        "  decision: NO_ELIGIBLE_CANDIDATE: no candidate run is ELIGIBLE_FOR_CANARY_REVIEW "
        "(INSUFFICIENT_EVIDENCE: steady)",
    ])
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    metrics = run["metrics"]
    assert (metrics["trial_count"], metrics["unsafe_trials"], metrics["judged_count"]) == (304, 0, 8)
    assert metrics["unsafe_rate_upper"] == pytest.approx(upper(0, 304), rel=1e-12)  # description only
    assert metrics["unsafe_case_rate_upper"] == pytest.approx(upper(0, 8), rel=1e-12)
    assert run["status"] == "INSUFFICIENT_EVIDENCE" and run["evidence"]["more_clean_cases"] == 291
    assert "more_clean_trials" not in run["evidence"]
    assert llmgate(["promote", run["run_id"], "--dir", str(pytester.path / ".llmgate")]) == 1


_CASE_FIGURES = ("judged_count", "unsafe_case_rate", "unsafe_case_rate_upper", "unnecessary_case_rate",
                 "unnecessary_case_rate_upper")


def test_a_record_from_before_judged_count_is_not_promoted_on_its_case_trials(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, capsys: pytest.CaptureFixture[str]
) -> None:
    # A record as written before the case was the unit: no judged_count in it or its redacted report (the report's
    # hash made to agree), ELIGIBLE on "0 of 304 case-trials". Unsigned, it is also what removing those fields
    # from a new record looks like: either way promote and verify judge its cases and refuse the status.
    steady_experiment(make_experiment)
    pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=steady")
    out = pytester.path / ".llmgate"
    (run,) = runs_by_template(out).values()

    def as_before(data: dict[str, Any]) -> None:
        for metrics in (data["metrics"], *data["suite_metrics"].values()):
            for name in _CASE_FIGURES:
                del metrics[name]

    report = out / "reports" / f"{run['run_id']}-redacted-eval.json"
    data = json.loads(report.read_text())
    as_before(data)
    report.write_text(json.dumps(data))
    record = out / "runs" / f"{run['run_id']}.json"
    data = json.loads(record.read_text())
    as_before(data)
    data["status"] = "ELIGIBLE_FOR_CANARY_REVIEW"
    data["evidence"] = {"confidence": 0.95, "max_unsafe_rate": 0.01, "met": True, "more_clean_trials": 0,
                        "reason": "unsafe-serve rate 0 of 304 case-trials, upper bound 0.981% at 95% confidence "
                                  "<= 1% required: the evidence requirement is met"}
    data["artifacts"][1]["sha256"] = hashlib.sha256(report.read_bytes()).hexdigest()
    record.write_text(json.dumps(data))

    words = ("status is ELIGIBLE_FOR_CANARY_REVIEW, but its cases give INSUFFICIENT_EVIDENCE (a record without "
             "judged_count, from before the case was the unit of evidence: its status counted repeated trials as "
             "evidence; run it again)")
    capsys.readouterr()
    assert llmgate(["promote", run["run_id"], "--dir", str(out)]) == 2
    assert words in capsys.readouterr().err
    assert llmgate(["verify", str(record)]) == 1
    assert words in capsys.readouterr().out


WOBBLY_PY = '''
def route(case, artifact, trial):
    right = "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
    wrong = trial < (1 if case["case_id"] == "c1" else 3)  # c1 wrong in 1 trial of 10, c2 in 3
    return ("ABSTAIN" if right == "SERVE" else "SERVE") if wrong else right
'''


def test_the_least_agreeing_flaky_case_is_named_first(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: the summary names the worst flaky cases (lowest agreement) first, not the first by id
    directory = make_experiment(templates={"wobbly": {"provider": "python", "callable": "wobbly:route", "trials": 10}})
    (directory / "wobbly.py").write_text(WOBBLY_PY)
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=wobbly")
    result.stdout.fnmatch_lines(["  flaky: wobbly: 2 case(s); worst: c2 (7 of 10 passed, agreement 70%), "
                                 "c1 (9 of 10 passed, agreement 90%)"])


def test_one_trial_asked_on_the_command_line_adds_no_deterministic_note(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # protects: the "does not apply to deterministic providers" note only when more than one trial is asked
    make_experiment()
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-trials=1")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*does not apply to deterministic providers*")


def test_with_two_requirements_the_clean_cases_still_needed_meet_both() -> None:
    # the figure is the stricter requirement's (49 more for 5%), not the laxer one's (4 more for 20%)
    promotion = Promotion(alias="a", rollback_artifact=None, limitation="l", max_unsafe_rate=0.05,
                          max_unnecessary_rate=0.2)
    counts = SimpleNamespace(judged_count=10, unsafe_claim_served=0, unnecessary_abstention=0)
    evidence = evidence_of(counts, promotion)
    assert evidence is not None and not evidence.met
    assert evidence.more_clean_cases == more_clean_cases(0, 10, 0.95, 0.05) == 49
    assert evidence.reason.endswith(": 49 more clean cases would meet it")


def test_a_bound_just_above_its_requirement_is_shown_with_the_digits_that_tell_them_apart() -> None:
    # 0 of 298 cases: the bound is 1.00024%, which three significant digits showed as "1% > 1% required"
    promotion = Promotion(alias="a", rollback_artifact=None, limitation="l", max_unsafe_rate=0.01)
    counts = SimpleNamespace(judged_count=298, unsafe_claim_served=0, unnecessary_abstention=0)
    evidence = evidence_of(counts, promotion)
    assert evidence is not None and not evidence.met
    assert "upper bound 1.0002% at 95% confidence > 1% required: 1 more clean cases" in evidence.reason
    counts.judged_count = 299  # met: three digits, as always
    assert "upper bound 0.997% at 95% confidence <= 1% required" in evidence_of(counts, promotion).reason


def test_a_case_that_errored_or_did_not_run_on_either_side_is_not_paired() -> None:
    # an ERROR or NOT_RUN has no pass or fail: it is never counted fixed, broken or a shared failure
    ok, unsafe, error, not_run = Outcome.PASS, Outcome.UNSAFE_CLAIM_SERVED, Outcome.ERROR, Outcome.NOT_RUN
    comparison = paired_comparison([("a", error), ("b", ok), ("c", ok), ("d", not_run), ("e", unsafe)],
                                   [("a", ok), ("b", error), ("c", unsafe), ("d", unsafe), ("e", not_run)],
                                   "run-1", "base")
    assert (comparison.fixed, comparison.broken, comparison.both_pass, comparison.both_fail) == (("c",), (), 0, 0)
    assert comparison.p_value == 1.0


def test_cases_that_repeat_another_case_s_input_are_named_in_a_note(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # an outside review padded a suite with copies of its cases under new ids: each counted as a new case of
    # evidence, with no word said. They still count (a suite is what its authors froze), and the session says so.
    def asked() -> dict[str, str]:  # a new dict each time: the YAML written has no alias
        return {"question": "why did the build fail?"}

    cases = [case("c1", "log", "SERVE", input=asked()), case("c2", "none", "ABSTAIN", input=asked()),
             case("c3", "log", "SERVE", input={"question": "other"})]
    copies = [case("copy1", "log", "SERVE", input=asked()), case("copy2", "log", "SERVE", input=asked())]
    make_experiment(suites={"main": cases, "more": copies})
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    note = ("llmgate: exp: 2 case(s) repeat the input and evidence of another case (more/copy1 and more/copy2 repeat "
            "main/c1): each counts as a case of evidence, and the confidence bounds assume independent cases")
    result.stdout.fnmatch_lines([note])
    assert note in read_report(pytester.path / ".llmgate")["notes"]
    make_experiment(suites={"main": cases})  # the same input with other evidence is another question
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    assert "repeat the input" not in result.stdout.str()
