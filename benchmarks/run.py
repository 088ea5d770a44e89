"""Benchmarks for pytest-llmgate: each figure is a ratio against a baseline measured in the same run.

    python benchmarks/run.py                      # 1,000, 10,000 and 100,000 cases, 3 repetitions
    python benchmarks/run.py --sizes 1000,10000 --repeat 5 --out benchmarks/results/latest.json

Measured, as medians of the repetitions (wall-clock seconds, or peak RSS):
  (a) pytest on the experiment with one candidate  vs  a bare pytest run over as many trivial custom items
  (b) loading and validating a suite               vs  json.loads of the same cases
  (c) the fingerprint                              vs  canonical json.dumps plus SHA-256
  (d) pytest -n 2                                  vs  the serial run
  (e) peak memory (max RSS) per case, and how it grows from 10,000 to 100,000 cases
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVIDENCE = ("test_failure_log", "dependency_error", "no_source", "flaky_signal")
FLOOR_CONFTEST = '''
import pytest

class TrivialItem(pytest.Item):
    def runtest(self):
        pass

class Items(pytest.File):
    def collect(self):
        count = int(self.path.read_text())
        for index in range(count):
            yield TrivialItem.from_parent(self, name=f"case_{index:07d}[t1]")

def pytest_collect_file(file_path, parent):
    if file_path.name == "floor.items":
        return Items.from_parent(parent, path=file_path)
'''


def make_cases(count: int) -> list[dict[str, Any]]:
    cases = []
    for index in range(count):
        evidence = EVIDENCE[index % len(EVIDENCE)]
        cases.append({
            "case_id": f"case_{index:07d}",
            "slice_name": f"slice_{index % 17}",
            "evidence_state": evidence,
            "expected_route": "SERVE" if evidence in EVIDENCE[:2] else "ABSTAIN",
            "source": "synthetic",
        })
    return cases


def write_experiment(root: Path, count: int, suffix: str) -> Path:
    import yaml

    directory = root / f"exp{suffix.replace('.', '_')}"
    (directory / "templates").mkdir(parents=True)
    cases = make_cases(count)
    suite = directory / f"main.suite{suffix}"
    if suffix == ".jsonl":
        suite.write_text("".join(json.dumps(case) + "\n" for case in cases))
    else:
        suite.write_text(yaml.dump({"cases": cases}, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                                   sort_keys=False))
    (directory / "llmgate.yaml").write_text(
        f"experiment: bench\npolicy_id: p\nevidence_version: e\nevaluator_version: v\n"
        f"suites:\n  main: main.suite{suffix}\n"
    )
    for template_id, served in (("t1", "[test_failure_log, dependency_error]"), ("t2", "[test_failure_log]"),
                                ("t3", '"*"')):
        (directory / "templates" / f"{template_id}.yaml").write_text(
            f"template_id: {template_id}\nprovider: evidence_policy\nserve_evidence: {served}\n"
        )
    return directory


def write_floor(root: Path, count: int) -> Path:
    directory = root / "floor"
    directory.mkdir()
    (directory / "conftest.py").write_text(FLOOR_CONFTEST)
    (directory / "floor.items").write_text(str(count))
    return directory


def run_pytest(cwd: Path, *args: str) -> tuple[float, int]:
    """Wall-clock seconds and peak RSS (KiB) of one pytest process."""
    command = [sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:randomly", *args]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"pytest {' '.join(args)} exited {code} in {cwd}")
    return elapsed, usage.ru_maxrss


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(count: int, repeat: int, root: Path) -> list[dict[str, Any]]:
    from pytest_llmgate import canonical_json, fingerprint
    from pytest_llmgate._suite import SuiteCache, load_suite, read_cases

    rows: list[dict[str, Any]] = []

    def row(key: str, label: str, baseline: float, ours: float, target: float | None, unit: str = "s") -> None:
        ratio = ours / baseline if baseline else float("inf")
        rows.append({"cases": count, "key": key, "measure": label, "baseline": round(baseline, 4),
                     "ours": round(ours, 4), "unit": unit, "ratio": round(ratio, 3), "target": target,
                     "met": None if target is None else ratio <= target})

    yaml_exp = write_experiment(root, count, ".yaml")
    jsonl_exp = write_experiment(root, count, ".jsonl")
    floor = write_floor(root, count)
    out = str(root / "records")

    # (a) and (d): whole pytest sessions; one warm-up each (pytest's and our caches), then the median.
    plugin_args = ("exp_yaml", "--llmgate-candidate=t1", f"--llmgate-out={out}")
    run_pytest(root, *plugin_args)
    run_pytest(root, "floor")
    floor_runs = [run_pytest(root, "floor") for _ in range(repeat)]
    plugin_runs = [run_pytest(root, *plugin_args) for _ in range(repeat)]
    floor_s = statistics.median(t for t, _ in floor_runs)
    plugin_s = statistics.median(t for t, _ in plugin_runs)
    targets_a = {10_000: 1.25, 100_000: 1.35}
    row("a", "pytest, one candidate vs bare pytest items", floor_s, plugin_s, targets_a.get(count))
    xdist_s = median_of(repeat, lambda: run_pytest(root, *plugin_args, "-n", "2")[0])
    row("d", "pytest -n 2 vs serial", plugin_s, xdist_s, None)
    rss_kib = statistics.median(rss for _, rss in plugin_runs)
    rows.append({"cases": count, "key": "e", "measure": "peak RSS of the plugin run", "baseline": None,
                 "ours": rss_kib, "unit": "KiB", "ratio": round(rss_kib * 1024 / count, 1), "target": None,
                 "met": None, "note": "ratio column: bytes per case"})

    # (b) loading and validating a suite.
    jsonl_path = jsonl_exp / "main.suite.jsonl"
    jsonl_text = jsonl_path.read_text()
    json_s = median_of(repeat, lambda: timed(lambda: [json.loads(line) for line in jsonl_text.splitlines()]))
    jsonl_s = median_of(repeat, lambda: timed(lambda: read_cases(jsonl_path, jsonl_path.read_bytes())))
    row("b", "JSONL suite load+validate vs json.loads", json_s, jsonl_s, 3.0 if count == 100_000 else None)
    whole_s = median_of(repeat, lambda: timed(lambda: load_suite("main", jsonl_path)))
    row("b", "JSONL suite, whole load_suite (+ fingerprint, case objects) vs json.loads", json_s, whole_s, None)
    yaml_path = yaml_exp / "main.suite.yaml"
    cache = SuiteCache(root / "suite-cache")
    load_suite("main", yaml_path, cache=cache)  # the first session fills the cache
    cached_s = median_of(repeat, lambda: timed(lambda: load_suite("main", yaml_path, cache=cache)))
    row("b", "YAML suite, second session vs json.loads", json_s, cached_s, 3.0 if count == 100_000 else None)
    cold_s = median_of(max(1, repeat // 2), lambda: timed(lambda: load_suite("main", yaml_path)))
    row("b", "YAML suite, first session vs json.loads", json_s, cold_s, None)

    # (c) the fingerprint.
    cases = make_cases(count)[::-1]
    raw_s = median_of(repeat, lambda: timed(lambda: hashlib.sha256(
        json.dumps(cases, sort_keys=True, separators=(",", ":")).encode()).hexdigest()))
    ours_s = median_of(repeat, lambda: timed(lambda: fingerprint(cases)))
    row("c", "fingerprint vs json.dumps + SHA-256", raw_s, ours_s, 1.3)
    sha_s = median_of(repeat, lambda: timed(lambda: hashlib.sha256(yaml_path.read_bytes()).hexdigest()))
    fp_s = median_of(repeat, lambda: timed(lambda: cache.fingerprint(yaml_path)))
    row("c", "fingerprint, second session vs SHA-256 of the file", sha_s, fp_s, 2.0)
    assert cache.fingerprint(yaml_path) == fingerprint(cases) == hashlib.sha256(canonical_json(cases)).hexdigest()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for count in (int(size) for size in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="llmgate-bench-") as tmp:
            print(f"measuring {count:,} cases ...", file=sys.stderr, flush=True)
            rows.extend(measure(count, args.repeat, Path(tmp)))
    rss = {row["cases"]: row["ours"] for row in rows if row["key"] == "e"}
    if 10_000 in rss and 100_000 in rss:
        growth = rss[100_000] / rss[10_000]
        rows.append({"cases": 100_000, "key": "e", "measure": "peak RSS, 100,000 vs 10,000 cases",
                     "baseline": rss[10_000], "ours": rss[100_000], "unit": "KiB", "ratio": round(growth, 2),
                     "target": 12.0, "met": growth <= 12.0})
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
               "processor": platform.processor() or platform.machine()}
    result = {"schema": "llmgate.benchmark/1", "machine": machine, "repeat": args.repeat, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def table(result: dict[str, Any]) -> str:
    lines = [f"machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
             f"Python {result['machine']['python']}; medians of {result['repeat']}",
             "", "| cases | | measure | baseline | ours | ratio | target | met |", "|---:|---|---|---:|---:|---:|---:|---|"]
    for row in result["rows"]:
        target = "" if row["target"] is None else f"≤ {row['target']}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        baseline = "" if row["baseline"] is None else f"{row['baseline']} {row['unit']}"
        lines.append(f"| {row['cases']:,} | ({row['key']}) | {row['measure']} | {baseline} | {row['ours']} {row['unit']} "
                     f"| {row['ratio']} | {target} | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
