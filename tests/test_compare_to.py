"""The pull-request loop: a session compared with main's stored runs, ``llmgate diff``, and the Markdown comment."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from pytest_llmgate.cli.main import main as llmgate
from pytest_llmgate.model.decision import Promotion, decide
from pytest_llmgate.model.vocab import Outcome, Role, Route, RunStatus
from pytest_llmgate.records.comparison import compare
from pytest_llmgate.records.outcome import ExperimentOutcome, SessionResult
from pytest_llmgate.records.run import CaseEntry, Metrics, RunRecord
from pytest_llmgate.reports.markdown import COMMENT_LIMIT, markdown_summary

from .conftest import FIX, FIX_B, THREE_RUNS, MakeExperiment, read_report, runs_by_template


def _main_then_branch(pytester: pytest.Pytester, example: Path) -> pytest.RunResult:
    """Main's session into ``main/``; then the branch edits two templates (fix-b loses dependency errors, fix
    gains them) and runs compared with ``main/``."""
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    templates = example / "templates"
    fix_b = templates / f"{FIX_B}.yaml"
    fix_b.write_text(fix_b.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    fix = templates / f"{FIX}.yaml"
    fix.write_text(fix.read_text().replace("[test_failure_log]\n", "[test_failure_log, dependency_error]\n"))
    return pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=branch", "--llmgate-compare-to=main",
                              "--llmgate-markdown=comment.md")


def test_compare_to_names_exactly_the_fixed_and_broken_cases(
    pytester: pytest.Pytester, example: Path, workers: tuple[str, ...]
) -> None:
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main", *workers)
    templates = example / "templates"
    fix_b = templates / f"{FIX_B}.yaml"
    fix_b.write_text(fix_b.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    fix = templates / f"{FIX}.yaml"
    fix.write_text(fix.read_text().replace("[test_failure_log]\n", "[test_failure_log, dependency_error]\n"))
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=branch", "--llmgate-compare-to=main",
                                *workers)
    result.stdout.fnmatch_lines([
        "*llmgate: comparing with 3 stored run(s) of main*",
        "*compared with stored runs (--llmgate-compare-to):",
        f"    {FIX} (candidate):",
        f"*template {FIX}, edited): 0 broken, 1 fixed, 3 unchanged",
        "*holdout: unsafe +0, unnecessary -1, exact +50 pt, errors +0",
        "*fixed: hold_001 (UNNECESSARY_ABSTENTION -> PASS)",
        f"    {FIX_B} (candidate):",
        f"*template {FIX_B}, edited): 1 broken, 0 fixed, 3 unchanged",
        "*broken: hold_001 (PASS -> UNNECESSARY_ABSTENTION)",
    ])
    main_runs = runs_by_template(pytester.path / "main")
    runs = runs_by_template(pytester.path / "branch")
    changed = {template: [(c["case_id"], c["change"]) for c in run["comparison"].get("cases", [])]
               for template, run in runs.items()}
    assert changed == {FIX: [("hold_001", "fixed")], FIX_B: [("hold_001", "broken")],
                       "ci-answerer-v1.1-regression": []}
    comparison = runs[FIX_B]["comparison"]
    assert comparison["against_run_id"] == main_runs[FIX_B]["run_id"]
    assert comparison["matched_by"] == "template" and comparison["template_changed"] is True
    assert comparison["counts"] == {"broken": 1, "changed": 0, "fixed": 0, "new": 0, "removed": 0,
                                    "not_compared": 0, "unchanged": 3}
    assert comparison["metric_deltas"]["holdout"]["unnecessary_abstention"] == 1
    assert comparison["metric_deltas"]["regression"]["exact_route_rate"] == 0
    report = {run["template_id"]: run for run in read_report(pytester.path / "branch")["experiments"][0]["runs"]}
    assert report[FIX_B]["comparison"]["counts"]["broken"] == 1
    assert "cases" not in report[FIX_B]["comparison"]  # the report keeps the counts; the record the cases


def test_a_report_json_stands_for_its_runs(pytester: pytest.Pytester, example: Path) -> None:
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=main")
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", f"--llmgate-candidate={FIX}",
                                "--llmgate-out=branch", "--llmgate-compare-to=main/report.json")
    result.stdout.fnmatch_lines([
        "*llmgate: comparing with 1 stored run(s) of main/report.json",
        f"    {FIX_B} (candidate):",
        "*0 broken, 0 fixed, 4 unchanged",
        f"    {FIX} (candidate):",
        "*no earlier stored run of this template (nor, for a new template, of one its handoff names): nothing "
        "compared",
    ])


def test_a_new_template_is_compared_with_the_handoff_candidate(pytester: pytest.Pytester, example: Path) -> None:
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX}", "--llmgate-out=main")
    new = example / "templates" / "ci-answerer-v1.3.yaml"
    new.write_text((example / "templates" / f"{FIX_B}.yaml").read_text().replace(FIX_B, "ci-answerer-v1.3"))
    result = pytester.runpytest("example_suites", "--llmgate-candidate=ci-answerer-v1.3", "--llmgate-out=branch",
                                "--llmgate-compare-to=main")
    result.stdout.fnmatch_lines([
        f"*(template {FIX}, named by handoff.candidate_template_id, another file): 0 broken, 1 fixed, 3 unchanged",
    ])


def test_not_comparable_folders_are_refused_naming_the_field(pytester: pytest.Pytester, example: Path) -> None:
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    manifest = example / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("claim-route-eval-v2", "claim-route-eval-v3"))
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=branch", "--llmgate-compare-to=main",
                                "--llmgate-markdown=comment.md")
    result.stdout.fnmatch_lines([
        f"    {FIX_B} (candidate):",
        "*NOT COMPARABLE with run * differs in evaluator_version (claim-route-eval-v2 -> claim-route-eval-v3); "
        "nothing compared",
    ])
    comparison = runs_by_template(pytester.path / "branch")[FIX_B]["comparison"]
    assert comparison["comparable"] is False
    assert [issue["field"] for issue in comparison["comparability_issues"]] == ["evaluator_version"]
    assert "counts" not in comparison and "cases" not in comparison
    text = (pytester.path / "comment.md").read_text()
    assert "NOT COMPARABLE" in text and "| template | case | suite | change |" not in text
    # the same refusal from stored records
    assert llmgate(["diff", str(pytester.path / "main"), str(pytester.path / "branch")]) == 2


def test_the_sessions_own_last_report_is_a_compare_to_target(pytester: pytest.Pytester, example: Path) -> None:
    # the report was marked in progress before it was read: "the marker of a session that has not finished", exit 4
    first = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "-p", "no:cacheprovider")
    assert first.ret == pytest.ExitCode.OK
    again = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "-p", "no:cacheprovider",
                               "--llmgate-compare-to=.llmgate/report.json")
    assert again.ret == pytest.ExitCode.OK, again.stderr.str()
    again.stdout.fnmatch_lines(["llmgate: comparing with 1 stored run(s) of .llmgate/report.json"])
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["runs"][0]["comparison"] is not None


def test_a_missing_compare_to_folder_is_a_usage_error(pytester: pytest.Pytester, example: Path) -> None:
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-compare-to=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere*cannot be read*"])


def test_llmgate_diff_from_stored_records(
    pytester: pytest.Pytester, example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _main_then_branch(pytester, example)
    capsys.readouterr()
    assert llmgate(["diff", str(pytester.path / "main"), str(pytester.path / "branch" / "report.json")]) == 1
    out = capsys.readouterr().out
    assert f"{FIX_B} (candidate" in out and "broken: hold_001 (PASS -> UNNECESSARY_ABSTENTION)" in out
    assert "fixed: hold_001 (UNNECESSARY_ABSTENTION -> PASS)" in out
    assert llmgate(["diff", str(pytester.path / "main"), str(pytester.path / "branch"), "--limit", "0"]) == 1
    out = capsys.readouterr().out  # no case listed: how many, not "broken:  and 1 more"
    assert "broken: 1 case(s)" in out and "fixed: 1 case(s)" in out and "  and " not in out
    old = runs_by_template(pytester.path / "main")[FIX]["run_id"]
    new = runs_by_template(pytester.path / "branch")[FIX]["run_id"]
    assert llmgate(["diff", old, new, "--dir", str(pytester.path / "main")]) == 2  # not in main/: an error
    assert llmgate(["diff", str(pytester.path / "main" / "runs" / f"{old}.json"),
                    str(pytester.path / "branch" / "runs" / f"{new}.json")]) == 0
    assert "0 broken, 1 fixed, 3 unchanged" in capsys.readouterr().out


def test_the_comment_lists_broken_first(pytester: pytest.Pytester, example: Path) -> None:
    _main_then_branch(pytester, example)
    text = (pytester.path / "comment.md").read_text()
    assert text.startswith("<!-- pytest-llmgate summary -->\n")
    assert f"| `{FIX_B}` | candidate | 0 | 1 | 75% | REJECT_UNNECESSARY_ABSTENTION | 1 broken, 0 fixed, exact -25.0 pt |" in text
    broken = text.index(f"| `{FIX_B}` | `hold_001` | holdout | broken | PASS | UNNECESSARY_ABSTENTION |")
    fixed = text.index(f"| `{FIX}` | `hold_001` | holdout | fixed | UNNECESSARY_ABSTENTION | PASS |")
    assert broken < fixed


# -- 100,000 cases ---------------------------------------------------------------------------------
def _record(run_id: str, template_id: str, outcomes: list[Outcome]) -> RunRecord:
    cases = tuple(CaseEntry(suite="big", case_id=f"case_{i:06d}", slice_name="s", evidence_state="log",
                            expected_route=Route.SERVE, predicted_route=Route.SERVE, outcome=outcome)
                  for i, outcome in enumerate(outcomes))
    metrics = Metrics.of(cases)
    params = {"template_id": template_id, "template_sha256": run_id, "policy_id": "p", "evidence_version": "e",
              "evaluator_version": "v", "big_sha": "b" * 16, "evaluation_sha": "a" * 16}
    return RunRecord(run_id=run_id, experiment="big", role=Role.CANDIDATE, started_at="", finished_at="",
                     params=params, metrics=metrics, suite_metrics={"big": metrics}, tags={}, artifacts=(),
                     fingerprints={"big": "b" * 64, "evaluation": "a" * 64}, cases=cases, complete=True,
                     status=RunStatus.REJECT_UNSAFE_SERVE, promotion=Promotion(alias="a", rollback_artifact=None, limitation="l"), frozen=True)


class FakeExperiment:  # what the summary reads of an experiment
    name = "big"
    short_fingerprints = {"big": "b" * 16, "evaluation": "a" * 16}
    budget = None


def summary_of(record: RunRecord, **budget: int) -> str:
    """The Markdown summary of a session that wrote ``record`` alone."""
    outcome = ExperimentOutcome(experiment=FakeExperiment(), records=(record,),  # type: ignore[arg-type]
                                verdict=decide([record]), frozen=True)
    return markdown_summary(SessionResult(outcomes=(outcome,), report_path=None, run_paths=(), errors=()), **budget)


@pytest.mark.slow
def test_markdown_for_100000_cases_stays_under_the_comment_limit_and_counts_what_it_left_out() -> None:
    count = 100_000
    before = [Outcome.PASS if i % 2 else Outcome.UNSAFE_CLAIM_SERVED for i in range(count)]
    after = [Outcome.UNSAFE_CLAIM_SERVED if i % 2 else Outcome.PASS for i in range(count)]  # all change
    old, new = _record("r1", "t", before), _record("r2", "t", after)
    comparison = compare(old, new)
    assert comparison.counts["broken"] == comparison.counts["fixed"] == count // 2
    new = msgspec.structs.replace(new, comparison=comparison)
    text = summary_of(new)
    assert len(text) < COMMENT_LIMIT
    shown_changes = text.count("| broken | PASS |") + text.count("| fixed |")
    left = [line for line in text.splitlines() if "left out of this summary" in line]
    assert left[0].startswith(f"> {count - shown_changes} more changed cases left out")
    assert left[1].startswith(f"> {count // 2} more failing cases left out")  # none fit after the changes
    assert "| fixed |" not in text  # broken first: the broken rows alone fill the budget
    assert text.index("| broken |") < text.index("<details><summary>")
    assert "<details><summary>" in text and text.count("<details>") == text.count("</details>")
    json.dumps(text)  # plain text, any JSON API takes it


def test_a_not_run_case_is_not_compared() -> None:
    from pytest_llmgate.model.vocab import CaseChange, Outcome
    from pytest_llmgate.records.comparison import case_change

    assert case_change(Outcome.NOT_RUN, Outcome.PASS) is CaseChange.NOT_COMPARED
    assert case_change(Outcome.PASS, Outcome.NOT_RUN) is CaseChange.NOT_COMPARED


def test_a_session_narrowed_by_k_compares_its_figures_over_the_cases_both_ran(
    pytester: pytest.Pytester, example: Path
) -> None:
    # the fix's one failing case (hold_001, UNNECESSARY_ABSTENTION on main) left out: not an improvement
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=branch", "--llmgate-compare-to=main",
                                "-k", "not hold_001")
    comparison = runs_by_template(pytester.path / "branch")[FIX]["comparison"]
    assert comparison["counts"]["not_compared"] == 1 and comparison["counts"]["unchanged"] == 3
    for scope in ("all", "holdout", "regression"):
        delta = comparison["metric_deltas"][scope]
        assert (delta["unnecessary_abstention"], delta["not_run_count"], delta["exact_route_rate"]) == (0, 0, 0)
    result.stdout.fnmatch_lines([f"    {FIX} (candidate):", "*: 0 broken, 0 fixed, 1 not_compared, 3 unchanged",
                                 "        all: unsafe +0, unnecessary +0, exact +0 pt, errors +0"])


def test_compare_to_takes_the_newest_stored_run(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp", templates={"t": {"provider": "evidence_policy", "serve_evidence": "*"}})
    pytester.runpytest("exp", "--llmgate-candidate=t", "--llmgate-out=main")
    make_experiment("exp", templates={"t": {"provider": "evidence_policy", "serve_evidence": ["log"]}})
    pytester.runpytest("exp", "--llmgate-candidate=t", "--llmgate-out=main")
    newest = max(p.stem for p in (pytester.path / "main" / "runs").glob("*.json"))
    pytester.runpytest("exp", "--llmgate-candidate=t", "--llmgate-out=branch", "--llmgate-compare-to=main")
    comparison = runs_by_template(pytester.path / "branch")["t"]["comparison"]
    assert comparison["against_run_id"] == newest and not comparison.get("template_changed", False)


def test_the_counterpart_is_never_the_run_itself() -> None:
    # protects: `llmgate diff DIR DIR` compares each run with the stored run before it, not with itself
    from pytest_llmgate.records.comparison import counterpart

    older, newer = _record("r1", "t", [Outcome.PASS]), _record("r2", "t", [Outcome.PASS])
    assert counterpart(newer, [older, newer])[0] is older
    newest = _record("r3", "t", [Outcome.PASS])  # a run OLD holds is compared with the run before it, not after
    assert counterpart(newer, [older, newer, newest])[0] is older
    assert counterpart(older, [older, newer, newest])[0] is None


def test_a_run_stored_alone_is_not_compared_with_the_template_its_handoff_names() -> None:
    # protects: `llmgate diff DIR DIR` after one session compared each run with another template's run of that
    # same session through the handoff (the baseline 'broke' against the candidate, exit 1). The handoff names a
    # counterpart for a template the stored runs lack, not for one whose only stored run is the run itself.
    from pytest_llmgate.model.vocab import MatchedBy
    from pytest_llmgate.records.comparison import counterpart

    candidate = _record("r1", "fix", [Outcome.PASS])
    baseline = msgspec.structs.replace(_record("r2", "old", [Outcome.UNSAFE_CLAIM_SERVED]),
                                       tags={"candidate_template_id": "fix"})
    assert counterpart(baseline, [candidate, baseline]) == (None, MatchedBy.NONE)
    assert counterpart(baseline, [candidate]) == (candidate, MatchedBy.HANDOFF_CANDIDATE)  # a new template: yes


def test_llmgate_diff_of_a_folder_of_one_template_with_itself_is_not_a_run_against_itself(
    pytester: pytest.Pytester, example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one run on each side: the shortcut for two runs named compared the run with itself ('0 broken'), and after
    # an edit that broke hold_001 the newest run with itself again, exit 0; each note was printed twice
    folder = str(pytester.path / "main")
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=main")
    capsys.readouterr()
    assert llmgate(["diff", folder, folder]) == 0
    assert "no earlier stored run of this template" in capsys.readouterr().out
    first = runs_by_template(pytester.path / "main")[FIX_B]["run_id"]
    fix_b = example / "templates" / f"{FIX_B}.yaml"
    fix_b.write_text(fix_b.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=main")
    assert llmgate(["diff", folder, folder]) == 1
    out = capsys.readouterr().out
    assert f"against run {first} (template {FIX_B}, edited)" in out
    assert "broken: hold_001 (PASS -> UNNECESSARY_ABSTENTION)" in out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert notes and len(notes) == len(set(notes))


def test_llmgate_diff_of_a_folder_with_itself_compares_each_run_with_the_one_before_it(
    pytester: pytest.Pytester, example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the README's example once: no run has one before it, so nothing is compared and nothing broke (it printed
    # '2 broken, 1 fixed' and exited 1); after an edit and a second session, each template's newest run is
    # compared with its run of the first session, whatever the folder's newest runs are
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    folder = str(pytester.path / "main")
    capsys.readouterr()
    assert llmgate(["diff", folder, folder]) == 0
    out = capsys.readouterr().out
    assert out.count("no earlier stored run of this template") == 3 and "broken" not in out
    first = runs_by_template(pytester.path / "main")
    fix_b = example / "templates" / f"{FIX_B}.yaml"
    fix_b.write_text(fix_b.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    assert llmgate(["diff", folder, folder]) == 1
    out = capsys.readouterr().out
    for template in first:
        assert f"against run {first[template]['run_id']} (template {template}" in out
    assert "broken: hold_001 (PASS -> UNNECESSARY_ABSTENTION)" in out


def test_a_case_only_in_the_stored_run_is_removed() -> None:
    # protects: a case the run lacks (a merged run's missing case) is listed, not silently dropped
    from pytest_llmgate.model.vocab import CaseChange
    from pytest_llmgate.records.diff import CaseDelta

    comparison = compare(_record("r1", "t", [Outcome.PASS, Outcome.PASS]), _record("r2", "t", [Outcome.PASS]))
    assert comparison.counts[CaseChange.REMOVED] == 1 and comparison.counts[CaseChange.UNCHANGED] == 1
    assert comparison.cases == (CaseDelta(suite="big", case_id="case_000001", change=CaseChange.REMOVED,
                                          before=Outcome.PASS, after=None),)


def test_a_run_lacking_cases_is_compared_over_the_cases_both_ran_and_a_suite_with_none_has_no_delta() -> None:
    from pytest_llmgate.model.vocab import CaseChange

    before = _record("r1", "t", [Outcome.PASS])  # a merged run whose other part never came: no entry at all
    after = _record("r2", "t", [Outcome.PASS, Outcome.UNSAFE_CLAIM_SERVED])
    comparison = compare(before, after)
    assert comparison.counts[CaseChange.NEW] == 1 and comparison.counts[CaseChange.UNCHANGED] == 1
    assert comparison.metric_deltas["all"].unsafe_claim_served == 0  # was +1: a case only one run has

    def two_suites(record: RunRecord) -> RunRecord:  # case_000001 in a suite of its own
        cases = tuple(msgspec.structs.replace(entry, suite="other") if entry.case_id == "case_000001" else entry
                      for entry in record.cases)
        return msgspec.structs.replace(record, cases=cases, suite_metrics={
            suite: Metrics.of([entry for entry in cases if entry.suite == suite]) for suite in ("big", "other")})

    comparison = compare(two_suites(before), two_suites(after))
    assert set(comparison.metric_deltas) == {"all", "big"}  # nothing of "other" was compared: no "+0" for it


def test_a_cost_delta_keeps_micro_dollars_and_latency_is_compared_only_between_runs_that_called() -> None:
    # protects: money deltas to 10 digits; no latency delta against a run whose answers made no call
    from pytest_llmgate.model.costs import Price, Usage, case_cost, cost_metrics
    from pytest_llmgate.records.comparison import metric_delta
    from pytest_llmgate.records.diff import cost_delta_parts

    def metrics(tokens: int | None, latency: float) -> Metrics:
        usage = Usage(input_tokens=tokens, output_tokens=None if tokens is None else 0, latency_ms=latency)
        cost = cost_metrics([case_cost([usage], Price(1, 1).of)], [latency])
        return msgspec.structs.replace(Metrics.of(()), cost=cost)

    delta = metric_delta(metrics(12, 100.0), metrics(48, 130.0))  # $0.000012 -> $0.000048
    assert delta.cost_usd == pytest.approx(0.000036) and delta.latency_p50_ms == 30.0
    assert "cost +$0.000036" in cost_delta_parts(delta)
    in_process = metric_delta(metrics(None, 5.0), metrics(48, 130.0))  # before: a python candidate
    assert in_process.latency_p50_ms is None and in_process.latency_p95_ms is None


def test_latency_changes_and_listed_cases_read_as_written() -> None:
    # protects: a large negative latency change is whole milliseconds; "and N more" only past the limit
    from pytest_llmgate.records.diff import comparison_lines, ms_change

    assert (ms_change(-123.4), ms_change(12.0), ms_change(-0.42)) == ("-123ms", "+12ms", "-0.42ms")
    comparison = compare(_record("r1", "t", [Outcome.PASS] * 2), _record("r2", "t", [Outcome.UNSAFE_CLAIM_SERVED] * 2))
    (broken,) = [line for line in comparison_lines(comparison, limit=2) if "broken:" in line]
    assert broken.endswith("case_000001 (PASS -> UNSAFE_CLAIM_SERVED)")
    (broken,) = [line for line in comparison_lines(comparison, limit=1) if "broken:" in line]
    assert broken.endswith("(PASS -> UNSAFE_CLAIM_SERVED) and 1 more")


def test_a_short_comment_gives_its_rows_to_the_changed_cases_first() -> None:
    # protects: when the budget runs out, changed cases (broken first) keep their rows before failing cases
    old = _record("r1", "t", [Outcome.PASS] * 20)
    new = _record("r2", "t", [Outcome.UNSAFE_CLAIM_SERVED] * 20)
    new = msgspec.structs.replace(new, comparison=compare(old, new))
    text = summary_of(new, budget=3_000)
    assert "<details><summary>15 more changed cases</summary>" in text and "changed cases left out" not in text
    assert "> 19 more failing cases left out" in text


def test_llmgate_diff_of_folders_compares_each_experiment_s_run_and_an_incomparable_one_is_an_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, capsys: pytest.CaptureFixture[str]
) -> None:
    # two experiments with one template id: each is diffed; not comparable (exit 2) outranks a broken case (1)
    good = {"t": {"provider": "evidence_policy", "serve_evidence": ["log"]}}
    for name in ("a", "b"):
        make_experiment(name, templates=good)
        pytester.runpytest(name, "--llmgate-candidate=t", "--llmgate-out=main")
    make_experiment("a", templates=good, policy_id="p2")  # a: not comparable with main's run
    pytester.runpytest("a", "--llmgate-candidate=t", "--llmgate-out=branch")
    make_experiment("b", templates={"t": {"provider": "evidence_policy", "serve_evidence": []}})  # b: c1 broken
    pytester.runpytest("b", "--llmgate-candidate=t", "--llmgate-out=branch")
    capsys.readouterr()
    assert llmgate(["diff", str(pytester.path / "main"), str(pytester.path / "branch")]) == 2
    out = capsys.readouterr().out
    assert "a: t (candidate" in out and "b: t (candidate" in out
    assert "broken: c1 (PASS -> UNNECESSARY_ABSTENTION)" in out
