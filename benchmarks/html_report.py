"""Benchmark (h): opening and filtering the HTML report of a 10,000-case run in headless Chromium.

    python benchmarks/html_report.py                      # 10,000 cases, two candidates, 5 repetitions
    python benchmarks/html_report.py --cases 200 --repeat 1   # a smoke run

Writes an experiment of N generated cases (JSON Lines), runs the gate once with ``--llmgate-html``, then opens
the page in Debian's ``/usr/bin/chromium`` through Playwright (never ``playwright install``) and measures, as
medians: from navigation until the matrix is drawn (``body[data-ready]``), and each filter (failures only,
then back to every case). Target: open and filter within 2 s at 10,000 cases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
STATES = ("test_failure_log", "no_source", "dependency_error")


def write_experiment(root: Path, cases: int) -> Path:
    directory = root / "big"
    (directory / "templates").mkdir(parents=True)
    (directory / "llmgate.yaml").write_text(
        "experiment: big\npolicy_id: p\nevidence_version: e\nevaluator_version: v\n"
        "suites:\n  main: main.suite.jsonl\n"
    )
    with (directory / "main.suite.jsonl").open("w") as handle:
        for index in range(cases):
            state = STATES[index % 3]
            handle.write(json.dumps({"case_id": f"c{index:06d}", "slice_name": "s", "evidence_state": state,
                                     "expected_route": "ABSTAIN" if state == "no_source" else "SERVE",
                                     "source": "gen"}) + "\n")
    for template_id, serve in (("narrow", "[test_failure_log]"), ("wide", '"*"')):
        (directory / "templates" / f"{template_id}.yaml").write_text(
            f"template_id: {template_id}\nprovider: evidence_policy\nserve_evidence: {serve}\n")
    return directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_experiment(root, args.cases)
        page_path = root / "report.html"
        subprocess.run([sys.executable, "-m", "pytest", "big", "-q", "-p", "no:cacheprovider",
                        "--llmgate-candidate=narrow", "--llmgate-candidate=wide", f"--llmgate-html={page_path}"],
                       cwd=root, capture_output=True, check=False)
        page_bytes = page_path.stat().st_size
        opened, filtered, unfiltered = [], [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            for _ in range(args.repeat):
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(page_path.as_uri())
                page.wait_for_selector("body[data-ready=true]")
                opened.append(time.perf_counter() - start)
                start = time.perf_counter()
                page.check(".only-failures")
                page.wait_for_function(f"document.querySelector('table.matrix').dataset.shown !== String({args.cases})")
                filtered.append(time.perf_counter() - start)
                start = time.perf_counter()
                page.uncheck(".only-failures")
                page.wait_for_function(f"document.querySelector('table.matrix').dataset.shown === String({args.cases})")
                unfiltered.append(time.perf_counter() - start)
                page.close()
            browser.close()
    figures = {"cases": args.cases, "page_bytes": page_bytes,
               "open_s": statistics.median(opened), "filter_failures_s": statistics.median(filtered),
               "unfilter_s": statistics.median(unfiltered)}
    figures["open_and_filter_s"] = figures["open_s"] + figures["filter_failures_s"]
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
