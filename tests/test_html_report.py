"""The HTML report (``--llmgate-html``), opened in a real browser: Debian's headless Chromium through Playwright.

The browser tests skip only where ``/usr/bin/chromium`` is missing and ``CI`` is not set; in CI (``.ci/run``
installs the browser) they must run, and a missing browser fails them."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import FIX, FIX_B, THREE_RUNS, read_report

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
    assert page.locator("td.c-fixed").inner_text() == "PASS [fixed]"
    assert page.locator("td.c-broken").inner_text() == "UNNECESSARY_ABSTENTION [broken]"
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
