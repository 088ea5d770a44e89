"""Benchmark (n): a suite split over CI jobs and merged by ``llmgate merge`` (issue 17).

    python benchmarks/split_merge.py                          # 100,000 replayed cases in 4 parts; 1,000,000 merged
    python benchmarks/split_merge.py --cases 2000 --million 20000   # a smoke run

(n1) A generated experiment of ``--cases`` cases with an ``openai_chat`` candidate is recorded once against the
     loopback endpoint (tests/llm_server.py), then replayed (the endpoint stopped) in one session and in 4 parts made
     with pytest-shard (``--num-shards 4 --shard-id I``); ``llmgate merge`` of the parts must give the single
     session's report and record (metrics, statuses, decision, per-case outcomes; run ids, times and measured
     latencies aside).
(n2) The merge, in a fresh process, against reading the four parts' records (``read_run``) in a fresh process:
     target under 2x; medians of ``--repeat``.
(n3) ``llmgate merge`` of ``--million`` cases in 4 parts: the parts are the 100,000-case run's part records scaled
     up (each case repeated under new ids, figures recomputed by the gate's own code), merged by the ``llmgate``
     command in its own process: its peak RSS (target under 1 GB) and its time against reading the parts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import USER_ENV, no_errors, run_pytest, start_server, write_experiment

PARTS = 4
VOLATILE = {"run_id", "source_run_id", "generated_at", "started_at", "finished_at", "signature", "baseline_run_id",
            "latency_p50_ms", "latency_p95_ms", "latency_max_ms", "latency_ms", "artifacts", "merged_from",
            "experiment_path", "path", "records", "report"}

READ = """
import sys, time
from pathlib import Path
from pytest_llmgate.io.audit import SuiteCheck, check_run, read_run
from pytest_llmgate.io.history import run_files
files = [path for folder in sys.argv[1:] for path in run_files(Path(folder))]
start = time.perf_counter()
cases = sum(len(read_run(path).record.cases) for path in files)
decoded = time.perf_counter() - start
start = time.perf_counter()
suites = SuiteCheck()
assert not any(check_run(read_run(path), None, suites).refused for path in files)
print(decoded, cases, time.perf_counter() - start)
"""
MERGE = """
import sys, time
from pathlib import Path
from pytest_llmgate.engine.merge import merge
start = time.perf_counter()
merge([Path(folder) for folder in sys.argv[2:]], Path(sys.argv[1]))
print(time.perf_counter() - start)
"""


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def llm_experiment(root: Path, count: int, url: str) -> Path:
    directory = write_experiment(root, count, ".jsonl")
    (directory / "templates" / "llm.yaml").write_text(json.dumps({
        "template_id": "llm", "provider": "openai_chat", "model": "local", "base_url": url,
        "api_key_env": "LLMGATE_BENCH_KEY", "max_retries": 0, "timeout": 30,
        "prompt": {"system": "Serve only when the evidence state is one of: test_failure_log, dependency_error.",
                   "user": "Evidence state: {{ evidence_state }}"},
    }))
    return directory


def python(code: str, *args: str) -> tuple[list[str], int]:
    """What a fresh interpreter printed, and its peak RSS (KiB)."""
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=USER_ENV)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {code[:60]}... {args[:2]}")
    return out.split(), usage.ru_maxrss


def same_outcome(single: Path, merged: Path) -> bool:
    def load(folder: Path) -> tuple[Any, list[Any]]:
        report = scrub(json.loads((folder / "report.json").read_text()))
        runs = [scrub(json.loads(path.read_text())) for path in sorted((folder / "runs").glob("*.json"))]
        return report, runs
    return load(single) == load(merged)


AUDITED: list[float] = []  # reading the parts as llmgate reads any stored record: decoded, then audited


def timed_merges(parts: list[Path], root: Path, repeat: int) -> tuple[float, float, int, int]:
    """Median seconds of reading the parts and of merging them (alternating), the merge's peak RSS, the cases read."""
    reads, merges, rss, cases = [], [], [], 0
    for index in range(repeat):
        printed, _ = python(READ, *map(str, parts))
        reads.append(float(printed[0]))
        cases = int(printed[1])
        AUDITED.append(float(printed[2]))
        printed, peak = python(MERGE, str(root / f"merged-{index}"), *map(str, parts))
        merges.append(float(printed[0]))
        rss.append(peak)
    return statistics.median(reads), statistics.median(merges), max(rss), cases


def scale_parts(parts: list[Path], single: Path, factor: int, root: Path) -> list[Path]:
    """The parts of a run with each case repeated ``factor`` times under new ids (c -> c~0 ... c~factor-1), every
    figure recomputed by the gate's own code and written as the gate writes records."""
    import msgspec

    from pytest_llmgate.io.audit import read_run
    from pytest_llmgate.io.history import run_files
    from pytest_llmgate.io.store import RUNS, write_new
    from pytest_llmgate.records.codec import dump_chunks
    from pytest_llmgate.records.run import aggregates, cases_digest, implied_latencies

    def scaled_hash(case_sha256: str | None, k: int) -> str:
        return hashlib.sha256(f"{case_sha256}~{k}".encode()).hexdigest()

    (single_path,) = run_files(single)
    whole = cases_digest(scaled_hash(entry.case_sha256, k) for entry in read_run(single_path).record.cases
                         for k in range(factor))
    scaled = []
    for number, folder in enumerate(parts):
        (path,) = run_files(folder)
        record = read_run(path).record
        part = record.part
        assert part is not None
        entries = [msgspec.structs.replace(entry, case_id=f"{entry.case_id}~{k}",
                                           case_sha256=scaled_hash(entry.case_sha256, k))
                   for entry in record.cases for k in range(factor)]
        cost_of = {entry.case_id: entry.cost for entry in record.cases}  # a session lists only other latencies
        latencies = {f"{case_id}~{k}": value for case_id, value in part.latencies_ms.items()
                     if value != implied_latencies(cost_of.get(case_id)) for k in range(factor)}
        new_part = msgspec.structs.replace(
            part, case_ids=tuple(f"{case_id}~{k}" for case_id in part.case_ids for k in range(factor)),
            latencies_ms=latencies, cases_sha256=whole)
        # no suite on disk holds the scaled cases: the record names no experiment
        new = msgspec.structs.replace(
            record, part=new_part, experiment_path=None,
            **aggregates(entries, False, latencies, list(record.suite_metrics), record.role, record.promotion,
                         record.budget))
        out = root / f"part{number}"
        write_new(out / RUNS / f"{new.run_id}.json", dump_chunks(new))
        scaled.append(out)
        del entries, latencies, new, new_part, record
    return scaled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--million", type=int, default=1_000_000, help="cases of the scaled merge (n3)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "split.json")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="llmgate-split-") as tmp:
        root = Path(tmp) if args.keep is None else args.keep
        root.mkdir(parents=True, exist_ok=True)
        server, url = start_server(root)
        try:
            directory = llm_experiment(root, args.cases, url)
            common = (directory.name, "--llmgate-candidate=llm", "-p", "no:cacheprovider")
            print(f"recording {args.cases:,} replies ...", file=sys.stderr, flush=True)
            run_pytest(root, *common, f"--llmgate-out={root / 'recorded'}", "--llmgate-record=all")
        finally:
            server.terminate()
            server.wait()
        print("replaying: one session, then 4 parts ...", file=sys.stderr, flush=True)
        no_errors(root / "recorded")
        single_s, single_rss = run_pytest(root, *common, f"--llmgate-out={root / 'single'}")
        no_errors(root / "single")
        parts = []
        part_s = []
        for shard in range(PARTS):
            out = root / "parts" / str(shard)
            part_s.append(run_pytest(root, *common, f"--llmgate-out={out}", "--num-shards", str(PARTS),
                                     "--shard-id", str(shard))[0])
            parts.append(out)
            no_errors(out)
        read_s, merge_s, merge_rss, read_cases = timed_merges(parts, root / "n2", args.repeat)
        assert read_cases == args.cases, (read_cases, args.cases)
        equal = same_outcome(root / "single", root / "n2" / "merged-0")
        rows.append({"cases": args.cases, "key": "n", "measure": f"replayed openai_chat: {PARTS} pytest-shard parts "
                     "merged vs one session (report and record, ids and times aside)", "baseline": None,
                     "ours": "equal" if equal else "DIFFERENT", "unit": "", "ratio": None, "target": None,
                     "met": equal})
        rows.append({"cases": args.cases, "key": "n", "measure": "one replayed session vs the slowest of its "
                     f"{PARTS} parts (wall-clock)", "baseline": round(max(part_s), 3), "ours": round(single_s, 3),
                     "unit": "s", "ratio": round(single_s / max(part_s), 3), "target": None, "met": None})
        rows.append({"cases": args.cases, "key": "n", "measure": f"llmgate merge of the {PARTS} parts vs reading "
                     "their records", "baseline": round(read_s, 4), "ours": round(merge_s, 4), "unit": "s",
                     "ratio": round(merge_s / read_s, 3), "target": 2.0, "met": merge_s / read_s <= 2.0})
        audited_s = statistics.median(AUDITED)
        rows.append({"cases": args.cases, "key": "n", "measure": f"llmgate merge of the {PARTS} parts vs reading "
                     "them as llmgate reads a stored record (decoded and audited: read_run + check_run)",
                     "baseline": round(audited_s, 4), "ours": round(merge_s, 4), "unit": "s",
                     "ratio": round(merge_s / audited_s, 3), "target": None, "met": None})
        rows.append({"cases": args.cases, "key": "n", "measure": "peak RSS: the merge vs the single session",
                     "baseline": single_rss, "ours": merge_rss, "unit": "KiB",
                     "ratio": round(merge_rss / single_rss, 3), "target": None, "met": None})
        factor = max(1, args.million // args.cases)
        print(f"scaling the parts to {args.cases * factor:,} cases ...", file=sys.stderr, flush=True)
        big = scale_parts(parts, root / "single", factor, root / "big")
        big_read_s, _, _, big_cases = timed_merges(big, root / "n3-read", 1)
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "pytest_llmgate.cli.main", "merge", *map(str, big), "--out",
                                    str(root / "n3")], stdout=subprocess.DEVNULL, env=USER_ENV)
        _, status, usage = os.wait4(process.pid, 0)
        big_merge_s = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        assert code in (0, 1), code
        limit_kib = 1024 * 1024
        rows.append({"cases": big_cases, "key": "n", "measure": f"llmgate merge of {PARTS} parts (the command, whole "
                     "process): peak RSS", "baseline": None, "ours": usage.ru_maxrss, "unit": "KiB",
                     "ratio": None, "target": "1 GiB", "met": usage.ru_maxrss <= limit_kib})
        rows.append({"cases": big_cases, "key": "n", "measure": f"llmgate merge of {PARTS} parts (the command, whole "
                     "process) vs reading their records", "baseline": round(big_read_s, 3),
                     "ours": round(big_merge_s, 3), "unit": "s", "ratio": round(big_merge_s / big_read_s, 3),
                     "target": None, "met": None})
    result = {"schema": "llmgate.benchmark/1", "repeat": args.repeat, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"| {row['cases']:,} | (n) | {row['measure']} | {row['baseline'] or ''} {row['unit'] if row['baseline'] else ''}"
              f" | {row['ours']} {row['unit']} | {row['ratio'] or ''} | {row['target'] or ''} | "
              f"{'' if row['met'] is None else 'yes' if row['met'] else '**no**'} |")


if __name__ == "__main__":
    main()
