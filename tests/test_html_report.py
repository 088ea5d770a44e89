"""The HTML report (``--llmgate-html``), opened in a real browser: Debian's headless Chromium through Playwright.

The browser tests skip only where ``/usr/bin/chromium`` is missing and ``CI`` is not set; in CI (``.ci/run``
installs the browser) they must run, and a missing browser fails them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.model.costs import usd

from .conftest import FIX, FIX_B, THREE_RUNS, case, read_report, runs_by_template

# Imported here, once, when installed: pytester's in-process runs drop the modules first imported inside a test,
# and what they leave behind breaks the next in-process runs (the LLM SDK; MLflow's SQL store: ``mlflow_imported``).
for _module in ("openai", "httpcore"):
    with warnings.catch_warnings():  # as pytest.importorskip: a dependency's deprecation warning is not ours
        warnings.simplefilter("ignore")
        with contextlib.suppress(ImportError):
            __import__(_module)

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "report-example.png"
CODES = {"PASS", "UNSAFE_CLAIM_SERVED", "UNNECESSARY_ABSTENTION", "ERROR", "NOT_RUN"}


def _require_browser() -> None:
    missing = None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if missing is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (the test extra has it)"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and the browser tests cannot run: {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield launched
        launched.close()


def _open(browser: Any, path: Path) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    page.llmgate_problems = problems
    page.llmgate_requests = requests
    return page


def _cell_counts(page: Any, experiment: int, run: int) -> dict[str, int]:
    return page.evaluate(
        """([experiment, run]) => {
            const counts = {};
            document.querySelectorAll(`table.matrix[data-experiment="${experiment}"] td[data-run="${run}"]`)
              .forEach(td => { const o = [...td.classList].find(c => c.startsWith("o-")).slice(2);
                               counts[o] = (counts[o] || 0) + 1; });
            return counts; }""",
        [experiment, run],
    )


def _expected_counts(metrics: dict[str, int]) -> dict[str, int]:
    counts = {"PASS": round(metrics["exact_route_rate"] * metrics["case_count"]),
              "UNSAFE_CLAIM_SERVED": metrics["unsafe_claim_served"],
              "UNNECESSARY_ABSTENTION": metrics["unnecessary_abstention"], "ERROR": metrics["error_count"],
              "NOT_RUN": metrics["not_run_count"]}
    return {key: value for key, value in counts.items() if value}


def _check_against_report(page: Any, report: dict[str, Any]) -> None:
    for index, experiment in enumerate(report["experiments"]):
        decision = page.locator(".decision").nth(index)
        assert decision.locator(".status").inner_text() == experiment["decision_status"]
        assert decision.locator(".reason").inner_text() == experiment["decision_reason"]
        for run_index, run in enumerate(experiment["runs"]):
            assert _cell_counts(page, index, run_index) == _expected_counts(run["metrics"])


@pytest.mark.slow
@pytest.mark.usefixtures("example")
def test_the_example_report_in_a_browser(pytester: pytest.Pytester, example: Path, browser: Any) -> None:
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-out=main")
    fix_b = example / "templates" / f"{FIX_B}.yaml"
    fix_b.write_text(fix_b.read_text().replace("[test_failure_log, dependency_error]", "[test_failure_log]"))
    fix = example / "templates" / f"{FIX}.yaml"
    fix.write_text(fix.read_text().replace("[test_failure_log]\n", "[test_failure_log, dependency_error]\n"))
    pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-compare-to=main", "--llmgate-html=report.html")
    html_text = (pytester.path / "report.html").read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html_text)  # nothing fetched, nothing linked
    report = read_report(pytester.path / ".llmgate")
    page = _open(browser, pytester.path / "report.html")
    assert page.locator(".decision .decision-text").inner_text().startswith(f"PROMOTE {FIX} -> canary_candidate")
    _check_against_report(page, report)
    matrix = page.locator("table.matrix")
    assert matrix.get_attribute("data-shown") == "4"
    page.check(".only-failures")
    assert matrix.get_attribute("data-shown") == "3"  # hold_001 (fix-b), req_205 and hold_002 (the baseline)
    page.uncheck(".only-failures")
    page.check(".only-changes")
    assert matrix.get_attribute("data-shown") == "1"  # hold_001: fixed for one, broken for the other
    assert page.locator("td.c-fixed .verdict").inner_text() == "PASS [fixed]"
    assert page.locator("td.c-broken .verdict").inner_text() == "UNNECESSARY_ABSTENTION [broken]"
    assert page.locator(".shown").inner_text() == "showing 1 of 4 cases"
    page.uncheck(".only-changes")
    assert page.locator("figure.chart").count() == 3
    assert page.llmgate_problems == []
    assert all(url.startswith("file://") for url in page.llmgate_requests)
    shot = pytester.path / "report-example.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("LLMGATE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    page.close()


@pytest.mark.slow
def test_a_10000_case_report_in_a_browser(pytester: pytest.Pytester, make_experiment: Any, browser: Any) -> None:
    directory = make_experiment("big", suites={"main": []})
    states = ("log", "none", "other")
    lines = [json.dumps({"case_id": f"c{i:05d}", "slice_name": "s", "evidence_state": states[i % 3],
                         "expected_route": "ABSTAIN" if i % 3 == 1 else "SERVE", "source": "gen"})
             for i in range(10_000)]
    (directory / "main.suite.yaml").unlink()
    (directory / "main.suite.jsonl").write_text("\n".join(lines) + "\n")
    manifest = directory / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("main.suite.yaml", "main.suite.jsonl"))
    pytester.runpytest("big", "--llmgate-candidate=good", "--llmgate-candidate=unsafe", "-p", "no:terminal",
                       "--llmgate-html=big.html")
    report = read_report(pytester.path / ".llmgate")
    page = _open(browser, pytester.path / "big.html")
    _check_against_report(page, report)
    matrix = page.locator("table.matrix")
    assert matrix.get_attribute("data-shown") == "10000"
    page.check(".only-failures")
    # good abstains on "other" cases, unsafe serves "none" cases: a row fails when any of its runs fails it
    assert int(matrix.get_attribute("data-shown")) == sum(1 for i in range(10_000) if i % 3 != 0)
    assert page.locator(".only-changes").is_disabled()  # nothing to compare with
    page.screenshot(path=str(pytester.path / "report-10000.png"))
    assert page.llmgate_problems == []
    page.close()


# -- everything the run record knows, as displayed -------------------------------------------------
SAMPLED_PY = '''
import os

def sampled(case, artifact, trial=0):
    """Right on every case, except (when FLAKY is set) one unsafe serve on case c2 in trial 3."""
    if os.environ.get("FLAKY") and case["case_id"] == "c2" and trial == 3:
        return "SERVE"
    return "SERVE" if case["evidence_state"] == "test_failure_log" else "ABSTAIN"
'''
SERVED = "Serve only when the evidence state is one of: test_failure_log."
LLM_CASES = [
    case("c1", "test_failure_log", "SERVE", input={"question": "why did test_login fail on main?"}),
    case("c2", "no_source", "ABSTAIN", input={"question": "why did build 4411 fail?"}),
    case("c3", "flaky_signal", "ABSTAIN", input={"question": "why is the job red?"}),
]


def llm_template(server: Any, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai_chat", "model": "local-ci-answerer", "api_key_env": "LLMGATE_TEST_KEY",
            "base_url": server.url, "temperature": 0, "max_tokens": 64, "timeout": 5, "max_retries": 1,
            "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
            "prompt": {"system": f"You answer questions about CI failures. {SERVED} Reply with JSON.",
                       "user": "Question: {{ input.question }}\nEvidence state: {{ evidence_state }}"},
            **extra}


@pytest.fixture
def gated(pytester: pytest.Pytester, make_experiment: Any, llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An experiment with an LLM candidate (priced), a python candidate with 10 trials and an unsafe baseline,
    under a budget; ``run(*args)`` gates it."""
    pytest.importorskip("openai", reason="the openai extra is not installed")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-html")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    directory = make_experiment(
        "exp", suites={"main": LLM_CASES},
        templates={"llm": llm_template(llm_server), "sampled": {"provider": "python", "callable": "gate_sampled:sampled",
                                                                "trials": 10},
                   "unsafe": {"provider": "evidence_policy", "serve_evidence": "*"}},
        budget={"max_cost_per_case_usd": 1.0, "max_latency_p95_ms": 60_000},
    )
    (directory / "gate_sampled.py").write_text(SAMPLED_PY)

    def run(*args: str) -> Any:
        return pytester.runpytest("exp", "--llmgate-baseline=unsafe", "--llmgate-candidate=llm",
                                  "--llmgate-candidate=sampled", "-p", "no:cacheprovider", *args)

    return run


#: Every table of the page fits the viewport, or (a wide case matrix on a phone) sits in a box that scrolls
#: sideways; the page itself never does. ``strict``: no table needs its box to scroll either.
LAYOUT_PROBLEMS = """(strict) => {
  const width = document.documentElement.clientWidth, problems = [];
  if (document.documentElement.scrollWidth > width) { problems.push("page " + document.documentElement.scrollWidth); }
  document.querySelectorAll("table").forEach((table) => {
    const rect = table.getBoundingClientRect(), box = table.parentElement;
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(box).overflowX);
    const boxRect = box.getBoundingClientRect();
    if (rect.right > width + 0.5 && !(scrolls && boxRect.right <= width + 0.5)) {
      problems.push(table.className + " cut at " + width + ": right edge " + rect.right);
    }
    if (strict && box.scrollWidth > box.clientWidth + 0.5) {
      problems.push(table.className + " scrolls sideways: " + box.scrollWidth + " > " + box.clientWidth);
    }
  });
  return problems;
}"""


def _number(text: str, unit: str) -> float:
    assert "e-" not in text and "e+" not in text, text  # money and time as people write them
    return float(text.removeprefix("$").removesuffix(unit).replace(",", ""))


@pytest.mark.slow
def test_the_report_shows_costs_trials_bounds_and_mcnemar_as_the_record_says(
    pytester: pytest.Pytester, gated: Any, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated("--llmgate-record=new_episodes", "--llmgate-out=main")
    for trials in ("--llmgate-trials=5", "--llmgate-trials=10"):  # stored runs for the charts: one of 5 trials
        pytester.runpytest("exp", "--llmgate-candidate=sampled", trials, "-p", "no:cacheprovider")
    monkeypatch.setenv("FLAKY", "1")
    result = gated("--llmgate-compare-to=main", "--llmgate-html=report.html")
    result.stdout.fnmatch_lines(["*flaky: sampled: 1 case(s); worst: c2 (9 of 10 passed, agreement 90%)*"])
    runs = runs_by_template(pytester.path / ".llmgate")
    llm, sampled = runs["llm"], runs["sampled"]
    page = _open(browser, pytester.path / "report.html")
    assert page.llmgate_problems == []
    # cost and latency, per run, as the record has them
    for run in (llm, sampled):
        row = page.locator(f'table.costs tr[data-template="{run["params"]["template_id"]}"]')
        cost = run["metrics"]["cost"]
        assert _number(row.locator("td.p95").inner_text(), " ms") == pytest.approx(cost["latency_p95_ms"], rel=0.05)
        assert _number(row.locator("td.p50").inner_text(), " ms") == pytest.approx(cost["latency_p50_ms"], rel=0.05)
    cost = llm["metrics"]["cost"]
    row = page.locator('table.costs tr[data-template="llm"]')
    assert cost["cost_usd"] > 0 and _number(row.locator("td.cost").inner_text(), "") == pytest.approx(
        cost["cost_usd"], rel=0.05)
    assert _number(row.locator("td.cost-per-case").inner_text(), "") == pytest.approx(cost["cost_per_case_usd"],
                                                                                      rel=0.05)
    assert row.locator("td.tokens-in").inner_text() == str(cost["input_tokens"])
    assert row.locator("td.budget").inner_text() == "within"
    assert page.locator(".budget-limits").inner_text() == (
        "budget: max_cost_per_case_usd $1.00, max_latency_p95_ms 60000 ms, unknown_figures block")
    # the flaky case: k of n trials, as its case entry says, in its matrix cell
    (c2,) = [entry for entry in sampled["cases"] if entry["case_id"] == "c2"]
    assert (c2["flaky"], c2["passed_trials"], len(c2["trial_routes"])) == (True, 9, 10)
    run_index = [r["template_id"] for r in _report_runs(pytester)].index("sampled")
    cell = page.locator(f'table.matrix tr:has(td:text-is("c2")) td[data-run="{run_index}"]')
    assert cell.locator(".verdict").inner_text() == f"{c2['outcome']} [broken]"  # main's run passed it
    assert cell.locator("small").inner_text().startswith(f"{c2['passed_trials']}/{len(c2['trial_routes'])} passed, "
                                                          "agreement 90%")
    # the bound and the McNemar p-value
    row = page.locator('table.trials tr[data-template="sampled"]')
    bound = sampled["metrics"]["unsafe_rate_upper"]
    assert row.locator("td.unsafe-bound").inner_text() == f"{bound * 100:.3g}% at 95%"
    assert row.locator("td.flaky").inner_text().startswith("1: c2 (9/10 passed")
    for run in (llm, sampled):
        (paired,) = run["comparisons"]
        shown = page.locator(f'table.paired tr[data-template="{run["params"]["template_id"]}"] td.mcnemar-p')
        assert float(shown.inner_text()) == pytest.approx(paired["p_value"], rel=1e-3)
    # the comparison with main, case by case
    assert page.locator("table.changed tr.ch-broken td").first.inner_text() == "c2"
    # axes on the charts
    assert page.locator("figure.chart text.axis-label").count() == 3
    captions = page.locator("figure.chart figcaption").all_inner_texts()
    assert [caption.split(";")[0] for caption in captions] == [  # the 5-trial run is not charted with 10-trial ones
        "unsafe: 1 run(s), one trial per case", "llm: 1 run(s), one trial per case", "sampled: 2 run(s), 10 trials per case"]
    # the layout holds on a laptop and on a phone: no table cut off (element widths, not eyes)
    for width, strict in ((1280, True), (390, False)):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(LAYOUT_PROBLEMS, strict) == []
        shot = pytester.path / f"report-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    page.close()


def _report_runs(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    (experiment,) = read_report(pytester.path / ".llmgate")["experiments"]
    return list(experiment["runs"])


# -- the replies view: for the person who ran the session, never for the records ------------------
@pytest.mark.parametrize(("target", "words"), [
    ("afile/replies.json", "afile/replies.json: cannot be written: afile is a file, not a folder"),
    ("afolder", "afolder: cannot be written: is a folder"),
])
def test_a_replies_file_that_cannot_be_written_is_refused_before_any_case_runs(
    pytester: pytest.Pytester, make_experiment: Any, target: str, words: str
) -> None:
    # an outside review: it was found at the end, after every call was made (and paid for)
    make_experiment()
    (pytester.path / "afile").write_text("a file")
    (pytester.path / "afolder").mkdir()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", f"--llmgate-save-replies={target}",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --llmgate-save-replies: {words}"])
    assert not (pytester.path / ".llmgate" / "runs").exists()  # no case ran


def test_replies_that_could_not_be_written_are_not_announced(pytester: pytest.Pytester, make_experiment: Any) -> None:
    make_experiment()
    pytester.makeconftest("""
import shutil
from pathlib import Path

def pytest_collection_finish(session):  # after the start's check: the folder becomes a file
    shutil.rmtree("out")
    Path("out").write_text("a file now")
""")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-save-replies=out/replies.json",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR llmgate: out/replies.json: cannot be written: out is a file, not a folder"])
    result.stdout.no_fnmatch_line("replies: *")
    result.stdout.fnmatch_lines(["report: .llmgate/report.json"])  # the records are written whatever the replies



@pytest.mark.slow
def test_llmgate_view_shows_two_candidates_replies_side_by_side_and_nothing_else_holds_them(
    pytester: pytest.Pytester, make_experiment: Any, llm_server: Any, browser: Any, monkeypatch: pytest.MonkeyPatch,
    mlflow_imported: Any,
) -> None:
    pytest.importorskip("openai", reason="the openai extra is not installed")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-html")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    unsafe = llm_template(llm_server, trials=2)
    unsafe["prompt"] = {**unsafe["prompt"], "system": "You answer questions about CI failures. Serve always. Reply "
                                                      "with JSON."}
    make_experiment("exp", suites={"main": LLM_CASES}, templates={"careful": llm_template(llm_server), "eager": unsafe})
    both = ("exp", "--llmgate-candidate=careful", "--llmgate-candidate=eager", "-p", "no:cacheprovider")
    pytester.runpytest(*both, "--llmgate-record=new_episodes", "--llmgate-out=live")
    llm_server.stop()  # from here on: replayed, no server

    refused = pytester.runpytest(*both, "--llmgate-save-replies=.llmgate/replies.json")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*--llmgate-save-replies=*replies.json: is inside the records folder*"])

    tracking = f"sqlite:///{pytester.path / 'exports' / 'mlflow.db'}"
    result = pytester.runpytest(*both, "--llmgate-save-replies=mine/replies.json", "--llmgate-html=report.html",
                                "--llmgate-markdown=summary.md", "--llmgate-mlflow", f"--llmgate-mlflow-uri={tracking}")
    result.stdout.fnmatch_lines(["markdown: summary.md", "html: report.html (open it in a browser)",
                                 "replies: *replies.json (case input and model output*never part of the records)"])
    result.stdout.no_fnmatch_line("*ERROR llmgate*")
    saved = json.loads((pytester.path / "mine" / "replies.json").read_text())
    runs = runs_by_template(pytester.path / ".llmgate")
    for entry in saved["cases"]:  # each case's verdict is its run record's
        (recorded,) = [c for c in runs[entry["template_id"]]["cases"] if c["case_id"] == entry["case_id"]]
        assert entry["outcome"] == recorded["outcome"]
        assert all(trial["source"] == "replayed" for trial in entry["trials"])
    replies = {trial["reply"] for entry in saved["cases"] for trial in entry["trials"]}
    assert len(replies) == 2 and None not in replies  # a careful ABSTAIN and an eager SERVE, as JSON
    assert "root cause from the cited evidence" in "".join(replies)

    # under xdist the workers' transcripts reach the same file
    xdist = pytester.runpytest(*both, "--llmgate-save-replies=xdist.json", "--llmgate-out=xdist-records", "-n", "2")
    assert xdist.ret == result.ret
    assert json.loads((pytester.path / "xdist.json").read_text())["cases"] == saved["cases"]
    assert not list(pytester.path.glob(".xdist.json.*"))  # the workers' parts are merged and gone
    (pytester.path / "empty.json").write_text("")  # an empty file holds nothing: it may be, as for the summaries
    assert pytester.runpytest(*both, "--llmgate-save-replies=empty.json", "--llmgate-out=empty-records").ret == result.ret
    assert json.loads((pytester.path / "empty.json").read_text())["cases"] == saved["cases"]

    done = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "view", "mine/replies.json"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "replies view: mine/replies.html (3 case(s), 2 candidate(s))" in done.stdout
    # the page replaces only a replies page, never another file, and never goes into a records folder
    def view(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "view", "mine/replies.json", *args],
                              cwd=pytester.path, capture_output=True, text=True, timeout=60, check=False)

    assert view().returncode == 0  # its own page again
    refused = view("--out", ".llmgate/replies.html")
    assert refused.returncode == 2 and "is in a records folder (beside its runs/ or under it)" in refused.stderr
    for inside in (".llmgate/runs/replies.html", ".llmgate/reports/replies.html"):  # under it, where CI uploads it
        refused = view("--out", inside)
        assert refused.returncode == 2 and "is in a records folder" in refused.stderr
        assert not (pytester.path / inside).exists()
    before = (pytester.path / "summary.md").read_bytes()
    refused = view("--out", "summary.md")
    assert refused.returncode == 2 and "is a file that is not a replies page; it is never replaced" in refused.stderr
    assert (pytester.path / "summary.md").read_bytes() == before
    (pytester.path / "empty.html").write_text("")  # an empty file holds nothing: it may be, as for the summaries
    assert view("--out", "empty.html").returncode == 0 and b"llmgate view" in (pytester.path / "empty.html").read_bytes()
    for args, words in ((["--llmgate-save-replies=report.html"], "is also --llmgate-html's file"),
                        (["--llmgate-save-replies=summary.md", "--llmgate-html=other.html"],
                         "is a file that holds no saved replies; the replies never replace another file")):
        clash = pytester.runpytest(*both, *args, *([] if "--llmgate-html=other.html" in args else
                                                   ["--llmgate-html=report.html"]))
        assert clash.ret == pytest.ExitCode.USAGE_ERROR
        clash.stderr.fnmatch_lines([f"*{words}*"])
    assert (pytester.path / "summary.md").read_bytes() == before
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((pytester.path / "mine" / "replies.html").as_uri())
    case_c2 = page.locator('section.case[data-case="c2"]')
    careful, eager = case_c2.locator('article[data-template="careful"]'), case_c2.locator('article[data-template="eager"]')
    left, right = careful.bounding_box(), eager.bounding_box()
    assert left["y"] == right["y"] and left["x"] + left["width"] <= right["x"]  # side by side
    by_template = {e["template_id"]: e for e in saved["cases"] if e["case_id"] == "c2"}
    assert careful.locator(".verdict").inner_text() == "PASS"
    assert eager.locator(".verdict").inner_text() == "UNSAFE_CLAIM_SERVED (0/2 trials passed)"
    assert careful.locator("pre.reply").inner_text() == by_template["careful"]["trials"][0]["reply"]
    assert list(eager.locator("pre.reply").all_inner_texts()) == [
        trial["reply"] for trial in by_template["eager"]["trials"]]
    assert eager.locator(".trial-head").first.inner_text() == "trial 1 of 2: SERVE (replayed)"
    prompt = case_c2.locator("details.prompt").first
    prompt.locator("summary").click()  # the prompt, folded under each candidate's column, opens on a click
    assert "Question: why did build 4411 fail?" in prompt.inner_text()
    assert all(url.startswith("file://") for url in requests)
    page.close()

    # nothing the gate writes for others holds a reply: records, report, HTML, Markdown, the MLflow export
    written = [path for path in pytester.path.rglob("*") if path.is_file()
               and not path.is_relative_to(pytester.path / "exp")  # the experiment and its recordings
               and path.name not in ("replies.json", "replies.html", "xdist.json", "empty.json", "empty.html")]
    assert {path.name for path in written} >= {"report.json", "report.html", "summary.md", "mlflow.db"}
    for path in written:
        data = path.read_bytes()
        for reply in replies:
            assert reply.encode() not in data, path
        assert b"root cause from the cited evidence" not in data, path

    bad = pytester.path / "not-replies.json"
    bad.write_text('{"schema": "llmgate.run/1"}')
    done = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "view", str(bad)],
                          cwd=pytester.path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("llmgate: error: not-replies.json: not a replies file written by "
                                  "--llmgate-save-replies")


def test_money_is_usd() -> None:
    assert [usd(value) for value in (0.0, 3.6e-05, 0.000123456, 0.0123, 0.5, 12.5, 1234.5, 1.0012)] == [
        "$0", "$0.000036", "$0.000123", "$0.0123", "$0.50", "$12.50", "$1,234.50", "$1.0012"]
