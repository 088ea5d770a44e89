"""A suite split over CI jobs (pytest-split, pytest-shard, -k) and merged by `llmgate merge` into one decision."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy  # the reference for percentiles (imported here: pytester's in-process runs drop modules first imported inside them)
import pytest

from pytest_llmgate.cli.main import main
from pytest_llmgate.model.vocab import Outcome

from .conftest import BASELINE, FIX_B, case, write_experiment, write_yaml

VOLATILE = {"run_id", "source_run_id", "generated_at", "started_at", "finished_at", "signature", "baseline_run_id",
            "latency_p50_ms", "latency_p95_ms", "latency_max_ms", "latency_ms"}  # ids, times, measured latencies


def scrub(value: Any) -> Any:
    """A report or record without its run ids and times."""
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def report(out: Path) -> Any:
    return scrub(json.loads((out / "report.json").read_text(encoding="utf-8")))


def runs(out: Path) -> dict[str, Any]:
    found = {}
    for path in (out / "runs").glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        for key in ("artifacts", "merged_from"):
            record.pop(key, None)
        found[record["params"]["template_id"]] = scrub(record)
    return found


def run_parts(pytester: pytest.Pytester, target: str, args: list[str], splits: list[list[str]],
              xdist_part: int = 0) -> list[Path]:
    outs = []
    for index, split in enumerate(splits):
        out = pytester.path / f"part{index}"
        extra = ["-n", "2"] if index == xdist_part else []
        result = pytester.runpytest(target, "-p", "no:cacheprovider", *args, f"--llmgate-out={out}", *split, *extra)
        assert result.ret in (0, 1), result.stdout.str()
        outs.append(out)
    return outs


def merged(pytester: pytest.Pytester, outs: list[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, Path, str]:
    out = pytester.path / "merged"
    code = main(["merge", *map(str, outs), "--out", str(out), "--markdown", str(pytester.path / "m.md"),
                 "--html", str(pytester.path / "m.html")])
    return code, out, capsys.readouterr().out


SPLIT = [["--splits", "4", "--group", str(i)] for i in range(1, 5)]
SHARD = [["--num-shards", "4", "--shard-id", str(i)] for i in range(4)]


@pytest.mark.slow
@pytest.mark.usefixtures("example")
@pytest.mark.parametrize("splits", [SPLIT, SHARD], ids=["pytest-split", "pytest-shard"])
def test_example_parts_merge_to_the_single_session(pytester: pytest.Pytester, splits: list[list[str]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = [f"--llmgate-baseline={BASELINE}", "--llmgate-candidate=all"]
    single = pytester.runpytest("example_suites", "-p", "no:cacheprovider", *args,
                                f"--llmgate-out={pytester.path / 'single'}")
    assert single.ret == 1
    outs = run_parts(pytester, "example_suites", args, splits)
    for out in outs:
        part = json.loads((out / "report.json").read_text())
        assert part["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"
        assert "llmgate merge" in part["experiments"][0]["decision_reason"]
    code, out, text = merged(pytester, outs, capsys)
    assert report(out) == report(pytester.path / "single")
    assert runs(out) == runs(pytester.path / "single")
    assert f"PROMOTE {FIX_B}" in text
    assert code == 1  # a rejected candidate, as the single session failed
    assert f"PROMOTE {FIX_B}" in (pytester.path / "m.md").read_text() and FIX_B in (pytester.path / "m.html").read_text()


@pytest.mark.usefixtures("example")
def test_a_part_exits_on_its_own_cases_and_says_the_decision_waits(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={FIX_B}",
                                "--splits", "4", "--group", "1")
    assert result.ret == 0
    result.stdout.re_match_lines([r".*part split-1-of-4 of a split run.*the decision waits for `llmgate merge`.*"])


def big_experiment(root: Path, count: int) -> Path:
    """A generated experiment of ``count`` cases in two suites; ``good`` is right on every case, the baseline
    ``wide`` serves every third case unsafely."""
    cases = [case(f"c{i:05d}", "log" if i % 3 else "none", "SERVE" if i % 3 else "ABSTAIN") for i in range(count)]
    return write_experiment(root, "big", suites={"main": cases[: count // 2], "holdout": cases[count // 2:]},
                            templates={"good": {"provider": "evidence_policy", "serve_evidence": ["log"]},
                                       "wide": {"provider": "evidence_policy", "serve_evidence": ["log", "none"]}})


BIG_ARGS = ["--llmgate-baseline=wide", "--llmgate-candidate=good"]
SingleSession = Callable[[int], tuple[Path, Path]]


@pytest.fixture(scope="module")
def single_session(tmp_path_factory: pytest.TempPathFactory) -> SingleSession:
    """The generated experiment of a size and the records folder of ONE session over all of it (a fresh
    ``pytest`` process, run once per module and size: the splitters' parts are compared with it)."""
    made: dict[int, tuple[Path, Path]] = {}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST_ADDOPTS", "PYTEST_XDIST", "PYTEST_CURRENT_TEST"))}

    def session(count: int) -> tuple[Path, Path]:
        if count not in made:
            root = tmp_path_factory.mktemp(f"single{count}")
            experiment = big_experiment(root, count)
            out = root / "single"
            done = subprocess.run([sys.executable, "-m", "pytest", "big", "-p", "no:cacheprovider", *BIG_ARGS,
                                   f"--llmgate-out={out}"], cwd=root, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            made[count] = experiment, out
        return made[count]

    return session


@pytest.mark.slow
@pytest.mark.parametrize("count", [300, 10_000])
@pytest.mark.parametrize("splits", [SPLIT, SHARD], ids=["pytest-split", "pytest-shard"])
def test_generated_experiment_parts_under_xdist_merge_exactly(
    pytester: pytest.Pytester, single_session: SingleSession, splits: list[list[str]], count: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Four parts (the second under -n 2; pytest-split without a durations file splits evenly) merge into the
    report and records of one session over every case: metrics, statuses, per-case outcomes, the decision."""
    experiment, single = single_session(count)
    shutil.copytree(experiment, pytester.path / "big")
    outs = run_parts(pytester, "big", BIG_ARGS, splits, xdist_part=1)
    code, out, _ = merged(pytester, outs, capsys)
    assert code == 0
    assert report(out) == report(single)
    assert runs(out) == runs(single)
    assert report(out)["experiments"][0]["decision_status"] == "PROMOTE"
    merged_runs = runs(out)
    assert merged_runs["good"]["metrics"]["case_count"] == count
    assert len(merged_runs["wide"]["cases"]) == count
    assert merged_runs["wide"]["metrics"]["unsafe_claim_served"] == (count + 2) // 3


def test_a_candidate_that_ran_in_no_part_makes_merge_exit_1(pytester: pytest.Pytester,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # protects: merge exited 0 with the decision INCOMPLETE_EVALUATION when a selected candidate ran in no part
    big_experiment(pytester.path, 6)
    outs = run_parts(pytester, "big", ["--llmgate-candidate=good", "--llmgate-candidate=wide"],
                     [["--llmgate-part=A", "-k", "good"]], xdist_part=-1)
    code, out, text = merged(pytester, outs, capsys)
    assert code == 1
    assert json.loads((out / "report.json").read_text())["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"
    assert text.splitlines()[-1] == "llmgate: merge: exit 1: wide ran in no part"


def test_an_experiment_whose_job_is_missing_makes_merge_exit_1(pytester: pytest.Pytester,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # an outside review: two experiments, one job each; merging only the first job's folder exited 0 with the
    # second experiment and its gating candidate simply absent (the first part's report lists it as not run)
    big_experiment(pytester.path, 6)
    write_experiment(pytester.path, "other", templates={"good": {"provider": "evidence_policy",
                                                                  "serve_evidence": ["log"]}})
    (first,) = run_parts(pytester, ".", ["--llmgate-candidate=good"], [["--llmgate-part=A", "-k", "big"]],
                         xdist_part=-1)
    code, out, text = merged(pytester, [first], capsys)
    assert code == 1
    experiments = {e["experiment"]: e for e in json.loads((out / "report.json").read_text())["experiments"]}
    assert experiments["big"]["decision_status"] == "PROMOTE"
    assert experiments["other"]["decision_status"] == "INCOMPLETE_EVALUATION"
    assert [entry["template_id"] for entry in experiments["other"]["not_run"]] == ["good"]
    assert text.splitlines()[-1] == "llmgate: merge: exit 1: good ran in no part"


def test_k_lists_a_missing_part_and_a_rerun(pytester: pytest.Pytester,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    big_experiment(pytester.path, 40)
    args = ["--llmgate-candidate=good"]
    lists = [[f"--llmgate-part=k{start}", "-k", " or ".join(f"c{i:05d}" for i in range(start, 40, 3))]
             for start in range(3)]
    outs = run_parts(pytester, "big", args, lists[:2], xdist_part=-1)
    code, out, text = merged(pytester, outs, capsys)
    assert code == 1
    merged_report = json.loads((out / "report.json").read_text())["experiments"][0]
    assert merged_report["decision_status"] == "INCOMPLETE_EVALUATION"
    assert re.search(r"13 of 40 case\(s\) of good are in no part \(c00002, c00005", merged_report["decision_reason"])
    assert merged_report["runs"][0]["status"] == "INCOMPLETE_EVALUATION"
    (run,) = (out / "runs").glob("*.json")
    assert len(json.loads(run.read_text())["missing_cases"]) == 13
    assert re.search(r"good +candidate +0 +0 +0 +13 ", text), text  # the not-run column counts them
    assert text.splitlines()[-1] == "llmgate: merge: exit 1: good is INCOMPLETE_EVALUATION"  # why, last
    # an honest merge with a missing job is incomplete, not forged: verify accepts it and promote says incomplete
    assert main(["verify", str(out)]) == 0
    assert main(["promote", "--report", str(out / "report.json")]) == 1
    capsys.readouterr()
    # the missing job runs, and the first job is re-run into its folder: newest part of a split id wins
    outs += run_parts(pytester, "big", args, lists[2:], xdist_part=-1)
    rerun = pytester.runpytest("big", "-p", "no:cacheprovider", *args, f"--llmgate-out={outs[0]}", *lists[0])
    assert rerun.ret == 0
    code, out, text = merged(pytester, outs, capsys)
    assert code == 0 and "exit 1" not in text, text
    assert json.loads((out / "report.json").read_text())["experiments"][-1]["decision_status"] == "PROMOTE"


def test_a_part_from_a_refrozen_suite_is_refused(pytester: pytest.Pytester,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    directory = big_experiment(pytester.path, 40)
    args = ["--llmgate-candidate=good", "--llmgate-freeze"]
    outs = run_parts(pytester, "big", args, SPLIT, xdist_part=-1)
    code, out, _ = merged(pytester, outs, capsys)  # yesterday's merge, promoted
    assert code == 0 and json.loads((out / "report.json").read_text())["experiments"][0]["decision_status"] == "PROMOTE"
    before = sorted(path.name for path in (out / "runs").glob("*.json"))
    suite = directory / "main.suite.yaml"
    write_yaml(suite, {"cases": [case(f"c{i:05d}", "log", "SERVE") for i in range(20)]})
    outs[2:] = run_parts(pytester, "big", args, SPLIT[2:], xdist_part=-1)
    code = main(["merge", *map(str, outs), "--out", str(out), "--markdown", str(pytester.path / "m.md"),
                 "--html", str(pytester.path / "m.html")])
    assert code == 2
    error = capsys.readouterr().err
    assert "not comparable" in error and "evaluation_sha" in error
    # refused before any record is written, and yesterday's PROMOTE is no longer the folder's verdict
    assert sorted(path.name for path in (out / "runs").glob("*.json")) == before
    assert json.loads((out / "report.json").read_text())["in_progress"] is True
    assert json.loads((out / "report.previous.json").read_text())["experiments"][0]["decision_status"] == "PROMOTE"
    assert "PROMOTE" not in (pytester.path / "m.md").read_text() and "PROMOTE" not in (pytester.path / "m.html").read_text()


@pytest.mark.usefixtures("example")
@pytest.mark.parametrize("layout", ["parts/{}/.llmgate", "ci"])
def test_merged_records_find_the_candidate_file_from_the_out_folder(
    pytester: pytest.Pytester, layout: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """Parts written at another depth (``parts/1/.llmgate``) or downloaded from CI jobs (only the records: each
    job's ``.llmgate`` is ``parts/llmgate-part-N``) merge into ``.llmgate``, whose records name the experiment
    from there: ``llmgate verify``/``runs``/``promote`` check the candidate file."""
    args = ["example_suites", "-p", "no:cacheprovider", f"--llmgate-baseline={BASELINE}",
            f"--llmgate-candidate={FIX_B}"]
    folders = []
    for group in (1, 2):
        if layout == "ci":
            assert pytester.runpytest(*args, "--splits", "2", "--group", str(group)).ret == 0
            folders.append(pytester.path / "parts" / f"llmgate-part-{group}")
            folders[-1].parent.mkdir(exist_ok=True)
            shutil.move(pytester.path / ".llmgate", folders[-1])
        else:
            folders.append(pytester.path / layout.format(group))
            assert pytester.runpytest(*args, "--splits", "2", "--group", str(group),
                                      f"--llmgate-out={folders[-1]}").ret == 0
    assert main(["merge", *(str(f.relative_to(pytester.path)) for f in folders), "--out", ".llmgate"]) == 0
    for record in (pytester.path / ".llmgate" / "runs").glob("*.json"):
        assert json.loads(record.read_text())["experiment_path"] == "../example_suites/ci-claim-gate-repair"
    assert main(["verify", ".llmgate"]) == 0
    assert main(["promote", "--last"]) == 0
    capsys.readouterr()
    candidate = pytester.path / "example_suites" / "ci-claim-gate-repair" / "templates" / f"{FIX_B}.yaml"
    candidate.write_text(candidate.read_text() + "# edited after the run\n")
    assert main(["verify", ".llmgate"]) == 0  # history stays readable, saying so; only promotion is refused
    assert f"template changed since this run: templates/{FIX_B}.yaml" in capsys.readouterr().out
    assert main(["runs"]) == 0
    assert f"template changed since this run: templates/{FIX_B}.yaml" in capsys.readouterr().out
    assert main(["promote", "--last"]) == 2
    assert f"template changed since this run: templates/{FIX_B}.yaml" in capsys.readouterr().err


@pytest.mark.usefixtures("example")
def test_parts_and_their_merge_in_one_folder_verify_and_compare(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str],
) -> None:
    """Two jobs on one machine write their parts into ``.llmgate`` and ``llmgate merge .llmgate --out .llmgate``
    merges them there. A part's own case digest covers its cases only: the parts of one run, and the merged run
    beside them, were refused as "its case set differs" by verify, diff and --llmgate-compare-to."""
    args = ["example_suites", "-p", "no:cacheprovider", f"--llmgate-baseline={BASELINE}",
            f"--llmgate-candidate={FIX_B}"]
    for group in (1, 2):
        assert pytester.runpytest(*args, "--splits", "2", "--group", str(group)).ret == 0
    shutil.copytree(pytester.path / ".llmgate", pytester.path / "parts-only")
    assert main(["verify", ".llmgate"]) == 0
    assert main(["merge", ".llmgate", "--out", ".llmgate"]) == 0
    assert main(["verify", ".llmgate"]) == 0
    capsys.readouterr()
    again = pytester.runpytest(*args, "--llmgate-compare-to=.llmgate", "--llmgate-out=again")
    assert again.ret == 0, again.stdout.str()
    again.stdout.fnmatch_lines(["*against run * (template ci-answerer-v1.2-fix-b): 0 broken, 0 fixed, 4 unchanged"])
    capsys.readouterr()
    assert main(["diff", ".llmgate", "again"]) == 0
    text = capsys.readouterr().out
    assert text.count("0 broken, 0 fixed, 4 unchanged") == 2 and "absent" not in text, text
    # parts alone are not a run to compare with: merge them first
    assert main(["diff", "parts-only", "again"]) == 2
    assert "holds only parts of split runs (4 part record(s)): merge them with llmgate merge" in capsys.readouterr().err
    refused = pytester.runpytest(*args, "--llmgate-compare-to=parts-only", "--llmgate-out=third")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*parts-only: holds only parts of split runs*"])
    # a whole run of the baseline beside parts of the candidate: the candidate is named, not skipped in silence
    for path in (pytester.path / ".llmgate" / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        if "part" not in record and record["params"]["template_id"] == BASELINE:
            shutil.copy(path, pytester.path / "parts-only" / "runs" / path.name)
    capsys.readouterr()
    assert main(["diff", "parts-only", "again"]) == 0
    out = capsys.readouterr().out
    assert f"ci-claim-gate-repair: {FIX_B} has only parts of split runs here: it is not compared" in out, out


SLEEPY_PY = '''
import time

def answer(case, artifact):
    time.sleep(0.001 * (int(case["case_id"][1:]) % 7))  # latencies that differ from case to case
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
'''


@pytest.mark.parametrize("trials", [1, 3])
def test_merged_latency_percentiles_are_those_of_every_call_of_the_parts(
    pytester: pytest.Pytester, trials: int, capsys: pytest.CaptureFixture[str],
) -> None:
    """A part's record leaves out the latencies its cases' costs already say (one call each) and lists the others
    (several trials); the merged run's percentiles are over every call of every part, as numpy computes them."""
    cases = [case(f"c{i:03d}", "log" if i % 3 else "none", "SERVE" if i % 3 else "ABSTAIN") for i in range(30)]
    directory = write_experiment(pytester.path, "timed", suites={"main": cases},
                                 templates={"sleepy": {"provider": "python", "callable": "sleepy:answer"}})
    (directory / "sleepy.py").write_text(SLEEPY_PY)
    outs = run_parts(pytester, "timed", ["--llmgate-candidate=sleepy", f"--llmgate-trials={trials}"],
                     [["--num-shards", "2", "--shard-id", str(i)] for i in range(2)], xdist_part=-1)
    calls: list[float] = []
    for out in outs:
        (path,) = (out / "runs").glob("*.json")
        part = json.loads(path.read_text())
        listed = part["part"].get("latencies_ms", {})
        for entry in part["cases"]:
            if trials == 1:
                assert entry["case_id"] not in listed  # its one call's latency is its cost's
                calls.append(entry["cost"]["latency_ms"])
            else:
                assert len(listed[entry["case_id"]]) == trials
                assert entry["cost"]["latency_ms"] == max(listed[entry["case_id"]])
                calls.extend(listed[entry["case_id"]])
    code, out, _ = merged(pytester, outs, capsys)
    assert code == 0
    (path,) = (out / "runs").glob("*.json")
    cost = json.loads(path.read_text())["metrics"]["cost"]
    assert len(calls) == 30 * trials and cost["calls"] == 30 * trials
    for name, p in (("latency_p50_ms", 50), ("latency_p95_ms", 95)):
        assert cost[name] == float(numpy.percentile(calls, p, method="inverted_cdf"))  # nearest rank
    assert cost["latency_max_ms"] == max(calls)


FLIPPY_PY = '''
import os, time

def answer(case, artifact):
    time.sleep(0.001 * (int(case["case_id"][1:]) % 5))
    right = "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
    if os.environ.get("LLMGATE_TEST_FLIP") == case["case_id"]:  # this job's endpoint answered otherwise
        return "ABSTAIN" if right == "SERVE" else "SERVE"
    return right
'''


def test_parts_that_overlap_merge_each_case_once_and_refuse_a_case_judged_two_ways(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Two jobs that both evaluated c010-c019 (three trials each): the merged run holds each case once, the later
    part's, with that part's latencies in the percentiles; a case the two parts judged differently is refused,
    naming the case and both parts."""
    cases = [case(f"c{i:03d}", "log" if i % 3 else "none", "SERVE" if i % 3 else "ABSTAIN") for i in range(30)]
    directory = write_experiment(pytester.path, "timed", suites={"main": cases},
                                 templates={"flippy": {"provider": "python", "callable": "flippy:answer"}})
    (directory / "flippy.py").write_text(FLIPPY_PY)
    args = ["--llmgate-candidate=flippy", "--llmgate-trials=3"]
    first = [["--llmgate-part=a", "-k", " or ".join(f"c{i:03d}" for i in range(0, 20))],
             ["--llmgate-part=b", "-k", " or ".join(f"c{i:03d}" for i in range(10, 30))]]
    outs = run_parts(pytester, "timed", args, first, xdist_part=-1)
    parts = {}
    for out in outs:
        (path,) = (out / "runs").glob("*.json")
        record = json.loads(path.read_text())
        parts[record["part"]["split_id"]] = record
    calls = [latency for case_id, latencies in parts["a"]["part"]["latencies_ms"].items() if case_id < "c010"
             for latency in latencies] + [latency for latencies in parts["b"]["part"]["latencies_ms"].values()
                                          for latency in latencies]
    code, out, _ = merged(pytester, outs, capsys)
    assert code == 0
    (path,) = (out / "runs").glob("*.json")
    run = json.loads(path.read_text())
    assert [entry["case_id"] for entry in run["cases"]] == [f"c{i:03d}" for i in range(30)]
    assert run["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and run["metrics"]["trial_count"] == 90
    cost = run["metrics"]["cost"]
    assert len(calls) == 90 and cost["calls"] == 90
    assert cost["latency_p95_ms"] == float(numpy.percentile(calls, 95, method="inverted_cdf"))
    assert cost["latency_max_ms"] == max(calls)
    # a part that lists the cases it did not run as NOT_RUN (as parts once did) takes no latency of another part's
    from pytest_llmgate.engine.merge import merge_run
    from pytest_llmgate.records.codec import load
    from pytest_llmgate.records.run import RunRecord

    a, b = (load(next((path / "runs").glob("*.json")).read_bytes(), RunRecord, None) for path in outs)
    assert (a.part.split_id, b.part.split_id) == ("a", "b")
    unrun = tuple(msgspec.structs.replace(entry, outcome=Outcome.NOT_RUN, predicted_route=None, trial_routes=(),
                                          agreement=None, unsafe_trial_rate=None, passed_trials=None, unsafe_trials=None,
                                          unnecessary_trials=None, flaky=False, cost=None)
                  for entry in a.cases if entry.case_id < "c010")
    listing = msgspec.structs.replace(b, cases=unrun + b.cases,
                                      metrics=msgspec.structs.replace(b.metrics, not_run_count=len(unrun)))
    again = merge_run([a, listing]).metrics.cost
    assert again is not None and (again.calls, again.latency_p95_ms) == (90, cost["latency_p95_ms"])
    # part b is re-run on an endpoint that answers c015 otherwise: the two parts disagree on it
    monkeypatch.setenv("LLMGATE_TEST_FLIP", "c015")
    rerun = pytester.runpytest("timed", "-p", "no:cacheprovider", *args, f"--llmgate-out={outs[1]}", *first[1])
    assert rerun.ret == 1
    code = main(["merge", *map(str, outs), "--out", str(pytester.path / "merged-again")])
    assert code == 2
    error = capsys.readouterr().err
    assert re.search(r"case c015 of flippy was evaluated in parts a and b with different outcomes", error), error


def test_parts_split_from_different_shuffles_leave_cases_out_and_the_merge_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest-split splits by place in the collected order: jobs that shuffle with a seed each (as pytest-randomly
    does by default) split different orders, and the merged run is incomplete, saying why it may be."""
    big_experiment(pytester.path, 40)
    pytester.makeconftest("import os, random\ndef pytest_collection_modifyitems(items):\n"
                          "    random.Random(int(os.environ['SEED'])).shuffle(items)\n")

    def parts(seeds: tuple[int, int]) -> list[Path]:
        outs = []
        for group, seed in zip((1, 2), seeds, strict=True):
            monkeypatch.setenv("SEED", str(seed))
            outs.append(pytester.path / f"seeds{seeds[0]}-{seeds[1]}" / str(group))
            result = pytester.runpytest("big", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--splits", "2",
                                        "--group", str(group), f"--llmgate-out={outs[-1]}")
            assert result.ret == 0, result.stdout.str()
        return outs

    code, out, _ = merged(pytester, parts((1, 2)), capsys)  # a seed per job
    merged_report = json.loads((out / "report.json").read_text())["experiments"][0]
    assert (code, merged_report["decision_status"]) == (1, "INCOMPLETE_EVALUATION")
    assert "are in no part" in merged_report["decision_reason"]
    assert "the parts were split from different orders" in merged_report["decision_reason"]
    code, out, text = merged(pytester, parts((1, 1)), capsys)  # one seed for every job: the parts merge whole
    assert code == 0, text
    assert json.loads((out / "report.json").read_text())["experiments"][0]["decision_status"] == "PROMOTE"


BOOM_PY = '''
def route(case, artifact):
    if case["case_id"] == "c2":
        raise RuntimeError("no")
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
'''


def test_a_case_that_errored_in_its_part_leaves_the_merged_run_incomplete(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    # protects: a merged run with an ERROR case is never complete (nor eligible), as one session's would be
    directory = write_experiment(pytester.path, "exp", templates={"boom": {"provider": "python", "callable": "boom:route"}})
    (directory / "boom.py").write_text(BOOM_PY)
    outs = run_parts(pytester, "exp", ["--llmgate-candidate=boom"],
                     [["--llmgate-part=a", "-k", "c1"], ["--llmgate-part=b", "-k", "c2"]], xdist_part=-1)
    code, out, _ = merged(pytester, outs, capsys)
    (path,) = (out / "runs").glob("*.json")
    run = json.loads(path.read_text())
    assert (code, run["complete"], run["status"]) == (1, False, "INCOMPLETE_EVALUATION")


def test_parts_without_their_reports_merge_the_baseline_before_the_candidate(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    # protects: with only runs/ downloaded, a candidate is still compared with its baseline (baselines merge first)
    write_experiment(pytester.path, "exp")
    outs = run_parts(pytester, "exp", ["--llmgate-baseline=unsafe", "--llmgate-candidate=good"],
                     [["--llmgate-part=a", "-k", "c1"], ["--llmgate-part=b", "-k", "c2"]], xdist_part=-1)
    for folder in outs:
        (folder / "report.json").unlink()
    code, out, _ = merged(pytester, outs, capsys)
    good = next(json.loads(p.read_text()) for p in (out / "runs").glob("*.json")
                if json.loads(p.read_text())["params"]["template_id"] == "good")
    assert code == 0
    assert [(c["baseline_template_id"], c["fixed"]) for c in good.get("comparisons", [])] == [("unsafe", ["c2"])]


def test_parts_held_to_different_budgets_are_refused(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    # protects: the merge refuses parts whose manifests set different budgets (never judged by the first's)
    outs = []
    for part, case_id, limit in (("a", "c1", 60_000), ("b", "c2", 1)):
        write_experiment(pytester.path, "exp", budget={"max_latency_p95_ms": limit})
        outs.append(pytester.path / f"part-{part}")
        assert pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good", f"--llmgate-part={part}",
                                  "-k", case_id, f"--llmgate-out={outs[-1]}").ret == 0
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    assert "not comparable: they differ in budget" in capsys.readouterr().err


TRIALS_PY = '''
import os

def answer(case, artifact, trial):
    right = "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
    if case["case_id"] == "c1" and os.environ["LLMGATE_TEST_WRONG_TRIAL"] == str(trial):
        return "ABSTAIN" if right == "SERVE" else "SERVE"
    return right
'''


def test_parts_whose_trials_of_a_case_differ_are_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # protects: a case evaluated by two parts must agree trial by trial, not only in its outcome and route
    directory = write_experiment(pytester.path, "exp",
                                 templates={"t": {"provider": "python", "callable": "trials:answer", "trials": 3}})
    (directory / "trials.py").write_text(TRIALS_PY)
    outs = []
    for part, wrong in (("a", "0"), ("b", "1")):  # both parts: c1 UNNECESSARY_ABSTENTION, in another trial
        monkeypatch.setenv("LLMGATE_TEST_WRONG_TRIAL", wrong)
        outs.append(pytester.path / f"part-{part}")
        assert pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=t", f"--llmgate-part={part}",
                                  f"--llmgate-out={outs[-1]}").ret == 1
    assert main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")]) == 2
    assert ("case c1 of t was evaluated in parts a and b with different trial routes (ABSTAIN, SERVE, SERVE; SERVE, "
            "ABSTAIN, SERVE); re-run one of them") in capsys.readouterr().err


def test_merge_fails_when_the_baseline_s_merged_run_misses_cases(pytester: pytest.Pytester,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # the candidate ran every case, the baseline not: the decision is incomplete and the merge exits 1, not 0
    big_experiment(pytester.path, 6)
    lists = [["--llmgate-part=k0", "-k", "good"], ["--llmgate-part=k1", "-k", "wide and c00000"]]
    outs = run_parts(pytester, "big", BIG_ARGS, lists, xdist_part=-1)
    code, out, _ = merged(pytester, outs, capsys)
    assert (code, json.loads((out / "report.json").read_text())["experiments"][0]["decision_status"]) == (
        1, "INCOMPLETE_EVALUATION")


def test_a_part_compares_nothing_with_main_and_says_so(pytester: pytest.Pytester) -> None:
    # it compared its few cases with main's whole run: the others were "removed", and their metrics "improved"
    big_experiment(pytester.path, 40)
    main_run = pytester.runpytest("big", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-out=main")
    assert main_run.ret == 0
    part = pytester.runpytest("big", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-out=part",
                              "--llmgate-compare-to=main", *SPLIT[0])
    assert part.ret == 0
    part.stdout.fnmatch_lines(["llmgate: a part of a split run is not compared with stored runs (it holds some cases "
                               "of each run): compare the merged run, llmgate diff MAIN MERGED"])
    assert "removed" not in part.stdout.str()
    (record,) = [json.loads(path.read_text()) for path in (pytester.path / "part" / "runs").glob("*.json")]
    assert "comparison" not in record and record["part"] is not None


def test_merge_summaries_replace_only_a_summary_the_gate_wrote(pytester: pytest.Pytester,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    directory = big_experiment(pytester.path, 40)
    outs = run_parts(pytester, "big", ["--llmgate-candidate=good"], SPLIT[:2], xdist_part=-1)
    suite = directory / "main.suite.yaml"
    before = suite.read_bytes()
    code = main(["merge", *map(str, outs), "--out", str(pytester.path / "merged"), "--markdown", str(suite)])
    assert code == 2
    assert "--markdown=" in capsys.readouterr().err and suite.read_bytes() == before  # a suite is never replaced
    assert not (pytester.path / "merged").exists()  # refused before anything is written


def test_a_merge_refused_half_way_leaves_nothing_of_itself(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # the baseline's run merged (and was written) before the candidate's parts were found to disagree on a case
    cases = [case(f"c{i:03d}", "log" if i % 3 else "none", "SERVE" if i % 3 else "ABSTAIN") for i in range(30)]
    directory = write_experiment(pytester.path, "timed", suites={"main": cases}, templates={
        "flippy": {"provider": "python", "callable": "flippy:answer"},
        "wide": {"provider": "evidence_policy", "serve_evidence": "*"}})
    (directory / "flippy.py").write_text(FLIPPY_PY)
    args = ["--llmgate-candidate=flippy", "--llmgate-baseline=wide"]
    a = ["--llmgate-part=a", "-k", " or ".join(f"c{i:03d}" for i in range(0, 20))]
    b = ["--llmgate-part=b", "-k", " or ".join(f"c{i:03d}" for i in range(10, 30))]
    (part_a,) = run_parts(pytester, "timed", args, [a], xdist_part=-1)
    monkeypatch.setenv("LLMGATE_TEST_FLIP", "c015")
    part_b = pytester.path / "part-b"
    assert pytester.runpytest("timed", "-p", "no:cacheprovider", *args, f"--llmgate-out={part_b}", *b).ret == 1
    assert main(["merge", str(part_a), str(part_b), "--out", str(pytester.path / "merged")]) == 2
    assert "case c015 of flippy was evaluated in parts a and b" in capsys.readouterr().err
    assert not list((pytester.path / "merged").glob("runs/*")) and not list((pytester.path / "merged").glob("reports/*"))
    # merged in place, in a jobs' folder: refused, the folder is as it was (its report is the merge's input)
    before = {path: path.read_bytes() for path in part_a.rglob("*") if path.is_file()}
    assert main(["merge", str(part_a), str(part_b), "--out", str(part_a)]) == 2
    assert {path: path.read_bytes() for path in part_a.rglob("*") if path.is_file()} == before
    monkeypatch.setenv("LLMGATE_SIGNING_KEY", "k" * 32)  # refused while reading (unsigned parts): as it was too
    assert main(["merge", str(part_a), "--out", str(part_a)]) == 2
    assert {path: path.read_bytes() for path in part_a.rglob("*") if path.is_file()} == before
