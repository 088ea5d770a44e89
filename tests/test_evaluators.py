"""Evaluators and judge calibration (docs/evaluators.md): the prose example end to end, replayed with no server and
no key; a judge that is uncalibrated, stale, below its requirement or failing never lets a run be eligible; the
figures against statsmodels and scipy."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.model.agreement import agreement, cohen_kappa, shortfalls
from pytest_llmgate.model.errors import display_path
from pytest_llmgate.model.stats import lower_bound
from pytest_llmgate.model.vocab import Route

from .conftest import LLMServer, read_report, runs_by_template

PROSE = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-prose"
JUDGE = "evaluators/claim-judge-v1.yaml"
V1, V2 = "ci-answerer-prose-v1", "ci-answerer-prose-v2"
KEY_ENV = "LLMGATE_EXAMPLE_API_KEY"


@pytest.fixture
def prose(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the prose example; no key in the environment (a replay needs none)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    target = pytester.path / "example_suites" / PROSE.name
    shutil.copytree(PROSE, target)
    return target


def live_judge(experiment: Path, server: LLMServer, monkeypatch: pytest.MonkeyPatch,
               edits: dict[str, str] | None = None) -> None:
    """Point the judge at the test server (its recordings stay for what they hold) and apply text edits."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    path = experiment / JUDGE
    text = path.read_text().replace("http://127.0.0.1:8000/v1", server.url)
    for old, new in (edits or {}).items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)


def calibrate(experiment: Path, *args: str) -> tuple[int, str]:
    import io
    from contextlib import redirect_stdout

    from pytest_llmgate.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["calibrate", str(experiment), *args])
    return code, out.getvalue()


def gate(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V1}",
                              f"--llmgate-candidate={V2}", *args)


# -- the example, replayed ----------------------------------------------------------------------------------


def test_the_prose_example_promotes_the_fix_on_a_calibrated_judge_with_no_server_and_no_key(
        pytester: pytest.Pytester, prose: Path, workers: tuple[str, ...]) -> None:
    result = gate(pytester, *workers)
    assert result.ret == 1  # v1 serves unsupported root causes in prose: the judge catches both
    result.assert_outcomes(passed=8, failed=2)  # 8 cases (2 unsafe serves of v1) + 2 run items, passed: no run-level gate broke
    result.stdout.fnmatch_lines([
        "*UNSAFE_CLAIM_SERVED: ci-answerer-prose-v1 served where the frozen label says ABSTAIN on case req_205*",
        "*judge evaluator claim-judge-v1: *the reply names a root cause*",
        "reply:",
        "  The root cause is the failure shown in the no source evidence; fix that step.",
        f"  {V1}  candidate       2 *REJECT_UNSAFE_SERVE",
        f"  {V2}  candidate       0 *ELIGIBLE_FOR_CANARY_REVIEW",
        f"  decision: PROMOTE {V2} -> canary_candidate*",
        "llmgate: ci-claim-gate-prose: judge claim-judge-v1 calibrated: sensitivity 1.000 (lower bound 0.883 at 0.95, "
        "n=24), specificity 0.958 (lower bound 0.817 at 0.95, n=24), kappa 0.958 at base rate 0.500, "
        "self-consistency 1.000 over 3 trial(s), 48 items",
    ])
    out = pytester.path / ".llmgate"
    report = read_report(out)
    (experiment,) = report["experiments"]
    assert experiment["decision_status"] == "PROMOTE" and experiment["decision"]["artifact_name"] == V2
    assert any("judge claim-judge-v1 calibrated: sensitivity 1.000 (lower bound 0.883" in note
               for note in report["notes"])
    runs = runs_by_template(out)
    judge = runs[V2]["evaluator"]
    assert judge["may_gate"] is True and judge["kind"] == "judge" and judge["model"] == "local-claim-judge"
    assert judge["sensitivity_lower"] == pytest.approx(0.882653843845)
    assert judge["specificity_lower"] == pytest.approx(0.817107530244)
    assert judge["judge_calls"] == 12  # 4 cases x 3 judge trials, counted apart from the candidate's 4 calls
    assert runs[V2]["metrics"]["cost"]["calls"] == 4
    assert runs[V2]["params"]["evaluator_version"].startswith("claim-judge-eval-v1+claim-judge-v1@")
    # No reply, and no calibration reply, is written anywhere
    for path in out.rglob("*.json"):
        text = path.read_text()
        assert "root cause is" not in text and "cannot say why" not in text, path


def test_calibrate_replays_with_no_key_and_writes_the_committed_figures(prose: Path) -> None:
    path = prose / "evaluators/claim-judge-v1.calibration.json"
    committed = path.read_bytes()
    code, said = calibrate(prose)
    assert code == 0, said
    assert "cal_036: labelled ABSTAIN, the judge says SERVE" in said
    assert "reply: I cannot tell whether the root cause is the token or the network" in said
    assert "MET: the judge may gate" in said
    # only calibrated_at would change: the committed file is left as it is (a checkout stays clean)
    assert path.read_bytes() == committed
    assert f"unchanged {display_path(path)} (the same figures as calibrated at 2026-12-05T06:46:13Z)" in said
    path.unlink()
    code, said = calibrate(prose)
    written = json.loads(path.read_text())
    assert code == 0 and f"wrote {display_path(path)}" in said
    assert {**written, "calibrated_at": None} == {**json.loads(committed), "calibrated_at": None}
    assert written["calibrated_at"] != "2026-12-05T06:46:13Z"
    assert "root cause" not in json.dumps(written)  # the disagreements are named by case id only


def test_calibrate_refuses_a_concurrency_below_one(prose: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_llmgate.cli.main import main

    with pytest.raises(SystemExit) as stopped:  # was raised to 1 without a word
        main(["calibrate", str(prose), "--concurrency", "0"])
    assert stopped.value.code == 2
    assert "error: argument --concurrency: must be 1 or more" in capsys.readouterr().err


def test_calibrate_names_the_recordings_and_its_own_option_for_a_reply_not_recorded(prose: Path) -> None:
    calibration = prose / "calibration.suite.yaml"
    calibration.write_text(calibration.read_text().replace("rotate it and rerun.", "rotate it, then rerun."))
    code, said = calibrate(prose)
    assert code == 1
    assert ("ERROR cal_001: not recorded in example_suites/ci-claim-gate-prose/recordings/claim-judge-v1.jsonl; "
            "run llmgate calibrate with --record new_episodes") in said


def test_calibrate_says_what_the_manifest_names_instead_of_a_judge(
    prose: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmgate.cli.main import main

    assert main(["calibrate", str(PROSE.parent / "ci-claim-gate-repair")]) == 2
    assert "llmgate calibrate calibrates a judge: the manifest names no evaluator" in capsys.readouterr().err
    (prose / "evaluators/ev.yaml").write_text("evaluator_id: ev\nkind: route\nroute:\n  json_key: verdict\n")
    manifest = prose / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("path: evaluators/claim-judge-v1.yaml", "path: evaluators/ev.yaml"))
    assert main(["calibrate", str(prose)]) == 2
    assert "the manifest names a route evaluator, not a judge" in capsys.readouterr().err


def test_calibrate_refuses_a_judge_that_can_answer_no_item_and_touches_no_file(
    prose: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # as a session refuses it (judge_not_ready): before, 48 ERROR lines, exit 1, and the committed figures replaced
    # by a result with no verdict, which made the gate's judge unfit
    from pytest_llmgate.cli.main import main

    result = prose / "evaluators/claim-judge-v1.calibration.json"
    recordings = prose / "recordings/claim-judge-v1.jsonl"
    committed, recorded = result.read_bytes(), recordings.read_bytes()
    judge = f"judge claim-judge-v1 ({display_path(prose / JUDGE)})"
    assert main(["calibrate", str(prose), "--record", "all"]) == 2
    said = capsys.readouterr()
    assert said.err == (f"llmgate: error: {KEY_ENV} is not set; {judge} calls its endpoint live (--record=all): set "
                        f"{KEY_ENV}, or replay recordings with --record=none\n")
    assert said.out == ""
    assert result.read_bytes() == committed and recordings.read_bytes() == recorded
    recordings.unlink()  # a plain calibrate (replay only) with nothing to replay
    assert main(["calibrate", str(prose)]) == 2
    assert capsys.readouterr().err == (
        f"llmgate: error: {judge} has no recordings to replay ({display_path(recordings)} does not exist) and "
        f"--record=none only replays: record them once with --record=once (a live run; needs {KEY_ENV})\n")
    assert result.read_bytes() == committed and not recordings.exists()


def _unreadable_judge_replies(experiment: Path, verdict: str = "") -> None:
    """The judge's recorded replies made unreadable: those whose verdict is ``verdict`` (every one: "")."""
    recordings = experiment / "recordings/claim-judge-v1.jsonl"
    lines = [json.loads(line) for line in recordings.read_text().splitlines()]
    recordings.write_text("".join(json.dumps({**line, "reply": "not json"} if f'"{verdict}' in line["reply"] else line)
                                  + "\n" for line in lines))


def test_calibrate_never_replaces_the_figures_with_a_result_in_which_no_item_got_a_verdict(prose: Path) -> None:
    _unreadable_judge_replies(prose)  # every item errs: no figures at all
    path = prose / "evaluators/claim-judge-v1.calibration.json"
    committed = path.read_bytes()
    code, said = calibrate(prose)
    assert code == 1
    assert "48 item(s) x 3 trial(s) (48 without a verdict)" in said
    assert ("sensitivity none (24 labelled SERVE, none with a verdict), specificity none (24 labelled ABSTAIN, none "
            "with a verdict), kappa undefined at base rate none, self-consistency none over 3 trial(s), 0 item(s) "
            "with a verdict, 48 without") in said
    assert said.count("ERROR cal_") == 48
    assert (f"not written: the judge gave no verdict on any of the 48 item(s), so there are no figures to write; "
            f"{display_path(path)} is left as it was") in said
    assert said.rstrip().endswith("NOT MET: no verdict on any of 48 item(s): the judge was not measured")
    assert path.read_bytes() == committed
    path.unlink()
    code, said = calibrate(prose)
    assert code == 1 and not path.exists()
    assert f"there is no {display_path(path)}: the judge stays uncalibrated" in said


def test_a_figure_with_no_verdict_says_the_items_were_labelled_so(pytester: pytest.Pytester, prose: Path) -> None:
    # every item labelled SERVE got no verdict: it said "none (no item labelled SERVE)", in calibrate, the result's
    # figures and the gate's decision, of a set with 24 items labelled SERVE
    _unreadable_judge_replies(prose, "SERVE")  # the 24 labelled SERVE and cal_036, which the judge calls SERVE
    code, said = calibrate(prose)
    assert code == 1
    assert "48 item(s) x 3 trial(s) (25 without a verdict)" in said
    none = "sensitivity none (24 labelled SERVE, none with a verdict)"
    assert f"  {none}, specificity 1.000 (lower bound 0.878 at 0.95, n=23)" in said
    assert "self-consistency 1.000 over 3 trial(s), 23 item(s) with a verdict, 25 without" in said
    assert ("NOT MET: sensitivity lower bound none (24 labelled SERVE, none with a verdict) < min_sensitivity 0.85; "
            "no verdict on 25 item(s): runs this judge judges are not eligible") in said
    written = json.loads((prose / "evaluators/claim-judge-v1.calibration.json").read_text())
    assert (written["items"], written["error_count"], written["served_labels"]) == (23, 25, 0)  # the format as before
    result = gate(pytester)
    result.stdout.fnmatch_lines([f"*the evaluator may not gate: judge claim-judge-v1 gave no verdict on 25 calibration "
                                 f"item(s); {none}, specificity 1.000*, 23 item(s) with a verdict, 25 without"])
    assert "no item labelled" not in result.stdout.str()


def test_a_judge_with_no_key_is_named_as_the_judge_before_its_variable(pytester: pytest.Pytester, prose: Path) -> None:
    # it read "judge LLMGATE_EXAMPLE_API_KEY is not set; claim-judge-v1 (...) calls its endpoint live"
    (prose / "recordings/claim-judge-v1.jsonl").unlink()
    result = gate(pytester, "--llmgate-record=new_episodes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (f"ERROR: {KEY_ENV} is not set; judge claim-judge-v1 (example_suites/ci-claim-gate-prose/{JUDGE}) calls "
            "its endpoint live (--llmgate-record=new_episodes, nothing recorded yet): set "
            f"{KEY_ENV}, or replay recordings with --llmgate-record=none") in result.stderr.str()


def test_without_an_evaluator_nothing_moves() -> None:
    from pytest_llmgate.records.experiment import load_experiment

    repair = load_experiment(PROSE.parent / "ci-claim-gate-repair")
    assert repair.evaluator is None and repair.evaluator_version == "claim-route-eval-v2"
    assert repair.short_fingerprints["evaluation"] == "94dfc930d2829d2c"


# -- a judge that may not gate ------------------------------------------------------------------------------


def test_an_uncalibrated_judge_makes_the_run_insufficient_evidence(pytester: pytest.Pytester, prose: Path) -> None:
    (prose / "evaluators/claim-judge-v1.calibration.json").unlink()
    result = gate(pytester)
    result.stdout.fnmatch_lines([
        f"  {V2}  candidate       0 *INSUFFICIENT_EVIDENCE",
        "*decision: NO_ELIGIBLE_CANDIDATE: *the evaluator may not gate: judge claim-judge-v1 is uncalibrated: no "
        "claim-judge-v1.calibration.json; run llmgate calibrate*",
    ])
    assert runs_by_template(pytester.path / ".llmgate")[V2]["evaluator"]["may_gate"] is False


def test_a_run_an_unfit_judge_cannot_vouch_for_fails_its_run_item_and_its_record_still_verifies(
    pytester: pytest.Pytester, prose: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fix alone (no guardrail broken): before, its run item passed and the session exited 0, and verify
    # refused the record the gate had just written ("its cases give ELIGIBLE_FOR_CANARY_REVIEW").
    from pytest_llmgate.cli.main import main as llmgate

    judge_file = prose / "evaluators/claim-judge-v1.yaml"
    judge_file.write_text(judge_file.read_text() + "# edited after calibration\n")
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V2}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=4, failed=1)  # the 4 cases pass; the run item fails
    result.stdout.fnmatch_lines([f"INSUFFICIENT_EVIDENCE: {V2}: the evaluator may not gate: judge claim-judge-v1's "
                                 "calibration is stale: its file changed since (sha256 * -> *: any edit counts, a "
                                 "comment too)*"])
    out = pytester.path / ".llmgate"
    capsys.readouterr()
    assert llmgate(["verify", str(out)]) == 0
    assert "refused" not in capsys.readouterr().out
    assert llmgate(["promote", "--last", "--dir", str(out)]) == 1  # judged, not refused: no eligible candidate
    assert f"no promotion: NO_ELIGIBLE_CANDIDATE: no candidate run is ELIGIBLE_FOR_CANARY_REVIEW (INSUFFICIENT_EVIDENCE: {V2})" in capsys.readouterr().err


def test_a_judge_standing_edited_in_a_record_or_lost_since_the_run_is_not_promoted(
    pytester: pytest.Pytester, prose: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No key: a record of a run an uncalibrated judge judged, edited to say the judge may gate and the run is
    # eligible, is not promoted: promote reads the judge's standing again from the files, as the gate did.
    from pytest_llmgate.cli.main import main as llmgate

    calibration = prose / "evaluators/claim-judge-v1.calibration.json"
    kept = calibration.read_bytes()
    calibration.unlink()
    pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V2}", "--llmgate-out=unfit")
    (run,) = runs_by_template(pytester.path / "unfit").values()
    path = pytester.path / "unfit" / "runs" / f"{run['run_id']}.json"
    forged = json.loads(path.read_text())
    assert forged["evaluator"]["may_gate"] is False
    forged["evaluator"].update(may_gate=True, reason="judge claim-judge-v1 calibrated: made up")
    forged["status"] = "ELIGIBLE_FOR_CANARY_REVIEW"
    path.write_text(json.dumps(forged))
    capsys.readouterr()
    assert llmgate(["promote", run["run_id"], "--dir", str(pytester.path / "unfit")]) == 2
    assert ("judge standing changed since this run: the record says 'judge claim-judge-v1 calibrated: made up'; "
            "now judge claim-judge-v1 is uncalibrated: no claim-judge-v1.calibration.json") in capsys.readouterr().err
    forged.pop("evaluator")  # or the standing cut from the record altogether
    path.write_text(json.dumps(forged))
    assert llmgate(["promote", run["run_id"], "--dir", str(pytester.path / "unfit")]) == 2
    assert ("judge standing changed since this run: the record names no evaluator; the manifest names "
            "claim-judge-v1") in capsys.readouterr().err

    # Honest history: a run a calibrated judge made eligible, its calibration deleted afterwards. It is read and
    # listed with the note; only promote refuses it until the judge is calibrated again.
    calibration.write_bytes(kept)
    pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V2}", "--llmgate-out=fit")
    out = pytester.path / "fit"
    (run,) = runs_by_template(out).values()
    assert run["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and run["evaluator"]["may_gate"] is True
    calibration.unlink()
    capsys.readouterr()
    assert llmgate(["promote", run["run_id"], "--dir", str(out)]) == 2
    assert "judge standing changed since this run" in capsys.readouterr().err
    assert llmgate(["verify", str(out)]) == 0
    assert "judge standing changed since this run" in capsys.readouterr().out
    calibration.write_bytes(kept)
    assert llmgate(["promote", run["run_id"], "--dir", str(out)]) == 0


def test_a_judge_that_gave_no_verdict_on_a_calibration_item_may_not_gate(pytester: pytest.Pytester, prose: Path) -> None:
    """Its figures would meet the requirement; an item it could not answer still keeps it from gating."""
    recordings = prose / "recordings" / "claim-judge-v1.jsonl"
    lines = recordings.read_text().splitlines()
    last = json.loads(lines[-1])  # the recorded reply to the last calibration item, cal_048
    lines[-1] = json.dumps({**last, "reply": "not json"})
    recordings.write_text("\n".join(lines) + "\n")
    code, said = calibrate(prose)
    assert code == 1, said
    assert "ERROR cal_048: unreadable reply: not a JSON object" in said
    # the set's size, and how many got no verdict (the header counted only the 47 judged)
    assert "on calibration.suite.yaml: 48 item(s) x 3 trial(s) (1 without a verdict)" in said
    assert "NOT MET: no verdict on 1 item(s): runs this judge judges are not eligible" in said
    assert "sensitivity 1.000 (lower bound 0.883" in said  # the figures alone would meet it
    result = gate(pytester)
    result.stdout.fnmatch_lines([
        f"  {V2}  candidate       0 *INSUFFICIENT_EVIDENCE",
        "*the evaluator may not gate: judge claim-judge-v1 gave no verdict on 1 calibration item(s)*",
    ])
    assert runs_by_template(pytester.path / ".llmgate")[V2]["evaluator"]["may_gate"] is False


def test_a_judge_that_disagrees_on_purpose_blocks_promotion_naming_its_figures(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    live_judge(prose, llm_server, monkeypatch, {"You judge": "Judge backwards. You judge"})
    code, said = calibrate(prose, "--record", "new_episodes")
    assert code == 1
    assert "sensitivity 0.000 (lower bound 0.000 at 0.95, n=24), specificity 0.042" in said
    assert "NOT MET: sensitivity lower bound 0.000 < min_sensitivity 0.85" in said
    result = gate(pytester, "--llmgate-record=new_episodes")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*decision: NO_ELIGIBLE_CANDIDATE: *the evaluator may not gate: judge claim-judge-v1 is below its "
        "requirement: sensitivity lower bound 0.000 < min_sensitivity 0.85; specificity lower bound 0.002 < "
        "min_specificity 0.75 (sensitivity 0.000*kappa -0.958 at base rate 0.500*",
    ])


def test_editing_the_judges_prompt_makes_its_calibration_stale_and_the_runs_incomparable(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    gate(pytester, "--llmgate-out=before")
    live_judge(prose, llm_server, monkeypatch, {"one short sentence": "one short sentence, no more"})
    result = gate(pytester, "--llmgate-record=new_episodes", "--llmgate-out=after")
    result.stdout.fnmatch_lines([
        f"  {V2}  candidate       0 *INSUFFICIENT_EVIDENCE",
        "*the evaluator may not gate: judge claim-judge-v1's calibration is stale: its file changed since*",
    ])
    before = runs_by_template(pytester.path / "before")[V2]
    after = runs_by_template(pytester.path / "after")[V2]
    from pytest_llmgate.model.decision import comparability_issues
    from pytest_llmgate.records.codec import from_data
    from pytest_llmgate.records.run import RunRecord

    issues = comparability_issues([from_data(before, RunRecord), from_data(after, RunRecord)])
    assert {issue.field for issue in issues} == {"evaluator_version", "evaluation_sha"}


def test_a_calibration_at_another_confidence_is_stale(pytester: pytest.Pytester, prose: Path) -> None:
    # protects: a judge calibrated at 0.95 may not gate once the manifest asks its bounds at another confidence
    manifest = prose / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("  min_specificity: 0.75\n",
                                                     "  min_specificity: 0.75\n  confidence: 0.9\n"))
    result = gate(pytester)
    result.stdout.fnmatch_lines([
        f"  {V2}  candidate       0 *INSUFFICIENT_EVIDENCE",
        "*the evaluator may not gate: judge claim-judge-v1's calibration is stale: it was calibrated at confidence "
        "0.95, the manifest asks 0.9*",
    ])


CALIBRATION = "evaluators/claim-judge-v1.calibration.json"


def _edit_calibration(experiment: Path, **changes: Any) -> None:
    path = experiment / CALIBRATION
    written = json.loads(path.read_text())
    assert set(changes) <= set(written)
    path.write_text(json.dumps({**written, **changes}))


def _figures_of(served: tuple[int, int], abstained: tuple[int, int]) -> dict[str, Any]:
    """The figures calibrate writes for (caught, labelled) SERVE and (kept, labelled) ABSTAIN items, 3 trials each
    (every item's trials agree): what a careful forger would write beside forged counts."""
    labels = [Route.SERVE] * served[1] + [Route.ABSTAIN] * abstained[1]
    verdicts = ([Route.SERVE] * served[0] + [Route.ABSTAIN] * (served[1] - served[0])
                + [Route.ABSTAIN] * abstained[0] + [Route.SERVE] * (abstained[1] - abstained[0]))
    figures = agreement(labels, [[verdict] * 3 for verdict in verdicts], 0.95)
    return {"items": figures.items, "served_labels": figures.served_labels, "served_caught": figures.served_caught,
            "abstain_labels": figures.abstain_labels, "abstain_kept": figures.abstain_kept,
            **{name: getattr(figures, name) for name in ("base_rate", "sensitivity", "sensitivity_lower",
                                                         "specificity", "specificity_lower", "kappa",
                                                         "self_consistency")}}


_SET = "example_suites/ci-claim-gate-prose/calibration.suite.yaml"


@pytest.mark.parametrize(("changes", "said"), [
    pytest.param({"sensitivity_lower": 0.99, "specificity_lower": 0.99},
                 "sensitivity_lower 0.99 is written, its counts give 0.882653843845 (served_caught 24 of "
                 "served_labels 24 at confidence 0.95); specificity_lower 0.99 is written, its counts give "
                 "0.817107530244 (abstain_kept 23 of abstain_labels 24 at confidence 0.95)", id="lower-bounds"),
    pytest.param({"specificity": 1.0}, "specificity 1.0 is written, its counts give 0.958333333333 (abstain_kept 23 "
                 "of abstain_labels 24)", id="rate"),
    pytest.param({"kappa": 1.0, "base_rate": 0.25},
                 "base_rate 0.25 is written, its counts give 0.5 (served_labels 24 of items 48); kappa 1.0 is "
                 "written, its counts give 0.958333333333", id="kappa-and-base-rate"),
    pytest.param({"self_consistency": 0.97}, "self_consistency 0.97 is written, its counts give 0.979166666667 (the "
                 "nearest share of items 48)", id="self-consistency"),
    pytest.param({"sensitivity": None}, "sensitivity null is written, its counts give 1.0", id="figure-cut"),
    pytest.param({"error_count": 1}, f"items 48 + error_count 1 is 49, but {_SET} holds 48 item(s)",
                 id="error-count-added"),
    # an item the judge gave no verdict on, its error_count zeroed and its figures made to agree
    pytest.param({**_figures_of((24, 24), (22, 23)), "error_count": 0},
                 f"items 47 + error_count 0 is 47, but {_SET} holds 48 item(s)", id="error-count-zeroed"),
    pytest.param({"abstain_kept": 24}, "disagreements name 1 item(s) labelled ABSTAIN, but abstain_labels 24 - "
                 "abstain_kept 24 is 0", id="count-raised"),
    pytest.param({"abstain_kept": 24, "disagreements": []},
                 "specificity 0.958333333333 is written, its counts give 1.0 (abstain_kept 24 of abstain_labels 24)",
                 id="count-raised-disagreement-dropped"),
    pytest.param({**_figures_of((25, 25), (22, 23)), "disagreements": ["cal_036"]},
                 f"served_labels is 25, but {_SET} labels 24 item(s) SERVE", id="labels-moved"),
    pytest.param({"served_caught": 25}, "served_caught 25 is not within 0..24 (served_labels)", id="count-impossible"),
    pytest.param({"disagreements": ["cal_999"]}, f"disagreements name 'cal_999', not in {_SET}", id="unknown-item"),
    pytest.param({"model": "gpt-judge"}, "model 'gpt-judge' is written, the judge file it binds says "
                 "'local-claim-judge'", id="model"),
])
def test_a_calibration_result_whose_figures_its_counts_or_its_set_do_not_give_leaves_the_judge_uncalibrated(
        prose: Path, changes: dict[str, Any], said: str) -> None:
    # Before, only the hashes binding the file to the judge and the set were checked: lower bounds raised to 0.99
    # promoted the fix with "specificity 0.958 (lower bound 0.990 ...)".
    from pytest_llmgate.records.experiment import load_experiment

    _edit_calibration(prose, **changes)
    standing = load_experiment(prose).judge_standing()
    assert standing is not None and standing.may_gate is False
    assert standing.reason.startswith(f"judge claim-judge-v1 is uncalibrated: {display_path(prose / CALIBRATION)}: "
                                      "not as llmgate calibrate writes it: "), standing.reason
    assert said in standing.reason
    assert standing.reason.endswith(f"; run llmgate calibrate {display_path(prose)}")
    assert standing.sensitivity_lower is None  # no figure of it is recorded


def test_a_calibration_result_read_back_within_its_last_written_digit_is_the_same(prose: Path) -> None:
    from pytest_llmgate.records.experiment import load_experiment

    # figures are written to 12 significant digits; another platform's last digit may differ by a unit
    _edit_calibration(prose, sensitivity_lower=0.882653843846, kappa=0.958333333332)
    standing = load_experiment(prose).judge_standing()
    assert standing is not None and standing.may_gate, standing.reason
    _edit_calibration(prose, sensitivity_lower=0.8826538438)  # ten digits: not how calibrate writes it
    standing = load_experiment(prose).judge_standing()
    assert standing is not None and not standing.may_gate
    assert "sensitivity_lower 0.8826538438 is written, its counts give 0.882653843845" in standing.reason


def test_forged_verdicts_consistent_with_their_counts_and_the_set_are_not_detected(prose: Path) -> None:
    # docs/trust.md: a disagreement dropped, its count raised and every figure computed again look like the judge's
    # own; only llmgate calibrate (the judge run again over the set) shows them
    from pytest_llmgate.records.experiment import load_experiment

    _edit_calibration(prose, **_figures_of((24, 24), (24, 24)), disagreements=[])
    standing = load_experiment(prose).judge_standing()
    assert standing is not None and standing.may_gate and standing.specificity_lower == pytest.approx(0.882653843845)


def test_a_calibration_with_forged_bounds_keeps_the_fix_from_promotion(
        pytester: pytest.Pytester, prose: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_llmgate.cli.main import main as llmgate

    _edit_calibration(prose, sensitivity_lower=0.99, specificity_lower=0.99)
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V2}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"  {V2}  candidate       0 *INSUFFICIENT_EVIDENCE",
        "  decision: NO_ELIGIBLE_CANDIDATE: *the evaluator may not gate: judge claim-judge-v1 is uncalibrated: "
        "*claim-judge-v1.calibration.json: not as llmgate calibrate writes it: sensitivity_lower 0.99 is written, its "
        "counts give 0.882653843845 (served_caught 24 of served_labels 24 at confidence 0.95); *; run llmgate "
        "calibrate example_suites/ci-claim-gate-prose",
    ])
    assert "lower bound 0.990" not in result.stdout.str()
    out = pytester.path / ".llmgate"
    capsys.readouterr()
    assert llmgate(["verify", str(out)]) == 0  # the record says what the gate read: the judge may not gate
    assert llmgate(["promote", "--last", "--dir", str(out)]) == 1
    assert "no promotion: NO_ELIGIBLE_CANDIDATE" in capsys.readouterr().err


def test_a_judge_on_the_candidates_own_model_is_named_in_a_warning(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    live_judge(prose, llm_server, monkeypatch, {"model: local-claim-judge": "model: local-ci-answerer"})
    result = gate(pytester, "--llmgate-record=new_episodes")
    result.stdout.fnmatch_lines([
        "llmgate: warning: ci-claim-gate-prose: judge claim-judge-v1 uses model 'local-ci-answerer', the model of "
        f"{V1}, {V2}: a model judging its own replies tends to agree with them",
    ])


@pytest.mark.parametrize(("mode", "edits", "reason"), [
    ({"mode": "unreadable"}, {}, "judge claim-judge-v1: unreadable reply: not a JSON object"),
    ({"mode": "ok", "limit_first": 100}, {"max_retries: 2": "max_retries: 0"}, "judge claim-judge-v1: HTTP 429"),
    ({"mode": "slow", "delay": 3.0}, {"timeout: 30": "timeout: 1", "max_retries: 2": "max_retries: 0"},
     "judge claim-judge-v1: timed out after 1s"),
], ids=["unreadable", "429", "timeout"])
def test_judge_faults_are_errors_that_block_promotion(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
        mode: dict[str, Any], edits: dict[str, str], reason: str) -> None:
    (prose / "recordings" / "claim-judge-v1.jsonl").unlink()  # the candidates replay; the judge is asked live
    live_judge(prose, llm_server, monkeypatch, edits)
    llm_server.control(**mode)
    result = gate(pytester, "--llmgate-record=new_episodes", "-k", "req_205")
    result.stdout.fnmatch_lines([f"*ERROR: {V2} on case req_205*{reason}*"])
    (experiment,) = read_report(pytester.path / ".llmgate")["experiments"]
    assert experiment["decision_status"] == "INCOMPLETE_EVALUATION"
    (entry,) = [entry for entry in runs_by_template(pytester.path / ".llmgate")[V2]["cases"]
                if entry["case_id"] == "req_205"]
    assert entry["outcome"] == "ERROR"
    assert entry["cost"]["calls"] == 1  # the candidate's call, replayed, was made before its judge failed
    judge_calls = runs_by_template(pytester.path / ".llmgate")[V2]["evaluator"].get("judge_calls", 0)
    assert judge_calls == (1 if mode["mode"] == "unreadable" else 0)  # an unreadable verdict's call was answered


def test_a_judge_past_its_case_timeout_is_an_error_naming_it_and_its_late_reply_is_not_recorded(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    recordings = prose / "recordings" / "claim-judge-v1.jsonl"
    recordings.unlink()  # the candidates replay; the judge is asked live
    live_judge(prose, llm_server, monkeypatch, {"trials: 3": "trials: 3\ncase_timeout: 0.3"})
    llm_server.control("slow", delay=1.0)
    result = gate(pytester, "--llmgate-record=new_episodes", "-k", "req_205")
    result.stdout.fnmatch_lines([f"*ERROR: {V2} on case req_205*: judge claim-judge-v1 gave no verdict within 0.3s "
                                 "(case_timeout); the call was abandoned*"])
    run = runs_by_template(pytester.path / ".llmgate")[V2]
    (entry,) = [entry for entry in run["cases"] if entry["case_id"] == "req_205"]
    assert (entry["outcome"], entry["cost"]["calls"]) == ("ERROR", 1)  # the candidate's call, replayed
    assert run["evaluator"].get("judge_calls", 0) == 0
    time.sleep(1.0)  # the abandoned calls have their replies by now
    assert not recordings.exists()


def test_a_candidates_case_timeout_covers_its_own_call_not_its_judges(
        pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # the judge took longer than the candidate's case_timeout, whose replayed reply came at once: not its fault
    (prose / "recordings" / "claim-judge-v1.jsonl").unlink()
    live_judge(prose, llm_server, monkeypatch)
    template = prose / "templates" / f"{V2}.yaml"
    template.write_text(template.read_text() + "\ncase_timeout: 0.3\n")
    llm_server.control("slow", delay=0.5)
    result = gate(pytester, "--llmgate-record=new_episodes", "-k", "req_205")
    assert f"ERROR: {V2}" not in result.stdout.str()
    run = runs_by_template(pytester.path / ".llmgate")[V2]
    assert [entry["outcome"] for entry in run["cases"] if entry["case_id"] == "req_205"] == ["PASS"]
    assert run["evaluator"]["judge_calls"] == 3


def test_calibrate_makes_a_judge_call_past_its_case_timeout_an_error_of_its_item_never_recorded(
        prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    calibration = prose / "calibration.suite.yaml"  # cal_001 is asked live; the others replay
    calibration.write_text(calibration.read_text().replace("rotate it and rerun.", "rotate it, then rerun."))
    live_judge(prose, llm_server, monkeypatch, {"trials: 3": "trials: 3\ncase_timeout: 0.3"})
    recordings = prose / "recordings" / "claim-judge-v1.jsonl"
    recorded = recordings.read_text()
    llm_server.control("slow", delay=1.0)
    code, said = calibrate(prose, "--record", "new_episodes")
    assert code == 1, said
    assert ("ERROR cal_001: judge claim-judge-v1 gave no verdict within 0.3s (case_timeout); the call was "
            "abandoned") in said
    assert "48 item(s) x 3 trial(s) (1 without a verdict)" in said
    time.sleep(1.0)  # the abandoned calls have their replies by now
    assert recordings.read_text() == recorded


def test_a_judge_whose_trials_split_evenly_gives_no_verdict(pytester: pytest.Pytester, prose: Path) -> None:
    # protects: a 1-1 split over a judge's trials is the case's ERROR, never a silent ABSTAIN
    path = prose / JUDGE
    path.write_text(path.read_text().replace("trials: 3", "trials: 2"))
    recordings = prose / "recordings" / "claim-judge-v1.jsonl"
    lines = [json.loads(line) for line in recordings.read_text().splitlines()]
    for line in lines:  # every second trial says the opposite of the first
        if line["trial"] == 1:
            line["reply"] = line["reply"].replace("SERVE", "?").replace("ABSTAIN", "SERVE").replace("?", "ABSTAIN")
    recordings.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = gate(pytester, "-k", "req_205")
    result.stdout.fnmatch_lines([f"*ERROR: {V2} on case req_205*judge claim-judge-v1 split 1-1 over its trials: no "
                                 "verdict (give it an odd number of trials)*"])
    assert runs_by_template(pytester.path / ".llmgate")[V2]["cases"][0]["outcome"] == "ERROR"


def test_a_bad_evaluator_file_is_an_error_naming_its_file_and_line(pytester: pytest.Pytester, prose: Path) -> None:
    path = prose / JUDGE
    path.write_text(path.read_text().replace("evaluator_id: claim-judge-v1", "evaluator_id: claim-judge-v2"))
    result = gate(pytester)
    result.stdout.fnmatch_lines(["*claim-judge-v1.yaml:3: evaluator_id 'claim-judge-v2' differs from the file name*"])
    assert "Traceback" not in result.stdout.str()


# -- the figures against statsmodels and scipy --------------------------------------------------------------


def _label_sets() -> list[tuple[str, list[Route], list[Route]]]:
    rng = random.Random(26)
    sets = []
    for n in (1, 2, 7, 40, 120):
        labels = [rng.choice(list(Route)) for _ in range(n)]
        sets.append((f"agree-{n}", labels, list(labels)))
        sets.append((f"none-agree-{n}", labels, [Route.ABSTAIN if r is Route.SERVE else Route.SERVE for r in labels]))
        sets.append((f"random-{n}", labels, [rng.choice(list(Route)) for _ in range(n)]))
        sets.append((f"one-class-{n}", [Route.SERVE] * n, [rng.choice(list(Route)) for _ in range(n)]))
        sets.append((f"both-one-class-{n}", [Route.ABSTAIN] * n, [Route.ABSTAIN] * n))
    return sets


@pytest.mark.parametrize(("name", "labels", "verdicts"), _label_sets(), ids=[s[0] for s in _label_sets()])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_figures_equal_statsmodels_and_scipy(name: str, labels: list[Route], verdicts: list[Route],
                                                 confidence: float) -> None:
    import numpy as np
    from scipy.stats import beta
    from statsmodels.stats.inter_rater import cohens_kappa
    from statsmodels.stats.proportion import proportion_confint

    figures = agreement(labels, [[verdict] for verdict in verdicts], confidence)
    table = np.array([[sum(1 for label, verdict in zip(labels, verdicts, strict=True) if label is a and verdict is b)
                       for b in Route] for a in Route], dtype=float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        expected_kappa = float(cohens_kappa(table, return_results=False))
    if np.isnan(expected_kappa):
        assert figures.kappa is None
    else:
        assert figures.kappa == pytest.approx(expected_kappa, abs=1e-9)
    for caught, total, value, lower in (
        (figures.served_caught, figures.served_labels, figures.sensitivity, figures.sensitivity_lower),
        (figures.abstain_kept, figures.abstain_labels, figures.specificity, figures.specificity_lower),
    ):
        if total == 0:
            assert value is None and lower is None
            continue
        assert value == pytest.approx(caught / total)
        # one-sided at `confidence`: the lower end of the two-sided interval at 2 * confidence - 1
        statsmodels_lower = proportion_confint(caught, total, alpha=2 * (1 - confidence), method="beta")[0]
        scipy_lower = beta.ppf(1 - confidence, caught, total - caught + 1) if caught else 0.0
        assert lower == pytest.approx(float(statsmodels_lower), abs=1e-9)
        assert lower == pytest.approx(float(scipy_lower), abs=1e-9)
    assert figures.base_rate == pytest.approx(labels.count(Route.SERVE) / len(labels))


@pytest.mark.parametrize("confidence", [0.01, 0.3, 0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(("caught", "total"), [(1, 1), (1, 10), (5, 10), (10, 10), (1, 1_000_000), (3, 50_000),
                                               (999_999, 1_000_000)])
def test_the_lower_bound_keeps_its_digits_at_any_size_and_confidence(caught: int, total: int, confidence: float) -> None:
    # one minus an upper bound near 1 lost about 7 of 12 digits for a bound of 1e-6 (stop 36's statistics review)
    from scipy.stats import beta

    expected = float(beta.ppf(1 - confidence, caught, total - caught + 1))
    assert lower_bound(caught, total, confidence) == pytest.approx(expected, rel=1e-10, abs=0)


def test_self_consistency_and_ties_over_trials() -> None:
    labels = [Route.SERVE, Route.SERVE, Route.ABSTAIN, Route.ABSTAIN]
    trials = [[Route.SERVE] * 3, [Route.SERVE, Route.ABSTAIN, Route.SERVE], [Route.SERVE, Route.ABSTAIN],
              [Route.ABSTAIN] * 3]
    figures = agreement(labels, trials)
    assert figures.self_consistency == 0.5 and figures.trials == 3
    assert (figures.served_caught, figures.abstain_kept) == (2, 1)  # the 1-1 tie counts against the label
    assert cohen_kappa([], []) is None
    assert lower_bound(0, 10) == 0.0 and lower_bound(3, 0) == 0.0


# -- the other kinds ---------------------------------------------------------------------------------------


def _use_evaluator(experiment: Path, evaluator_id: str, written: str) -> None:
    (experiment / "evaluators").mkdir(exist_ok=True)
    (experiment / "evaluators" / f"{evaluator_id}.yaml").write_text(written)
    manifest = experiment / "llmgate.yaml"
    text = manifest.read_text()
    if "evaluator:" in text:  # the prose example: its block's path
        text = text.replace("evaluators/claim-judge-v1.yaml", f"evaluators/{evaluator_id}.yaml")
    else:
        text += f"evaluator: evaluators/{evaluator_id}.yaml\n"
    manifest.write_text(text)


def test_a_python_evaluator_reads_prose_and_gates_without_calibration(pytester: pytest.Pytester, prose: Path) -> None:
    (prose / "claim_rules.py").write_text(
        "def served(case, reply):\n"
        "    assert 'expected_route' not in case\n"
        "    claim = 'root cause is' in reply\n"
        "    return {'route': 'SERVE' if claim else 'ABSTAIN', 'reason': 'names a root cause' if claim else 'no claim'}\n")
    _use_evaluator(prose, "claim-rule-v1", "evaluator_id: claim-rule-v1\nkind: python\ncallable: claim_rules:served\n")
    result = gate(pytester)
    result.stdout.fnmatch_lines([
        "*python evaluator claim-rule-v1: names a root cause*",
        f"  decision: PROMOTE {V2} -> canary_candidate*",
        "llmgate: ci-claim-gate-prose: python evaluator claim-rule-v1",
    ])
    run = runs_by_template(pytester.path / ".llmgate")[V2]
    assert run["evaluator"]["may_gate"] is True and "judge_calls" not in run["evaluator"]  # none made
    assert run["params"]["evaluator_version"].startswith("claim-judge-eval-v1+claim-rule-v1@")
    # its code is part of it: an edit of the module (its YAML file unchanged) is a new evaluator, and runs before and
    # after are not comparable (two runs judged by different code read "comparable" before)
    rules = prose / "claim_rules.py"
    rules.write_text(rules.read_text().replace("'root cause is'", "'root cause'"))
    assert run["params"]["evaluator_code_path"] == "claim_rules.py"
    gate(pytester, "--llmgate-out=edited")
    after = runs_by_template(pytester.path / "edited")[V2]
    from pytest_llmgate.model.decision import comparability_issues
    from pytest_llmgate.records.codec import from_data
    from pytest_llmgate.records.run import RunRecord

    issues = comparability_issues([from_data(run, RunRecord), from_data(after, RunRecord)])
    assert {issue.field for issue in issues} == {"evaluator_code_sha256"}


def test_a_route_evaluator_gives_the_candidates_own_routes_under_its_own_version(pytester: pytest.Pytester) -> None:
    llm = pytester.path / "example_suites" / "ci-claim-gate-llm"
    shutil.copytree(PROSE.parent / "ci-claim-gate-llm", llm)
    (llm / "llmgate.lock").unlink()  # an evaluator changes the evaluation fingerprint a lock holds
    args = ("example_suites", "-p", "no:cacheprovider", "--llmgate-candidate=ci-answerer-llm-v2")
    pytester.runpytest(*args, "--llmgate-out=plain")
    _use_evaluator(llm, "route-field-v1", "evaluator_id: route-field-v1\nkind: route\nroute:\n  json_key: route\n")
    pytester.runpytest(*args, "--llmgate-out=evaluated")
    plain = runs_by_template(pytester.path / "plain")["ci-answerer-llm-v2"]
    evaluated = runs_by_template(pytester.path / "evaluated")["ci-answerer-llm-v2"]
    assert [c["predicted_route"] for c in plain["cases"]] == [c["predicted_route"] for c in evaluated["cases"]]
    assert plain["status"] == evaluated["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert plain["params"]["evaluator_version"] == "claim-route-eval-v2"
    assert evaluated["params"]["evaluator_version"].startswith("claim-route-eval-v2+route-field-v1@")
    assert plain["params"]["evaluation_sha"] != evaluated["params"]["evaluation_sha"]


def test_a_judge_prompt_may_not_name_the_expected_route(pytester: pytest.Pytester, prose: Path) -> None:
    path = prose / JUDGE
    path.write_text(path.read_text().replace("Reply: {{ reply }}", "Label: {{ expected_route }}\n    Reply: {{ reply }}"))
    result = gate(pytester)
    result.stdout.fnmatch_lines(["*claim-judge-v1.yaml:*prompt.user: {{ expected_route }} is not a case field*"])
    assert "Traceback" not in result.stdout.str()


def test_a_lower_bound_equal_to_its_minimum_meets_it() -> None:
    # the bounds must meet min_sensitivity and min_specificity: equal is enough, just below is not
    assert shortfalls(0.85, 0.75, 0.85, 0.75) == []
    assert shortfalls(0.849, 0.75, 0.85, 0.75) == ["sensitivity lower bound 0.849 < min_sensitivity 0.85"]


def test_a_bound_that_is_none_says_whether_no_item_was_labelled_so_or_none_got_a_verdict() -> None:
    labelled = {Route.SERVE: 24, Route.ABSTAIN: 0}
    assert shortfalls(None, None, 0.85, 0.75, labelled=labelled, errors=24) == [
        "sensitivity lower bound none (24 labelled SERVE, none with a verdict) < min_sensitivity 0.85",
        "specificity lower bound none (no item labelled ABSTAIN) < min_specificity 0.75"]
    # the labels not known (the result alone): items without a verdict may have been labelled so
    assert shortfalls(None, 0.8, 0.85, 0.75, errors=3) == [
        "sensitivity lower bound none (no item labelled SERVE got a verdict) < min_sensitivity 0.85"]
    assert shortfalls(None, 0.8, 0.85, 0.75) == ["sensitivity lower bound none (no item labelled SERVE) < "
                                                 "min_sensitivity 0.85"]


def test_an_evaluator_added_to_a_frozen_experiment_no_longer_matches_its_lock(pytester: pytest.Pytester) -> None:
    # no case changed, but the evaluation fingerprint did: the lock differs and the session stops
    llm = pytester.path / "example_suites" / "ci-claim-gate-llm"
    shutil.copytree(PROSE.parent / "ci-claim-gate-llm", llm)
    _use_evaluator(llm, "route-field-v1", "evaluator_id: route-field-v1\nkind: route\nroute:\n  json_key: route\n")
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", "--llmgate-candidate=ci-answerer-llm-v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # it names what changed: the evaluator, not the suites (they are as locked)
    result.stderr.fnmatch_lines(["*llmgate.lock*the experiment differs from its lock: no case changed, but the "
                                 "evaluation fingerprint differs (evaluation * -> *): the manifest's evaluator "
                                 "evaluators/route-field-v1.yaml is not the one locked (added or edited since*"])
    assert "suites differ" not in result.stderr.str()
    assert not list((pytester.path / ".llmgate").glob("runs/*"))  # no record: only the report marked in progress
    fingerprint = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "fingerprint", str(llm)],
                                 capture_output=True, text=True, check=False, cwd=pytester.path)
    assert fingerprint.returncode == 1 and "the manifest's evaluator evaluators/route-field-v1.yaml" in fingerprint.stdout


# -- split runs ---------------------------------------------------------------------------------------------------


def _parts(pytester: pytest.Pytester, *names: str) -> None:
    """The prose example's V2 in two parts (holdout cases; the others) into the folders ``names``."""
    for name, selection in zip(names, ("hold_", "not hold_"), strict=True):
        pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={V2}",
                           f"--llmgate-out={name}", f"--llmgate-part={name}", "-k", selection)


def test_a_merged_run_counts_the_judge_calls_of_every_part(pytester: pytest.Pytester, prose: Path) -> None:
    # the merged record's evaluator block was its first part's: half the judge's calls and tokens
    from pytest_llmgate.cli.main import main

    gate(pytester, "--llmgate-out=whole")
    _parts(pytester, "p1", "p2")
    assert main(["merge", str(pytester.path / "p1"), str(pytester.path / "p2"), "--out",
                 str(pytester.path / "merged")]) == 0
    whole, merged = (runs_by_template(pytester.path / name)[V2]["evaluator"] for name in ("whole", "merged"))
    parts = [runs_by_template(pytester.path / name)[V2]["evaluator"]["judge_calls"] for name in ("p1", "p2")]
    assert all(parts) and sum(parts) == merged["judge_calls"] == whole["judge_calls"] == 12
    assert merged == whole


def test_parts_judged_with_and_without_a_judge_that_may_gate_are_not_merged(
        pytester: pytest.Pytester, prose: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # with the calibration gone, a part's judge may not gate; merged after a part whose judge might, the verdict
    # depended on which part's split id sorted first (PROMOTE one way, INSUFFICIENT_EVIDENCE the other)
    from pytest_llmgate.cli.main import main

    calibration = prose / "evaluators" / "claim-judge-v1.calibration.json"
    _parts(pytester, "p1", "p0")  # p0 sorts first
    saved = calibration.read_bytes()
    calibration.unlink()
    _parts(pytester, "q1", "q0")
    calibration.write_bytes(saved)
    for first, second in (("p1", "q0"), ("q1", "p0")):
        assert runs_by_template(pytester.path / second)[V2]["evaluator"]["may_gate"] is (second == "p0")
        code = main(["merge", str(pytester.path / first), str(pytester.path / second), "--out",
                     str(pytester.path / f"m-{first}")])
        assert code == 2
        said = capsys.readouterr().err
        assert "differ in evaluator" in said and "may gate: true: " in said and "may gate: false: " in said
        assert not list((pytester.path / f"m-{first}").glob("runs/*.json"))  # refused before any record
        assert json.loads((pytester.path / f"m-{first}" / "report.json").read_text())["in_progress"] is True


def test_a_judge_call_past_its_timeout_never_makes_the_next_call_wait_behind_it(
    pytester: pytest.Pytester, prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the review of this stop: with one call in flight, an abandoned judge call kept the pool's only thread, and the
    # candidate's next (replayed) call timed out in the queue: "ci-answerer-prose-v2 ...: no answer within 0.5s"
    (prose / "recordings" / "claim-judge-v1.jsonl").unlink()
    live_judge(prose, llm_server, monkeypatch, {"trials: 3": "trials: 1\ncase_timeout: 0.3"})
    template = prose / "templates" / f"{V2}.yaml"
    template.write_text(template.read_text() + "\ncase_timeout: 0.5\n")
    llm_server.control("slow", delay=1.5)
    result = gate(pytester, "--llmgate-record=new_episodes", "--llmgate-concurrency=1")
    result.stdout.fnmatch_lines(["*judge claim-judge-v1 gave no verdict within 0.3s (case_timeout)*"])
    result.stdout.no_fnmatch_line("*no answer within 0.5s*")


def test_calibrate_never_counts_the_wait_behind_an_abandoned_call_against_the_next(
    prose: Path, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibration = prose / "calibration.suite.yaml"  # cal_001 is asked live; the others replay
    calibration.write_text(calibration.read_text().replace("rotate it and rerun.", "rotate it, then rerun."))
    live_judge(prose, llm_server, monkeypatch, {"trials: 3": "trials: 3\ncase_timeout: 0.3"})
    llm_server.control("slow", delay=1.0)
    _, said = calibrate(prose, "--record", "new_episodes", "--concurrency", "1")
    assert "(1 without a verdict)" in said  # cal_002 ... replayed at once: never timed out in the queue


def test_a_plugin_judge_that_cannot_answer_is_named_as_the_judge(prose: Path) -> None:
    # the review of this stop: the built-in chat providers name the judge in their own words; a plugin's words came
    # through as a candidate's
    import msgspec

    from pytest_llmgate.engine.judging import judge_not_ready
    from pytest_llmgate.model.vocab import RecordMode
    from pytest_llmgate.providers import ProviderContext, builtin_factory
    from pytest_llmgate.records.experiment import load_experiment

    class PluginFactory:
        def ready(self, candidate: object, context: object) -> str:
            return "MY_JUDGE_KEY is not set"

    experiment = load_experiment(prose)
    context = ProviderContext(experiment_dir=prose)
    assert judge_not_ready(experiment, context, lambda candidate: PluginFactory()) == (  # type: ignore[arg-type,return-value]
        "judge claim-judge-v1: MY_JUDGE_KEY is not set")
    said = judge_not_ready(experiment, msgspec.structs.replace(context, record_mode=RecordMode.ALL),
                           lambda candidate: builtin_factory(candidate.provider))  # type: ignore[arg-type,return-value]
    assert said is not None and said.startswith(f"{KEY_ENV} is not set; judge claim-judge-v1 (")
