"""Stored records are checked, not trusted (issue 18, item 2): each hand edit is refused by ``llmgate promote``,
with and without a signing key; ``llmgate verify`` says which files hold up."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BASELINE,
    EVALUATION_SHA,
    FIX,
    FIX_B,
    THREE_RUNS,
    MadeRuns,
    MakeExperiment,
    llmgate,
    read_report,
    runs_by_template,
)

KEY = "test-signing-key-not-a-secret"
EXAMPLE = "example_suites/ci-claim-gate-repair"


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


Runs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Forgery:
    """A hand edit of stored files, the words that refuse it without a key, and whether only a key catches it."""

    name: str
    forge: Callable[[Path, Runs], list[str]]  # edits under the pytester root; returns the runs to promote
    words: str  # what promote says without a key ("" when only a signature catches it)
    changed: bool = False  # found as changed since the run: with a key, the signature's refusal is said instead


def _record(root: Path, runs: Runs, template: str) -> Path:
    return root / ".llmgate" / "runs" / f"{runs[template]['run_id']}.json"


def _all(runs: Runs) -> list[str]:
    return [runs[t]["run_id"] for t in (BASELINE, FIX, FIX_B)]


def metric_set_to_5(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX), lambda d: d["metrics"].update(unnecessary_abstention=5))
    return _all(runs)


def outcome_flipped(root: Path, runs: Runs) -> list[str]:
    def flip(data: dict[str, Any]) -> None:
        for entry in data["cases"]:
            if entry["outcome"] == "UNNECESSARY_ABSTENTION":
                entry["outcome"] = "PASS"
        data["metrics"].update(unnecessary_abstention=0, exact_route_rate=1.0)
        data["suite_metrics"]["holdout"].update(unnecessary_abstention=0, exact_route_rate=1.0)
        data["status"] = "ELIGIBLE_FOR_CANARY_REVIEW"
    edit(_record(root, runs, FIX), flip)
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def status_set_eligible(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX), lambda d: d.update(status="ELIGIBLE_FOR_CANARY_REVIEW"))
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def baseline_made_candidate(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, BASELINE), lambda d: d.update(role="candidate"))
    return _all(runs)


def cases_cut_to_one(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX), lambda d: d.update(cases=d["cases"][:1]))
    return _all(runs)


def cases_cut_consistently(root: Path, runs: Runs) -> list[str]:
    """One entry left, metrics, status and digest made to agree: the suites still give the cut away."""
    import hashlib

    def cut(data: dict[str, Any]) -> None:
        data["cases"] = [e for e in data["cases"] if e["outcome"] == "PASS"][:1]
        one = {"case_count": 1, "unsafe_claim_served": 0, "unnecessary_abstention": 0, "exact_route_rate": 1.0,
               "error_count": 0, "not_run_count": 0}
        data["metrics"] = one
        data["suite_metrics"] = {data["cases"][0]["suite"]: one}
        data["status"] = "ELIGIBLE_FOR_CANARY_REVIEW"
        data["cases_sha256"] = hashlib.sha256(data["cases"][0]["case_sha256"].encode()).hexdigest()
        data["artifacts"] = data["artifacts"][:1]  # the redacted report dropped from the record
    edit(_record(root, runs, FIX), cut)
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def cases_cut_keeping_the_digest(root: Path, runs: Runs) -> list[str]:
    """As above, the recorded digest of the whole case set kept: the entries left do not give it."""
    cases_cut_consistently(root, runs)
    edit(_record(root, runs, FIX), lambda d: d.update(cases_sha256=runs[FIX]["cases_sha256"]))
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def slice_relabelled(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX), lambda d: d["cases"][0].update(slice_name="another slice"))
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def case_hashes_dropped(root: Path, runs: Runs) -> list[str]:
    """Every case's hash taken out, the case set's digest kept."""
    edit(_record(root, runs, FIX), lambda d: [entry.pop("case_sha256") for entry in d["cases"]])
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def copied_record(root: Path, runs: Runs) -> list[str]:
    source = _record(root, runs, FIX_B)
    new_id = runs[FIX_B]["run_id"][:-8] + "deadbeef"
    copy = source.with_name(f"{new_id}.json")
    shutil.copy(source, copy)
    edit(copy, lambda d: (d.update(run_id=new_id), d["params"].update(template_id=FIX)))
    return [runs[BASELINE]["run_id"], new_id]


def copied_record_consistently(root: Path, runs: Runs) -> list[str]:
    """A copy of the eligible run passed off as a run of another template, every file and hash made to agree."""
    import hashlib

    out = root / ".llmgate"
    source = _record(root, runs, FIX_B)
    new_id = runs[FIX_B]["run_id"][:-8] + "deadbeef"
    report = out / "reports" / f"{new_id}-redacted-eval.json"
    shutil.copy(out / "reports" / f"{runs[FIX_B]['run_id']}-redacted-eval.json", report)
    edit(report, lambda d: d.update(run_id=new_id, template_id=FIX))
    template = f"templates/{FIX}.yaml"
    template_sha = hashlib.sha256((root / EXAMPLE / template).read_bytes()).hexdigest()

    def copy(data: dict[str, Any]) -> None:
        data["run_id"] = new_id
        data["params"].update(template_id=FIX, template_sha256=template_sha)
        data["artifacts"] = [{"path": template, "sha256": template_sha},
                             {"path": f"reports/{new_id}-redacted-eval.json",
                              "sha256": hashlib.sha256(report.read_bytes()).hexdigest()}]
    target = source.with_name(f"{new_id}.json")
    shutil.copy(source, target)
    edit(target, copy)
    return [runs[BASELINE]["run_id"], new_id]


def rollback_edited(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d["promotion"].update(rollback_artifact="attacker-choice"))
    return _all(runs)


def template_changed(root: Path, runs: Runs) -> list[str]:
    template = root / EXAMPLE / "templates" / f"{FIX_B}.yaml"
    template.write_text(template.read_text() + "# edited after the run\n")
    return _all(runs)


def redacted_report_changed(root: Path, runs: Runs) -> list[str]:
    report = root / ".llmgate" / "reports" / f"{runs[FIX_B]['run_id']}-redacted-eval.json"
    edit(report, lambda d: d["metrics"].update(exact_route_rate=0.5))
    return _all(runs)


def same_run_twice(root: Path, runs: Runs) -> list[str]:
    return [runs[BASELINE]["run_id"], runs[FIX_B]["run_id"], runs[FIX_B]["run_id"]]


def error_count_set_to_1(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d["metrics"].update(error_count=1))
    return _all(runs)


def template_sha256_edited(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d["params"].update(template_sha256="0" * 64))
    return _all(runs)


def redacted_report_changed_with_its_hash(root: Path, runs: Runs) -> list[str]:
    """The redacted report's figures edited, and the record's hash of it made to agree."""
    import hashlib

    report = root / ".llmgate" / "reports" / f"{runs[FIX_B]['run_id']}-redacted-eval.json"
    edit(report, lambda d: d["metrics"].update(exact_route_rate=0.5))
    sha256 = hashlib.sha256(report.read_bytes()).hexdigest()
    edit(_record(root, runs, FIX_B), lambda d: d["artifacts"][1].update(sha256=sha256))
    return _all(runs)


def record_copied_under_another_name(root: Path, runs: Runs) -> list[str]:
    source = _record(root, runs, FIX_B)
    new_id = runs[FIX_B]["run_id"][:-8] + "deadbeef"
    shutil.copy(source, source.with_name(f"{new_id}.json"))
    return [runs[BASELINE]["run_id"], new_id]


def nul_in_a_path(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d["artifacts"][0].update(path=f"temp\x00lates/{FIX_B}.yaml"))
    return _all(runs)


def fingerprints_emptied(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d.update(fingerprints={}))
    return _all(runs)


FORGERIES = [
    Forgery("a metric set to 5", metric_set_to_5, "metrics.unnecessary_abstention is 5, but its cases give 1"),
    Forgery("a case outcome flipped", outcome_flipped,
            "outcome is PASS, but expected SERVE and predicted ABSTAIN give UNNECESSARY_ABSTENTION"),
    Forgery("a rejected run set to ELIGIBLE", status_set_eligible,
            "status is ELIGIBLE_FOR_CANARY_REVIEW, but its cases give REJECT_UNNECESSARY_ABSTENTION"),
    Forgery("a baseline made a candidate", baseline_made_candidate,
            "its redacted report disagrees on role (the report says baseline)"),
    Forgery("cases cut to one entry", cases_cut_to_one, "metrics.case_count is 4, but its cases give 1"),
    Forgery("cases cut to one entry, consistently", cases_cut_consistently,
            "its cases lack 3 case(s) of the suites it names"),
    Forgery("cases cut to one entry, the digest kept", cases_cut_keeping_the_digest,
            "cases (1 entries) do not give the recorded cases_sha256: cases were removed, added or replaced"),
    Forgery("a case's slice relabelled", slice_relabelled, "the labels of 1 case(s) differ from the suites it names ("),
    Forgery("every case's hash dropped", case_hashes_dropped, "4 case(s) without case_sha256: "),
    Forgery("a copied record with a new run id and template id", copied_record,
            f"params.template_id is {FIX}, but its candidate file is templates/{FIX_B}.yaml"),
    Forgery("a copied record made consistent", copied_record_consistently, ""),  # only a signature catches it
    Forgery("an edited rollback_artifact", rollback_edited,
            "manifest changed since this run: its promotion block is not the manifest's", changed=True),
    Forgery("the template changed after the run", template_changed,
            f"template changed since this run: templates/{FIX_B}.yaml"),
    Forgery("the redacted report changed after the run", redacted_report_changed,
            "reports/{fix_b}-redacted-eval.json changed after the run"),
    Forgery("the same run given twice", same_run_twice, "is given twice; each run counts once"),
    Forgery("an error_count set to 1", error_count_set_to_1, "metrics.error_count is 1, but its cases give 0"),
    Forgery("params.template_sha256 edited", template_sha256_edited,
            "params.template_sha256 differs from the sha256 of its candidate file artifact"),
    Forgery("the redacted report changed with its hash", redacted_report_changed_with_its_hash,
            "its redacted report disagrees on metrics"),
    Forgery("a record copied under another run's name", record_copied_under_another_name,
            "run_id {fix_b} differs from its file name"),
    Forgery("a NUL byte in an artifact's path", nul_in_a_path,  # a traceback before
            f"'temp\\x00lates/{FIX_B}.yaml' is no file's path (it holds a NUL byte)"),
    Forgery("the fingerprints emptied", fingerprints_emptied,
            f"fingerprints has no 'evaluation', but params.evaluation_sha is {EVALUATION_SHA}"),
]

SIGNATURE_WORDS = "signature does not match (checked with LLMGATE_SIGNING_KEY)"


def _session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, key: str | None, *, fresh: bool = False
) -> Runs:
    """The example's three runs in the pytester folder, signed with ``key`` (or not), which stays set for the rest of
    the test; ``fresh``: a session of the test's own (new run ids), not a copy of the one made for the test session."""
    if key is None:
        monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    else:
        monkeypatch.setenv("LLMGATE_SIGNING_KEY", key)
    if not fresh:
        return made_runs.into(pytester, key)
    pytester.runpytest("example_suites", *THREE_RUNS).assert_outcomes(passed=9 + 2, failed=1, xfailed=2)  # + 2 run items
    return runs_by_template(pytester.path / ".llmgate")


@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.name for f in FORGERIES])
def test_a_forged_record_is_refused_by_promote_without_a_key(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, forgery: Forgery
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, None)
    assert llmgate(pytester.path, "promote", *_all(runs)).returncode == 0  # untouched, it promotes
    refs = forgery.forge(pytester.path, runs)
    done = llmgate(pytester.path, "promote", *refs)
    if not forgery.words:  # only a signature catches it: documented in docs/trust.md
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("llmgate: error: .llmgate/runs/")
    assert ": refused: " in done.stderr
    assert forgery.words.format(fix_b=runs[FIX_B]["run_id"]) in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.name for f in FORGERIES])
def test_a_forged_record_is_refused_by_promote_with_a_key(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, forgery: Forgery
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    assert runs[FIX_B]["signature"].startswith("hmac-sha256:")
    assert read_report(pytester.path / ".llmgate")["signature"].startswith("hmac-sha256:")
    assert llmgate(pytester.path, "promote", *_all(runs), key=KEY).returncode == 0
    refs = forgery.forge(pytester.path, runs)
    done = llmgate(pytester.path, "promote", *refs, key=KEY)
    assert done.returncode == 2, done.stdout
    assert ": refused: " in done.stderr
    record_edited = forgery.forge not in (template_changed, redacted_report_changed, same_run_twice,
                                          record_copied_under_another_name)
    if record_edited:
        assert SIGNATURE_WORDS in done.stderr
    if forgery.words and not (record_edited and forgery.changed):
        assert forgery.words.format(fix_b=runs[FIX_B]["run_id"]) in done.stderr


@pytest.mark.parametrize("added, cut, words", [
    ("  max_unsafe_rate: 0.01\n",  # 4 clean cases: INSUFFICIENT_EVIDENCE; the requirement cut from the record
     lambda d: (d["promotion"].pop("max_unsafe_rate"), d.pop("evidence")),
     "manifest changed since this run: its promotion block is not the manifest's"),
    ("budget: {max_latency_p95_ms: 0.0001}\n",  # REJECT_OVER_BUDGET; the budget cut from the record
     lambda d: d.update(budget=None, over_budget=[]),
     "manifest changed since this run: its budget is not the manifest's"),
], ids=["evidence requirement", "budget"])
def test_a_run_judged_by_a_requirement_cut_from_its_record_is_not_promoted(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, added: str,
    cut: Callable[[dict[str, Any]], None], words: str,
) -> None:
    # Without a key: the record's promotion block and budget are compared with the manifest's (they were not).
    manifest = pytester.path / EXAMPLE / "llmgate.yaml"
    manifest.write_text(manifest.read_text() + added)
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    assert run["status"] in ("INSUFFICIENT_EVIDENCE", "REJECT_OVER_BUDGET")
    edit(_record(pytester.path, {FIX_B: run}, FIX_B),
         lambda d: (cut(d), d.update(status="ELIGIBLE_FOR_CANARY_REVIEW")))
    done = llmgate(pytester.path, "promote", run["run_id"])
    assert done.returncode == 2 and words in done.stderr, done.stderr


def test_a_stored_budget_verdict_is_checked_by_the_limits_it_names_not_its_wording(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stored over_budget reasons were compared as text, so no release could reword a figure (an exponent, say)
    # without refusing older records; the limits each reason names are what is checked
    manifest = pytester.path / EXAMPLE / "llmgate.yaml"
    manifest.write_text(manifest.read_text() + "budget: {max_latency_p95_ms: 0.0001}\n")
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    assert run["status"] == "REJECT_OVER_BUDGET"
    record = _record(pytester.path, {FIX_B: run}, FIX_B)
    edit(record, lambda d: d.update(over_budget=["latency p95 1.5e-05 ms > max_latency_p95_ms 1e-04"]))
    assert llmgate(pytester.path, "verify", str(record)).returncode == 0
    edit(record, lambda d: d.update(over_budget=["max_cost_per_case_usd broken"]))
    done = llmgate(pytester.path, "verify", str(record))
    assert done.returncode == 1 and "over_budget is ['max_cost_per_case_usd broken'], but" in done.stdout
    edit(record, lambda d: d.update(over_budget=[], status="ELIGIBLE_FOR_CANARY_REVIEW"))
    done = llmgate(pytester.path, "promote", run["run_id"])
    assert done.returncode == 2 and "over_budget is [], but its cost figures and budget give" in done.stderr


def test_a_requirement_added_to_the_manifest_after_a_signed_run_keeps_it_from_promotion(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # With a key the record is intact, and was judged without the requirement: promote asks for a new run.
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    manifest = pytester.path / EXAMPLE / "llmgate.yaml"
    manifest.write_text(manifest.read_text() + "  max_unsafe_rate: 0.01\n")
    done = llmgate(pytester.path, "promote", *_all(runs), key=KEY)
    assert done.returncode == 2
    assert "manifest changed since this run: its promotion block is not the manifest's" in done.stderr
    listed = llmgate(pytester.path, "runs", key=KEY)  # history stays readable, with the note
    assert listed.returncode == 0 and "manifest changed since this run" in listed.stdout + listed.stderr


def test_unsigned_records_are_refused_when_a_key_is_set_and_a_wrong_key_is_named(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, None)
    done = llmgate(pytester.path, "promote", *_all(runs), key=KEY)
    assert done.returncode == 2
    assert "is not signed, and LLMGATE_SIGNING_KEY is set: unsigned files are refused" in done.stderr
    signed = _session(pytester, monkeypatch, made_runs, KEY)
    done = llmgate(pytester.path, "promote", *_all(signed), key="another key")
    assert done.returncode == 2 and SIGNATURE_WORDS in done.stderr
    assert llmgate(pytester.path, "promote", *_all(signed), key=KEY).returncode == 0


def test_two_runs_of_one_template_are_refused_not_a_tie(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    first = _session(pytester, monkeypatch, made_runs, None)
    second = _session(pytester, monkeypatch, made_runs, None, fresh=True)
    done = llmgate(pytester.path, "promote", first[FIX_B]["run_id"], second[FIX_B]["run_id"])
    assert done.returncode == 2
    assert f"refused: two runs of template {FIX_B} ({first[FIX_B]['run_id']}, {second[FIX_B]['run_id']}): " \
           "give one run per template" in done.stderr
    assert "TIE_REQUIRES_REVIEW" not in done.stderr + done.stdout
    compared = llmgate(pytester.path, "compare", first[FIX_B]["run_id"], second[FIX_B]["run_id"])
    assert compared.returncode == 0
    assert f"decision: refused: two runs of template {FIX_B}" in compared.stdout


def test_verify_names_what_holds_and_what_is_refused(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    done = llmgate(pytester.path, "verify", ".llmgate", key=KEY)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == 4  # three runs and the report
    assert done.stdout.splitlines()[-1] == "all verified"
    rollback_edited(pytester.path, runs)
    done = llmgate(pytester.path, "verify", ".llmgate", key=KEY)
    assert done.returncode == 1
    assert f"REFUSED .llmgate/runs/{runs[FIX_B]['run_id']}.json: refused: {SIGNATURE_WORDS}" in done.stdout
    assert done.stdout.splitlines()[-1] == "2 refused"  # the record, and the report whose decision rests on it
    unkeyed = llmgate(pytester.path, "verify", ".llmgate")
    assert unkeyed.stdout.startswith("LLMGATE_SIGNING_KEY is not set: signatures are not checked")
    # Without the key the record itself looks sound; the session report beside it still names the edit.
    assert f"ok .llmgate/runs/{runs[FIX_B]['run_id']}.json" in unkeyed.stdout
    assert "REFUSED .llmgate/report.json: refused: its decision is not what its run records give" in unkeyed.stdout
    # The runs folder itself is verified record by record; a folder with nothing to verify is an error, never
    # "all verified" (it was, even with a forged record in the runs folder given).
    in_runs = llmgate(pytester.path, "verify", ".llmgate/runs", key=KEY)
    assert in_runs.returncode == 1 and in_runs.stdout.splitlines()[-1] == "1 refused", in_runs.stdout
    (pytester.path / "empty").mkdir()
    for nothing in ("empty", EXAMPLE):
        done = llmgate(pytester.path, "verify", nothing, key=KEY)
        assert done.returncode == 2 and "all verified" not in done.stdout
        assert done.stderr == (f"llmgate: error: {nothing}: holds no run record or session report to verify (a "
                               "records folder holds runs/ and report.json)\n")
    assert "rollback attacker-choice" in unkeyed.stdout
    assert unkeyed.returncode == 1


def test_canary_refuses_a_report_whose_decision_was_edited(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    _session(pytester, monkeypatch, made_runs, None)
    report = pytester.path / ".llmgate" / "report.json"
    assert llmgate(pytester.path, "canary", str(report), "--unsafe-claims", "1").stdout == "ROLL_BACK_TO:ci-answerer-v1\n"
    edit(report, lambda d: d["experiments"][0]["decision"].update(rollback_artifact="attacker-choice"))
    done = llmgate(pytester.path, "canary", str(report), "--unsafe-claims", "1")
    assert done.returncode == 2
    assert "report.json: refused: its decision is not what its run records give (PROMOTE ci-answerer-v1.2-fix-b" \
           in done.stderr
    keyed = llmgate(pytester.path, "canary", str(report), "--unsafe-claims", "0", key=KEY)
    assert keyed.returncode == 2
    assert "report.json: refused: is not signed, and LLMGATE_SIGNING_KEY is set" in keyed.stderr


def test_runs_lists_the_good_records_and_names_a_truncated_one(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, None)
    bad = _record(pytester.path, runs, FIX)
    bad.write_bytes(bad.read_bytes()[:200])
    done = llmgate(pytester.path, "runs")
    assert done.returncode == 2
    assert len(done.stdout.splitlines()) == 3  # header, the baseline and fix-b
    assert FIX_B in done.stdout and f" {FIX} " not in done.stdout
    assert done.stderr.startswith(f"llmgate: error: .llmgate/runs/{bad.name}")
    assert "cannot be read as JSON" in done.stderr


def test_runs_when_runs_is_a_file_says_so(pytester: pytest.Pytester) -> None:
    (pytester.path / ".llmgate").mkdir()
    (pytester.path / ".llmgate" / "runs").write_text("not a folder")
    done = llmgate(pytester.path, "runs")
    assert done.returncode == 2
    assert done.stderr == ("llmgate: error: .llmgate/runs: is a file, not a folder: run records are kept in the "
                           "folder DIR/runs\n")


# -- issue 24, item 3: every path that reads a report, record or decision checks it as verify does -------------
def _tie(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, key: str | None) -> Runs:
    """Two eligible candidates of one experiment: the session's verdict is TIE_REQUIRES_REVIEW."""
    from .conftest import write_experiment

    write_experiment(pytester.path, "exp")
    if key is None:
        monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    else:
        monkeypatch.setenv("LLMGATE_SIGNING_KEY", key)
    pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good")
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "TIE_REQUIRES_REVIEW"
    return runs_by_template(pytester.path / ".llmgate")


def _drop_a_run(report: Path, template: str) -> None:
    edit(report, lambda d: d["experiments"][0].update(
        runs=[r for r in d["experiments"][0]["runs"] if r["template_id"] != template]))


@pytest.mark.parametrize("key", [None, KEY], ids=["no key", "with a key"])
def test_a_run_dropped_from_report_json_does_not_turn_a_tie_into_a_promotion(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    _tie(pytester, monkeypatch, key)
    assert llmgate(pytester.path, "promote", "--last", key=key).returncode == 1  # the tie, untouched
    _drop_a_run(pytester.path / ".llmgate" / "report.json", "also-good")
    words = SIGNATURE_WORDS if key else "its decision is not what its run records give (PROMOTE good"
    for command in (["promote", "--last", "--out", "d.json"], ["compare", "--last"]):
        done = llmgate(pytester.path, *command, key=key)
        assert done.returncode == 2, (command, done.stdout)
        assert done.stderr.startswith("llmgate: error: .llmgate/report.json: refused: ")
        assert words in done.stderr
    assert not (pytester.path / "d.json").exists()


@pytest.mark.parametrize("command", [
    ["runs"], ["compare", "--last"], ["promote", "--last"], ["diff", ".llmgate", ".llmgate/report.json"],
    ["canary", ".llmgate/report.json", "--unsafe-claims", "0"], ["verify", ".llmgate"],
], ids=lambda command: command[0])
def test_with_a_key_every_command_refuses_unsigned_records_and_reports(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, command: list[str]
) -> None:
    _session(pytester, monkeypatch, made_runs, None)
    done = llmgate(pytester.path, *command, key=KEY)
    assert done.returncode != 0
    assert "is not signed, and LLMGATE_SIGNING_KEY is set: unsigned files are refused" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_compare_to_with_a_key_refuses_unsigned_stored_runs(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    monkeypatch.setenv("LLMGATE_SIGNING_KEY", KEY)
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-compare-to=main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*main/runs/*.json: refused: is not signed, and LLMGATE_SIGNING_KEY is set*"])


def test_canary_refuses_a_decision_whose_run_is_not_beside_it(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    assert llmgate(pytester.path, "promote", "--last", "--out", "d.json", key=KEY).returncode == 0
    done = llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0", key=KEY)  # its run in .llmgate/runs
    assert (done.returncode, done.stdout) == (0, "CONTINUE_CANARY_MONITORING\n")
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(pytester.path / "d.json", elsewhere / "d.json")
    done = llmgate(elsewhere, "canary", "d.json", "--unsafe-claims", "0", key=KEY)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"llmgate: error: d.json: unverifiable: its run {runs[FIX_B]['run_id']} is not in "
                           ".llmgate/runs (keep the decision with its records folder, or name it with --dir)\n")
    named = llmgate(elsewhere, "canary", "d.json", "--unsafe-claims", "0", "--dir", "../.llmgate", key=KEY)
    assert (named.returncode, named.stdout) == (0, "CONTINUE_CANARY_MONITORING\n")
    # a decision that is not what its run gives: another template's name on the eligible run
    edit(pytester.path / "d.json", lambda d: d.update(artifact_name=FIX))
    done = llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0")
    assert done.returncode == 2
    assert f"d.json: refused: it is not what its run {runs[FIX_B]['run_id']} gives (artifact_name)" in done.stderr
    # a decision resting on a rejected run, its names made to agree with that run
    edit(pytester.path / "d.json", lambda d: d.update(source_run_id=runs[FIX]["run_id"], artifact_name=FIX))
    done = llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert (f"d.json: refused: it is not what its run {runs[FIX]['run_id']} gives (its run is a candidate run with "
            "status REJECT_UNNECESSARY_ABSTENTION)") in done.stderr


# -- issue 24, item 4: a missing companion file is never a skipped check ------------------------------------------
def _redacted_report_deleted(root: Path, runs: Runs, template: str) -> None:
    (root / ".llmgate" / "reports" / f"{runs[template]['run_id']}-redacted-eval.json").unlink()


def outcome_flipped_consistently(root: Path, runs: Runs) -> list[str]:
    """fix's one unnecessary abstention made a served PASS (prediction, outcome, figures, status)."""
    import msgspec

    from pytest_llmgate.model.decision import Promotion
    from pytest_llmgate.model.evidence import confidence_of
    from pytest_llmgate.records.run import CaseEntry, Metrics

    def flip(data: dict[str, Any]) -> None:
        for entry in data["cases"]:
            if entry["outcome"] == "UNNECESSARY_ABSTENTION":
                entry.update(outcome="PASS", predicted_route="SERVE")
        cases = msgspec.convert(data["cases"], list[CaseEntry])
        confidence = confidence_of(msgspec.convert(data["promotion"], Promotion))
        for figures, entries in [(data["metrics"], cases), *((data["suite_metrics"][suite], [
                e for e in cases if e.suite == suite]) for suite in data["suite_metrics"])]:
            figures.update({k: v for k, v in msgspec.to_builtins(Metrics.of(entries, confidence)).items()
                            if k != "cost"})
        data["status"] = "ELIGIBLE_FOR_CANARY_REVIEW"
    edit(_record(root, runs, FIX), flip)
    return [runs[BASELINE]["run_id"], runs[FIX]["run_id"]]


def experiment_path_to_nowhere(root: Path, runs: Runs) -> list[str]:
    edit(_record(root, runs, FIX_B), lambda d: d.update(experiment_path="../nowhere"))
    return _all(runs)


@pytest.mark.parametrize(("forge", "template", "words"), [
    (baseline_made_candidate, BASELINE, "unverifiable: reports/{run}-redacted-eval.json is missing"),
    (outcome_flipped_consistently, FIX, "unverifiable: reports/{run}-redacted-eval.json is missing"),
    (experiment_path_to_nowhere, None, "unverifiable: experiment_path ../nowhere names no folder"),
], ids=["a baseline made a candidate", "an outcome flipped consistently", "experiment_path pointing nowhere"])
def test_a_deleted_companion_file_makes_a_record_unverifiable_and_promote_refuses_it(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns,
    forge: Callable[[Path, Runs], list[str]], template: str | None, words: str,
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, None)
    refs = forge(pytester.path, runs)
    if template is not None:
        assert llmgate(pytester.path, "promote", *refs).returncode == 2  # the redacted report still disagrees
        _redacted_report_deleted(pytester.path, runs, template)
    shown = words.format(run=runs[template or FIX_B]["run_id"])
    done = llmgate(pytester.path, "promote", *refs)
    assert done.returncode == 2 and done.stdout == ""
    assert shown in done.stderr and "a run is promoted only when every file it names can be checked" in done.stderr
    verified = llmgate(pytester.path, "verify", ".llmgate")
    assert verified.returncode == 1
    assert f"UNVERIFIABLE .llmgate/runs/{runs[template or FIX_B]['run_id']}.json: {shown}" in verified.stdout
    assert verified.stdout.splitlines()[-1].endswith("2 unverifiable")  # the record, and the report resting on it
    listed = llmgate(pytester.path, "runs")  # still readable, saying why it cannot be checked
    assert listed.returncode == 0 and f": {shown}" in listed.stdout


# -- issue 24, item 12: a prompt edit leaves history readable ------------------------------------------------------
def test_a_python_candidate_whose_code_changed_since_its_run_is_not_promoted(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its artifact names a callable: the module's source is the candidate too (only the YAML file was hashed)
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    directory = make_experiment("exp", templates={"coded": {"provider": "python", "callable": "coded_rules:route"}})
    module = directory / "coded_rules.py"
    module.write_text("def route(case, artifact):\n    return 'SERVE' if case['evidence_state'] == 'log' else 'ABSTAIN'\n")
    pytester.runpytest("exp", "--llmgate-candidate=coded").assert_outcomes(passed=3)
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    assert run["params"]["callable_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
    assert run["params"]["callable_path"] == "coded_rules.py"
    assert llmgate(pytester.path, "promote", run["run_id"]).returncode == 0
    module.write_text(module.read_text() + "# serve everything from now on\n")
    refused = llmgate(pytester.path, "promote", run["run_id"])
    assert refused.returncode == 2
    assert "code changed since this run: the module of its callable, coded_rules.py (sha256 now " in refused.stderr
    listed = llmgate(pytester.path, "runs")  # history stays readable, with the note
    assert listed.returncode == 0 and "code changed since this run" in listed.stdout


def test_a_python_candidate_on_pytests_pythonpath_is_checked_where_the_run_found_it(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a src layout (pytest's pythonpath = src): llmgate, without that path, checks the file the run recorded (it
    # found nothing and called an unchanged run changed)
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    make_experiment("exp", templates={"coded": {"provider": "python", "callable": "src_rules:route"}})
    (pytester.path / "src").mkdir()
    module = pytester.path / "src" / "src_rules.py"
    module.write_text("def route(case, artifact):\n    return 'SERVE' if case['evidence_state'] == 'log' else 'ABSTAIN'\n")
    pytester.makeini("[pytest]\npythonpath = src\n")
    pytester.runpytest_subprocess("exp", "--llmgate-candidate=coded").assert_outcomes(passed=3)
    (run,) = runs_by_template(pytester.path / ".llmgate").values()
    assert run["params"]["callable_path"] == "../src/src_rules.py"
    assert llmgate(pytester.path, "promote", run["run_id"]).returncode == 0
    module.write_text(module.read_text() + "# changed\n")
    refused = llmgate(pytester.path, "promote", run["run_id"])
    assert refused.returncode == 2 and "the module of its callable, ../src/src_rules.py" in refused.stderr
    module.unlink()
    gone = llmgate(pytester.path, "promote", run["run_id"])
    assert gone.returncode == 2 and "cannot be read to check it" in gone.stderr


def test_an_edited_template_leaves_history_readable_and_only_promotion_refused(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    template_changed(pytester.path, runs)
    note = (f"note: .llmgate/runs/{runs[FIX_B]['run_id']}.json: template changed since this run: "
            f"templates/{FIX_B}.yaml")
    listed = llmgate(pytester.path, "runs", key=KEY)
    assert listed.returncode == 0, listed.stderr
    assert len([line for line in listed.stdout.splitlines() if FIX_B in line and "candidate" in line]) == 1
    assert note in listed.stdout
    other = llmgate(pytester.path, "runs", "--template", FIX, key=KEY)
    assert (other.returncode, other.stderr) == (0, "")
    assert FIX_B not in other.stdout and "note:" not in other.stdout
    compared = llmgate(pytester.path, "compare", *_all(runs), key=KEY)
    assert compared.returncode == 0 and note in compared.stdout
    diffed = llmgate(pytester.path, "diff", runs[FIX_B]["run_id"], runs[FIX_B]["run_id"], key=KEY)
    assert diffed.returncode == 0 and note in diffed.stdout
    refused = llmgate(pytester.path, "promote", "--last", key=KEY)
    assert refused.returncode == 2
    assert "template changed since this run" in refused.stderr


def test_verify_of_mains_records_in_a_pull_request_checkout_notes_the_edit_and_lists_each_record_once(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_SIGNING_KEY", KEY)
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=.llmgate-main")
    runs = runs_by_template(pytester.path / ".llmgate-main")
    template = example / "templates" / f"{FIX_B}.yaml"
    template.write_text(template.read_text() + "# the pull request's edit\n")
    done = llmgate(pytester.path, "verify", ".llmgate-main", key=KEY)
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 5 and lines[-1] == "all verified"  # three runs, the report, the verdict
    for run in runs.values():
        assert sum(run["run_id"] in line for line in lines) == 1
    assert (f"ok .llmgate-main/runs/{runs[FIX_B]['run_id']}.json; template changed since this run: "
            f"templates/{FIX_B}.yaml") in done.stdout
    # the pull request's session compares with main's records all the same, saying so in its header
    compared = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-compare-to=.llmgate-main")
    assert compared.ret == 0
    compared.stdout.fnmatch_lines([f"llmgate: note: .llmgate-main/runs/{runs[FIX_B]['run_id']}.json: template changed "
                                   f"since this run: templates/{FIX_B}.yaml*"])


# -- must also fix: bad input is a clean error naming the file ----------------------------------------------------
def test_an_empty_object_as_a_compare_to_report_or_a_diff_argument_is_a_clean_error(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    runs = _session(pytester, monkeypatch, made_runs, None)
    (pytester.path / "empty.json").write_text("{}")
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-compare-to=empty.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*empty.json: is not a valid llmgate.run/1 or llmgate.report/1 (Object missing "
                                 "required field `schema`)*"])
    assert "AttributeError" not in result.stdout.str() + result.stderr.str()
    for args in (["empty.json", ".llmgate"], [runs[FIX_B]["run_id"], "empty.json"]):
        done = llmgate(pytester.path, "diff", *args)
        assert done.returncode == 2
        assert done.stderr == ("llmgate: error: empty.json: is not a valid llmgate.run/1 or llmgate.report/1 "
                               "(Object missing required field `schema`)\n")


def test_a_record_of_100000_nested_brackets_given_to_verify_is_a_clean_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "deep.json").write_text("[" * 100_000)
    done = llmgate(pytester.path, "verify", "deep.json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stdout.splitlines()[1:] == [
        "REFUSED deep.json:1: cannot be read as JSON: it nests arrays or objects too deeply", "1 refused"]


# -- issue 25: signed over msgspec's canonical encoding; records signed before keep verifying ------------------------
def test_a_signature_is_an_hmac_of_the_sorted_msgspec_encoding_without_the_signature(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import hmac

    import msgspec

    from .conftest import case, write_experiment

    write_experiment(pytester.path, "exp", suites={"main": [case("c1", "log", "SERVE", slice_name="Zürich ✓"),
                                                            case("c2", "none", "ABSTAIN", slice_name="Zürich ✓")]})
    monkeypatch.setenv("LLMGATE_SIGNING_KEY", KEY)
    pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-baseline=unsafe")
    assert llmgate(pytester.path, "promote", "--last", "--out", ".llmgate/d.json", key=KEY).returncode == 0
    out = pytester.path / ".llmgate"
    files = [*(out / "runs").glob("*.json"), out / "report.json", out / "d.json"]
    for path in files:
        data = json.loads(path.read_bytes())
        body = {k: v for k, v in data.items() if k != "signature"}
        encoded = msgspec.json.encode(body, order="sorted")
        assert data["signature"] == "hmac-sha256:" + hmac.new(KEY.encode(), encoded, hashlib.sha256).hexdigest()
        if path.parent.name == "runs":  # UTF-8, not the ASCII escapes of the earlier form
            assert encoded != json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_records_signed_in_the_earlier_form_keep_verifying(pytester: pytest.Pytester) -> None:
    """tests/golden/signed-before: an experiment and its records, signed with KEY by the code before msgspec's
    canonical encoding (``json.dumps`` with ASCII escapes: its slice names are not ASCII, so the two forms differ)."""
    from pytest_llmgate.io.audit import read_run
    from pytest_llmgate.io.signing import signature_of

    shutil.copytree(Path(__file__).parent / "golden" / "signed-before", pytester.path, dirs_exist_ok=True)
    # kept under another name so that `pytest tests` does not find the experiment
    (pytester.path / "exp" / "llmgate.yaml.txt").rename(pytester.path / "exp" / "llmgate.yaml")
    records = pytester.path / "records"
    runs = [read_run(path) for path in sorted((records / "runs").glob("*.json"))]
    assert all(run.record.signature != signature_of(run.record, KEY.encode()) for run in runs)  # the earlier form
    done = llmgate(pytester.path, "verify", "records", "records/decision.json", key=KEY)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1] == "all verified" and done.stdout.count("ok ") == 4
    assert llmgate(pytester.path, "promote", "--last", "--dir", "records", key=KEY).returncode == 0
    canary = llmgate(pytester.path, "canary", "records/decision.json", "--unsafe-claims", "0", key=KEY)
    assert (canary.returncode, canary.stdout) == (0, "CONTINUE_CANARY_MONITORING\n")
    # the earlier form is accepted when checking, never a way around it: an edit is still refused
    edit(runs[0].path, lambda d: d["promotion"].update(rollback_artifact="attacker-choice"))
    done = llmgate(pytester.path, "verify", str(runs[0].path), key=KEY)
    assert done.returncode == 1 and SIGNATURE_WORDS in done.stdout
    assert llmgate(pytester.path, "verify", "records/decision.json", key="another key").returncode == 1


def test_every_test_this_page_names_exists() -> None:
    """docs/trust.md cites the tests that show what it says; each must exist."""
    import re

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "trust.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"`(test_\w+)`", page))
    defined = {name for path in (root / "tests").glob("test_*.py")
               for name in re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), re.MULTILINE)}
    assert len(cited) >= 10
    assert sorted(cited - defined) == []
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "(docs/trust.md)" in readme


def test_canary_refuses_a_decision_whose_evaluation_sha_was_edited(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # a decision file names the cases its run was evaluated on; another evaluation is not that run's decision
    runs = _session(pytester, monkeypatch, made_runs, None)
    assert llmgate(pytester.path, "promote", "--last", "--out", "d.json").returncode == 0
    edit(pytester.path / "d.json", lambda d: d.update(evaluation_sha="0" * 16))
    done = llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert f"d.json: refused: it is not what its run {runs[FIX_B]['run_id']} gives (evaluation_sha)" in done.stderr


def test_canary_refuses_a_decision_resting_on_an_eligible_baseline_run(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a baseline is never promoted: a decision file naming a baseline run is refused even when that run is eligible
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    pytester.runpytest("example_suites", f"--llmgate-baseline={FIX_B}", f"--llmgate-candidate={FIX}")
    baseline = runs_by_template(pytester.path / ".llmgate")[FIX_B]
    assert (baseline["role"], baseline["status"]) == ("baseline", "ELIGIBLE_FOR_CANARY_REVIEW")
    (pytester.path / "d.json").write_text(json.dumps({
        "artifact_name": FIX_B, "alias": "canary_candidate", "source_run_id": baseline["run_id"],
        "evaluation_sha": baseline["params"]["evaluation_sha"], "rollback_artifact": "ci-answerer-v1",
        "status": "APPROVED_FOR_CANARY", "limitation": "requires production review and monitored canary"}))
    done = llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert "(its run is a baseline run with status ELIGIBLE_FOR_CANARY_REVIEW)" in done.stderr


def test_verify_refuses_a_report_whose_eligible_runs_were_edited(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # the eligible runs a report lists are part of its verdict: a rejected run added to them is refused
    runs = _session(pytester, monkeypatch, made_runs, None)
    edit(pytester.path / ".llmgate" / "report.json", lambda d: d["experiments"][0]["eligible_runs"].append(
        {"run_id": runs[FIX]["run_id"], "template_id": FIX}))
    done = llmgate(pytester.path, "verify", ".llmgate/report.json")
    assert done.returncode == 1
    assert "REFUSED .llmgate/report.json: refused: its decision is not what its run records give" in done.stdout


@pytest.mark.parametrize("key", ["template_id", "evaluation_sha"])
def test_a_record_without_a_param_every_command_reads_is_refused_not_a_traceback(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, key: str
) -> None:
    # an outside review: without params.template_id, verify ended in a KeyError traceback
    runs = _session(pytester, monkeypatch, made_runs, None)
    edit(_record(pytester.path, runs, FIX_B), lambda d: d["params"].pop(key))
    for command in (["verify", ".llmgate"], ["promote", *_all(runs)], ["compare", *_all(runs)], ["runs"]):
        done = llmgate(pytester.path, *command)
        assert done.returncode in (1, 2), command
        assert f"is not a valid llmgate.run/1 (params has no {key})" in done.stdout + done.stderr, command


def test_a_report_emptied_of_its_experiments_is_refused_not_verified(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # noticed in this stop's review: without a key, a report.json edited to hold no experiment said "ok"
    _session(pytester, monkeypatch, made_runs, None)
    edit(pytester.path / ".llmgate" / "report.json", lambda d: d.update(experiments=[]))
    words = "holds no experiment, which no session or merge writes (no verdict)"
    done = llmgate(pytester.path, "verify", ".llmgate/report.json")
    assert done.returncode == 1 and f"REFUSED .llmgate/report.json: {words}" in done.stdout
    for command in (["promote", "--last"], ["canary", ".llmgate/report.json", "--unsafe-claims", "0"]):
        done = llmgate(pytester.path, *command)
        assert done.returncode == 2 and words in done.stderr, command


def test_an_empty_signing_key_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # LLMGATE_SIGNING_KEY="" (a CI secret that is not set) neither signs nor refuses unsigned files
    from pytest_llmgate.io.signing import signing_key

    monkeypatch.setenv("LLMGATE_SIGNING_KEY", "")
    assert signing_key() is None


def test_compare_refuses_two_runs_of_one_evaluation_whose_case_sets_differ(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # with its experiment out of reach, a record cut consistently is still refused beside a run of the same evaluation
    runs = _session(pytester, monkeypatch, made_runs, None)
    refs = cases_cut_consistently(pytester.path, runs)
    edit(_record(pytester.path, runs, FIX), lambda d: d.update(experiment_path="../nowhere"))
    done = llmgate(pytester.path, "compare", *refs)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"its case set differs from run {runs[BASELINE]['run_id']}'s, which has the same evaluation" in done.stderr


def test_verify_says_a_report_or_decision_resting_on_an_unverifiable_run_is_unverifiable_and_notes_an_edit(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns
) -> None:
    # an outside review: with the decision's redacted report moved away, verify said "ok" for report.json and the
    # decision file ("all verified"), which canary refuses; with its template edited, no note
    runs = _session(pytester, monkeypatch, made_runs, KEY)
    assert llmgate(pytester.path, "promote", "--last", "--out", "d.json", key=KEY).returncode == 0
    source = runs[FIX_B]["run_id"]
    redacted = pytester.path / ".llmgate" / "reports" / f"{source}-redacted-eval.json"
    moved = redacted.read_bytes()
    redacted.unlink()
    done = llmgate(pytester.path, "verify", ".llmgate/report.json", "d.json", key=KEY)
    assert done.returncode == 1, done.stdout
    assert done.stdout.count("UNVERIFIABLE ") == 2 and done.stdout.splitlines()[-1] == "2 unverifiable"
    assert f"it rests on .llmgate/runs/{source}.json, which is unverifiable" in done.stdout
    assert llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0", key=KEY).returncode == 2  # as before
    redacted.write_bytes(moved)
    template = example / "templates" / f"{FIX_B}.yaml"
    template.write_text(template.read_text() + "# edited\n")
    done = llmgate(pytester.path, "verify", ".llmgate/report.json", "d.json", key=KEY)
    assert done.returncode == 0, done.stdout
    edited = [line for line in done.stdout.splitlines() if line.startswith("ok ")]
    assert len(edited) == 2 and all("template changed since this run" in line for line in edited), done.stdout


@pytest.mark.parametrize("field", ["limitation", "source_run_id"])
def test_a_decision_file_whose_limitation_or_source_run_was_edited_is_refused(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, field: str
) -> None:
    # without a key, an edited limitation ("none: full production traffic") or a path-like source_run_id passed
    # verify and canary continued on it
    runs = _session(pytester, monkeypatch, made_runs, None)
    assert llmgate(pytester.path, "promote", "--last", "--out", "d.json").returncode == 0
    value = {"limitation": "none: full production traffic",
             "source_run_id": f"../.llmgate/runs/{runs[FIX_B]['run_id']}"}[field]
    edit(pytester.path / "d.json", lambda d: d.update({field: value}))
    done = llmgate(pytester.path, "verify", "d.json")
    assert done.returncode == 1 and "REFUSED d.json" in done.stdout, done.stdout
    assert llmgate(pytester.path, "canary", "d.json", "--unsafe-claims", "0").returncode == 2


def test_a_decision_whose_rollback_is_the_promoted_artifact_is_refused_by_promote_and_canary(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the decision said "PROMOTE ci-answerer-v1.2-fix-b ... rollback ci-answerer-v1.2-fix-b", and canary rolled
    # "back" to the artifact that failed; `--rollback X` naming the artifact was already refused (docs/cli.md)
    manifest = example / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("rollback_artifact: ci-answerer-v1", f"rollback_artifact: {FIX_B}"))
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    # the session decides as its runs give (a release gated beside its replacement is a candidate and a rollback
    # at once, as in the prose example); the decision that names the winner as its own rollback is not accepted
    pytester.runpytest("example_suites", *THREE_RUNS)
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision"]["rollback_artifact"] == FIX_B
    done = llmgate(pytester.path, "promote", "--last", "--out", "d.json")
    assert done.returncode == 2 and not (pytester.path / "d.json").exists()
    assert f"the manifest's rollback_artifact {FIX_B} is the artifact being promoted" in done.stderr
    done = llmgate(pytester.path, "canary", ".llmgate/report.json", "--unsafe-claims", "1")
    assert done.returncode == 2 and "is the artifact it promotes: a canary would roll back to itself" in done.stderr


def test_promote_refuses_runs_of_two_experiments(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an outside review: another experiment's run of the same template, same fields, was ranked with this one's
    # (a tie), and promoted against this one's baseline with the other manifest's rollback
    monkeypatch.delenv("LLMGATE_SIGNING_KEY", raising=False)
    for name in ("one", "two"):
        make_experiment(name)
        pytester.runpytest(name, "--llmgate-candidate=good")
    ids = [run["run_id"] for run in
           sorted((json.loads(p.read_text()) for p in (pytester.path / ".llmgate" / "runs").glob("*.json")),
                  key=lambda run: run["experiment"])]
    done = llmgate(pytester.path, "promote", *ids)
    assert done.returncode == 2, done.stdout
    assert "the runs are of 2 experiments (one, two): a decision is taken over the runs of one experiment" in done.stderr
    assert llmgate(pytester.path, "promote", ids[0]).returncode == 0


@pytest.mark.parametrize("edit_run", [
    pytest.param(lambda run: run.update(status="ELIGIBLE_FOR_CANARY_REVIEW"), id="status"),
    pytest.param(lambda run: run["metrics"].update(unsafe_claim_served=0), id="a metric"),
])
def test_verify_refuses_a_report_whose_run_summary_was_edited(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, edit_run: Callable[[dict[str, Any]], None]
) -> None:
    # an outside review: the baseline's status and unsafe count edited in report.json, and verify said "ok"
    _session(pytester, monkeypatch, made_runs, None)
    report = pytester.path / ".llmgate" / "report.json"
    edit(report, lambda d: edit_run(next(r for r in d["experiments"][0]["runs"] if r["template_id"] == BASELINE)))
    done = llmgate(pytester.path, "verify", ".llmgate/report.json")
    assert done.returncode == 1 and "REFUSED .llmgate/report.json: refused: its summary of run" in done.stdout


FULL = "94dfc930d2829d2ccd7fd3c52c60979b822d779a4d55e24fa952971bf14915b8"  # the example's evaluation fingerprint


@pytest.mark.parametrize(("change", "words"), [
    pytest.param(lambda d: d.update(fingerprints={}),
                 f"fingerprints has no 'regression', but params.regression_sha is 2be42790a4f41355; fingerprints has "
                 f"no 'holdout', but params.holdout_sha is d47cdbbfe1caae89; fingerprints has no 'evaluation', but "
                 f"params.evaluation_sha is {EVALUATION_SHA}", id="emptied"),
    pytest.param(lambda d: d["fingerprints"].update(evaluation=""),
                 f"fingerprints.evaluation is '', but params.evaluation_sha is {EVALUATION_SHA}", id="blank"),
    pytest.param(lambda d: d["fingerprints"].update(evaluation="0" * 64),
                 f"fingerprints.evaluation is 0000000000000000…, but params.evaluation_sha is {EVALUATION_SHA}",
                 id="another evaluation"),
    pytest.param(lambda d: d["fingerprints"].update(evaluation=EVALUATION_SHA),
                 f"fingerprints.evaluation is '{EVALUATION_SHA}', which is no full fingerprint (64 hex digits) "
                 "beginning with its params.evaluation_sha", id="its short form"),
    pytest.param(lambda d: d["fingerprints"].update(evaluation=EVALUATION_SHA + "0" * 48),
                 f"fingerprints.evaluation is {EVALUATION_SHA + '0' * 48}, but its suites give {FULL} (the same first "
                 "16 digits: the record's others were edited)", id="its digits past the short form"),
    pytest.param(lambda d: d["fingerprints"].update(regression="0" * 64),
                 "fingerprints.regression is 0000000000000000…, but params.regression_sha is 2be42790a4f41355",
                 id="a suite's"),
    pytest.param(lambda d: (d["fingerprints"].update(evaluation="0" * 64), d["params"].update(evaluation_sha="0" * 16)),
                 "its redacted report disagrees on evaluation_sha", id="with its params"),
    pytest.param(lambda d: d["fingerprints"].update(extra="0" * 64),
                 "fingerprints.extra is 0000000000000000…, but params has no extra_sha", id="one added"),
])
def test_verify_refuses_a_record_whose_fingerprints_contradict_its_params(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns,
    change: Callable[[dict[str, Any]], None], words: str,
) -> None:
    # an outside review: with its fingerprints emptied (or any other evaluation fingerprint), a record passed verify
    # as "ok ...; suites changed since this run (evaluation 94dfc930d2829d2c now,  recorded)", "all verified": the
    # suites had not changed, its params.evaluation_sha said so, and its labels went unchecked against them
    runs = _session(pytester, monkeypatch, made_runs, None)
    edit(_record(pytester.path, runs, FIX_B), change)
    done = llmgate(pytester.path, "verify", ".llmgate")
    assert done.returncode == 1, done.stdout
    assert f"REFUSED .llmgate/runs/{runs[FIX_B]['run_id']}.json: refused: {words}\n" in done.stdout
    assert "suites changed since this run" not in done.stdout
    assert done.stdout.splitlines()[-1] == "2 refused"  # the record, and the report that rests on it


@pytest.mark.parametrize("forge", [fingerprints_emptied, error_count_set_to_1], ids=["fingerprints", "error_count"])
def test_a_record_whose_fingerprints_were_emptied_is_refused_by_every_command_as_an_edited_metric_is(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns,
    forge: Callable[[Path, Runs], list[str]],
) -> None:
    # compare, diff and --llmgate-compare-to read it (with a note that the suites changed); runs listed it
    runs = _session(pytester, monkeypatch, made_runs, None)
    forge(pytester.path, runs)
    bad = f".llmgate/runs/{runs[FIX_B]['run_id']}.json"  # refused: itself, or the report that rests on it
    for command in (("runs",), ("compare", "--last"), ("compare", *_all(runs)), ("diff", ".llmgate", ".llmgate"),
                    ("promote", "--last"), ("promote", *_all(runs))):
        done = llmgate(pytester.path, *command)
        assert done.returncode == 2 and bad in done.stderr and "refused: " in done.stderr, (command, done.stderr)
        assert "suites changed since this run" not in done.stdout + done.stderr, command
    listed = llmgate(pytester.path, "runs").stdout
    assert BASELINE in listed and FIX in listed and FIX_B not in listed  # the others are listed
    compared = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=branch",
                                  "--llmgate-compare-to=.llmgate")
    assert compared.ret == pytest.ExitCode.USAGE_ERROR
    compared.stderr.fnmatch_lines([f"*{bad}*refused: *"])


@pytest.mark.parametrize("key", [None, KEY], ids=["no key", "with a key"])
def test_verify_and_canary_refuse_the_marker_of_a_session_or_merge_that_has_not_finished(
    pytester: pytest.Pytester, example: Path, monkeypatch: pytest.MonkeyPatch, made_runs: MadeRuns, key: str | None,
) -> None:
    # an outside review: the report.json a refused merge, or a session stopped on a usage error, leaves (no verdict)
    # passed verify as "ok ...", "all verified", exit 0; canary said it "holds 0 promotion decisions"
    marker = "is the marker of a session that has not finished (no verdict yet)"
    runs = _session(pytester, monkeypatch, made_runs, key)
    assert llmgate(pytester.path, "verify", ".llmgate", key=key).returncode == 0
    # a usage error: the records of the sessions before stay, its report.json is the marker
    stopped = pytester.runpytest("example_suites", "--llmgate-candidate=nope")
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR
    assert read_report(pytester.path / ".llmgate")["in_progress"] is True
    done = llmgate(pytester.path, "verify", ".llmgate", key=key)
    assert done.returncode == 1 and "all verified" not in done.stdout, done.stdout
    assert f"REFUSED .llmgate/report.json: {marker}\n" in done.stdout
    assert sum(line.startswith("ok .llmgate/runs/") for line in done.stdout.splitlines()) == 3  # the runs hold up
    assert done.stdout.splitlines()[-1] == "1 refused"
    # a refused merge (no part records in the folders given): its folder's report.json is the marker
    assert llmgate(pytester.path, "merge", ".llmgate", "--out", "merged", key=key).returncode == 2
    done = llmgate(pytester.path, "verify", "merged", key=key)
    assert (done.returncode, done.stdout.splitlines()[-2:]) == (1, [f"REFUSED merged/report.json: {marker}",
                                                                    "1 refused"]), done.stdout
    # every command that reads a verdict says the same, exit 2
    for command in (("canary", "merged/report.json", "--unsafe-claims", "0"), ("promote", "--last"),
                    ("compare", "--report", "merged/report.json"), ("diff", "merged/report.json", ".llmgate")):
        done = llmgate(pytester.path, *command, key=key)
        assert (done.returncode, done.stdout) == (2, ""), command
        assert done.stderr.endswith(f"report.json: {marker}\n"), (command, done.stderr)
    assert llmgate(pytester.path, "promote", *_all(runs), key=key).returncode == 0  # the runs themselves hold up
