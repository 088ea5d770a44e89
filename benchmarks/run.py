"""Benchmarks for pytest-llmgate: each figure is a ratio against a baseline measured in the same run.

    python benchmarks/run.py                      # 1,000, 10,000 and 100,000 cases, 3 repetitions
    python benchmarks/run.py --sizes 1000,10000 --repeat 5 --out benchmarks/results/latest.json

Measured, as medians of the repetitions (wall-clock seconds, or peak RSS; a figure and its baseline alternate
where a run takes seconds):
  (a) pytest on the experiment with one candidate  vs  a bare pytest run over as many trivial custom items;
      and the cost accounting's share of that run: each call measured (``measured`` against calling ``route``)
      plus the per-case and per-run cost figures built from the calls, against the whole run (target <= 1.02)
  (b) loading and validating a suite               vs  json.loads of the same cases
  (c) the fingerprint                              vs  canonical json.dumps plus SHA-256
  (d) pytest -n 2                                  vs  the serial run
  (e) peak memory (max RSS) per case against bare pytest's per item (each less the peak of an empty session in
      the same run, ours with the gate loaded: the fixed cost of a process), and how it grows from 10,000 to
      100,000 cases
  (f) openai_chat: 200 calls to a local endpoint answering in 50 ms, 16 in flight, in the plugin's call pool,
      against the same requests made with the SDK alone in 16 threads in the same run (target <= 1.1x; batches
      alternate, medians of at least 9); for reading: the ideal 200 x 50 ms / 16, bare http.client in 16 threads
      (the endpoint's own floor), per-call CPU, and a replayed run against an evidence_policy run
  (g) openai_chat: 1,000 calls to a local endpoint answering in 500 ms, 64 in flight, against the ideal
      1000 / 64 x 0.5 s = 7.8 s (target <= 1.15x), and the SDK alone in 64 threads for reading
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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


#: Sessions run as on a user's machine: Python caches bytecode (a sandbox may set PYTHONDONTWRITEBYTECODE, which
#: makes every session compile every module again, the plugin's and pytest's alike).
#: The loopback endpoint's key (any value): set before USER_ENV is taken, so that every session gets it.
os.environ.setdefault("LLMGATE_BENCH_KEY", "local")
USER_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
#: A measured session loads pytest's own plugins and only the third-party ones it measures (``plugins_for``),
#: whatever else the environment has installed: the test extra brings hypothesis's plugin (about 0.12 s at the end
#: of every session), anyio's, pytest-rerunfailures and more, which would load in the baseline and in ours alike,
#: a floor that a user without them does not pay.
SESSION_ENV = {**USER_ENV, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def plugins_for(args: Sequence[str]) -> list[str]:
    """The ``-p`` options that load what a session measures: llmgate (unless it is disabled), pytest-xdist for
    ``-n``, pytest-shard for ``--num-shards``."""
    loaded = [] if "no:llmgate" in args else ["-p", "llmgate"]
    if any(arg == "-n" or arg.startswith("--numprocesses") or (arg.startswith("-n") and arg[2:].isdigit())
           for arg in args):
        loaded += ["-p", "xdist"]
    if "--num-shards" in args:
        loaded += ["-p", "pytest-shard"]
    return loaded


def no_errors(out: Path) -> None:
    """Refuse figures of sessions whose LLM calls failed (a session that errors every case is fast and wrong)."""
    for path in sorted((out / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        if record["metrics"]["error_count"]:
            first = next(case.get("error") for case in record["cases"] if case.get("error"))
            raise SystemExit(f"{path}: {record['metrics']['error_count']} case(s) errored ({first}); "
                             "the benchmark measures sessions whose calls succeed")


#: ``python -m pytest`` that writes its own peak RSS (VmHWM, KiB) at exit to the file named by the environment.
#: A child's ``ru_maxrss`` counts the RSS of the process it was started from (Linux records the parent's high-water
#: mark at exec), and this script holds the generated cases: an empty session would read as large as it.
_PYTEST_WITH_PEAK = """\
import atexit, os, sys
def _peak():
    try:
        with open("/proc/self/status") as status:
            peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return
    with open(os.environ["LLMGATE_BENCH_PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(_peak)
import pytest
sys.exit(pytest.console_main())
"""


def run_pytest(cwd: Path, *args: str, codes: tuple[int, ...] = (0, 1)) -> tuple[float, int]:
    """Wall-clock seconds and peak RSS (KiB) of one pytest process (its own VmHWM where /proc has it, else
    ``ru_maxrss``)."""
    command = [sys.executable, "-c", _PYTEST_WITH_PEAK, "-q", "--no-header", *plugins_for(args), *args]
    with tempfile.TemporaryDirectory(prefix="llmgate-peak-") as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**SESSION_ENV, "LLMGATE_BENCH_PEAK_FILE": str(peak_file)}
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        peak = int(peak_file.read_text()) if peak_file.exists() else usage.ru_maxrss
    code = os.waitstatus_to_exitcode(status)
    if code not in codes:
        raise SystemExit(f"pytest {' '.join(args)} exited {code} in {cwd}")
    return elapsed, peak


def median_of(repeat: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeat))


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(count: int, repeat: int, root: Path, xdist: bool = True) -> list[dict[str, Any]]:
    from pytest_llmgate import canonical_json, fingerprint
    from pytest_llmgate.records.suite import load_suite, read_cases

    rows: list[dict[str, Any]] = []

    def row(key: str, label: str, baseline: float, ours: float, target: float | None, unit: str = "s") -> None:
        ratio = ours / baseline if baseline else float("inf")
        rows.append({"cases": count, "key": key, "measure": label, "baseline": round(baseline, 4),
                     "ours": round(ours, 4), "unit": unit, "ratio": round(ratio, 3), "target": target,
                     "met": None if target is None else ratio <= target})

    yaml_exp = write_experiment(root, count, ".yaml")
    jsonl_exp = write_experiment(root, count, ".jsonl")
    write_floor(root, count)
    (root / "empty").mkdir()  # beside the others: the same rootdir, conftest and plugin activation, no item
    out = str(root / "records")

    # (a) and (d): whole pytest sessions; one warm-up each (pytest's cache, the OS's file cache), then the median. The floor
    # and the plugin alternate, so that the shared machine's drift falls on both alike.
    # A large suite is JSON Lines (docs/experiments.md): a YAML suite costs each session its parse, row (b).
    plugin_args = ("exp_jsonl", "--llmgate-candidate=t1", f"--llmgate-out={out}")
    run_pytest(root, *plugin_args)
    bare = ("-p", "no:llmgate")  # the floor is pytest alone: without the gate's plugin module (row (i): ~9 ms)
    run_pytest(root, "floor", *bare)
    floor_runs: list[tuple[float, int]] = []
    plugin_runs: list[tuple[float, int]] = []
    for _ in range(repeat):
        floor_runs.append(run_pytest(root, "floor", *bare))
        plugin_runs.append(run_pytest(root, *plugin_args))
    floor_s = statistics.median(t for t, _ in floor_runs)
    plugin_s = statistics.median(t for t, _ in plugin_runs)
    targets_a = {10_000: 1.25, 100_000: 1.35}
    row("a", "pytest, one candidate vs bare pytest items", floor_s, plugin_s, targets_a.get(count))
    accounting_s = cost_accounting_s(count, repeat)
    row("a", "pytest, one candidate, without vs with its cost accounting", max(plugin_s - accounting_s, 1e-9),
        plugin_s, 1.02)
    if xdist:
        xdist_s = median_of(repeat, lambda: run_pytest(root, *plugin_args, "-n", "2")[0])
        row("d", "pytest -n 2 vs serial", plugin_s, xdist_s, None)
    rss_kib = statistics.median(rss for _, rss in plugin_runs)
    rows.append({"cases": count, "key": "e", "measure": RSS_ROW, "baseline": None,
                 "ours": rss_kib, "unit": "KiB", "ratio": round(rss_kib * 1024 / count, 1), "target": None,
                 "met": None, "note": "ratio column: bytes per case"})
    # Per case, less the fixed cost of a process that collects nothing: bare pytest's less an empty session's, ours
    # less the same empty session with the gate's modules loaded (an empty session no longer loads them). They run
    # without pytest's cache, which holds the node ids of every item the other sessions ran (a set of them is read
    # at start): that is a cost per item, which the floor and ours both pay.
    empty_kib = statistics.median(run_pytest(root, "empty", "-p", "no:cacheprovider", *bare, codes=(5,))[1]
                                  for _ in range(repeat))
    gate_kib = statistics.median(run_pytest(root, "empty", "-p", "no:cacheprovider", "-p", "pytest_llmgate.plugin.wiring",
                                            codes=(5,))[1] for _ in range(repeat))
    floor_kib = statistics.median(rss for _, rss in floor_runs)
    row("e", f"peak RSS per case vs bare pytest per item (less an empty session's {empty_kib} KiB, "
        f"{gate_kib} KiB with the gate loaded; bare pytest {floor_kib} KiB)",
        round((floor_kib - empty_kib) * 1024 / count, 1), round((rss_kib - gate_kib) * 1024 / count, 1),
        1.3 if count == 100_000 else None, unit="B")

    # (b) loading and validating a suite.
    jsonl_path = jsonl_exp / "main.suite.jsonl"
    jsonl_text = jsonl_path.read_text()
    json_s = median_of(repeat, lambda: timed(lambda: [json.loads(line) for line in jsonl_text.splitlines()]))
    jsonl_s = median_of(repeat, lambda: timed(lambda: read_cases(jsonl_path, jsonl_path.read_bytes())))
    row("b", "JSONL suite load+validate vs json.loads", json_s, jsonl_s, 3.0 if count == 100_000 else None)
    whole_s = median_of(repeat, lambda: timed(lambda: load_suite("main", jsonl_path)))
    row("b", "JSONL suite, whole load_suite (+ fingerprint, case objects) vs json.loads", json_s, whole_s, None)
    yaml_path = yaml_exp / "main.suite.yaml"
    yaml_s = median_of(max(1, repeat // 2), lambda: timed(lambda: load_suite("main", yaml_path)))
    row("b", "YAML suite, whole load_suite vs json.loads", json_s, yaml_s, None)

    # (c) the fingerprint.
    cases = make_cases(count)[::-1]
    raw_s = median_of(repeat, lambda: timed(lambda: hashlib.sha256(
        json.dumps(cases, sort_keys=True, separators=(",", ":")).encode()).hexdigest()))
    ours_s = median_of(repeat, lambda: timed(lambda: fingerprint(cases)))
    row("c", "fingerprint vs json.dumps + SHA-256", raw_s, ours_s, 1.3)
    assert load_suite("main", yaml_path).fingerprint == fingerprint(cases) == hashlib.sha256(
        canonical_json(cases)).hexdigest()
    return rows


RSS_ROW = "peak RSS of the plugin run"


def cost_accounting_s(count: int, repeat: int) -> float:
    """Seconds the cost accounting adds to a session of ``count`` cases: measuring each call (the clock read twice
    and a ``Usage``) over calling the provider's ``route`` directly, plus building each case's ``CaseCost`` once and
    the ``CostMetrics`` twice (the run and its one suite), as ``records/run.py`` does."""
    from pytest_llmgate.model.costs import Usage, case_cost, cost_metrics
    from pytest_llmgate.providers.evidence_policy import EvidencePolicy

    policy = EvidencePolicy(["test_failure_log", "dependency_error"])
    views = [{key: value for key, value in case.items() if key != "expected_route"} for case in make_cases(count)]
    plain_s = median_of(repeat, lambda: timed(lambda: [policy.route(view) for view in views]))
    measured_s = median_of(repeat, lambda: timed(lambda: [policy.answer(view, 0) for view in views]))
    calls = [(Usage(latency_ms=0.002),) for _ in range(count)]

    def figures() -> None:  # as records/run.py does: each case's cost once, the cost metrics of the run and its suite
        costs = [case_cost(call, None) for call in calls]
        for _ in range(2):
            cost_metrics(costs, [call[0].latency_ms or 0.0 for call in calls])

    figures_s = median_of(repeat, lambda: timed(figures))
    return max(0.0, measured_s - plain_s) + figures_s


LLM_CASES = 200
LLM_LATENCY = 0.05
LLM_CONCURRENCY = 16
LLM_BATCHES = 9
G_CALLS = 1000
G_LATENCY = 0.5
G_CONCURRENCY = 64
G_BATCHES = 3


class LLMBench:
    """A loopback endpoint (tests/llm_server.py) and the two ways of calling it that the rows compare: the plugin's
    path (the openai_chat provider, its recordings and the session's call pool) and the SDK alone in as many threads."""

    def __init__(self, root: Path, url: str, calls: int) -> None:
        from pytest_llmgate.records.candidate import load_candidate

        self.url = url
        self.directory = write_experiment(root, calls, ".yaml")
        (self.directory / "templates" / "llm.yaml").write_text(json.dumps({
            "template_id": "llm", "provider": "openai_chat", "model": "local", "base_url": url,
            "api_key_env": "LLMGATE_BENCH_KEY", "max_retries": 0, "timeout": 30,
            "prompt": {"system": "Serve only when the evidence state is one of: test_failure_log, dependency_error.",
                       "user": "Evidence state: {{ evidence_state }}"},
        }))
        os.environ["LLMGATE_BENCH_KEY"] = "local"
        self.candidate = load_candidate(self.directory / "templates" / "llm.yaml", self.directory)
        self.cases = make_cases(calls)
        import openai

        self.client = openai.OpenAI(api_key="local", base_url=url, max_retries=0, timeout=30)
        from pytest_llmgate.model.vocab import RecordMode

        renderer = self.provider(RecordMode.NONE)
        self.bodies = [{"model": "local", "messages": renderer.request(case, 0)["messages"]} for case in self.cases]

    def provider(self, mode: Any, throttles: Any = None) -> Any:
        from pytest_llmgate.providers import ProviderContext
        from pytest_llmgate.providers.openai_chat import FACTORY

        return FACTORY.build(self.candidate, ProviderContext(experiment_dir=self.directory, record_mode=mode,
                                                             throttles=throttles))

    def set_delay(self, delay: float) -> None:
        control = urllib.request.Request(self.url.rsplit("/v1", 1)[0] + "/control", method="POST",
                                         data=json.dumps({"mode": "ok", "delay": delay}).encode())
        urllib.request.urlopen(control).read()

    def ours(self, delay: float, concurrency: int) -> float:
        """The plugin's path: the provider (render, recording key, recording, reply parsing) in the session's pool."""
        from pytest_llmgate.engine.providing import Answers
        from pytest_llmgate.model.vocab import RecordMode

        self.set_delay(delay)
        answers = Answers(concurrency)  # as in a session: the provider's endpoint window is the session's
        provider = self.provider(RecordMode.ALL, answers.throttles)
        provider.route(self.cases[0])  # the SDK imported and its client made, as after a session's first call
        cases = self.cases
        start, cpu = time.perf_counter(), time.process_time()
        for case in cases:
            answers.routes(provider, case, lambda: cases)
        elapsed = time.perf_counter() - start
        self.cpu_per_call = (time.process_time() - cpu) / len(cases)  # the whole process: every thread
        answers.shutdown()
        return elapsed

    def sdk_alone(self, delay: float, concurrency: int) -> float:
        """The floor: the same requests through the same SDK call in as many threads, and nothing else."""
        self.set_delay(delay)
        client = self.client
        client.post("/chat/completions", body=self.bodies[0], cast_to=object)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as executor:
            list(executor.map(lambda body: client.post("/chat/completions", body=body, cast_to=object), self.bodies))
        return time.perf_counter() - start

    def bare(self, delay: float, concurrency: int) -> float:
        """The endpoint's own floor: the same requests from http.client in as many threads, nothing else."""
        self.set_delay(delay)
        port = int(self.url.split(":")[-1].split("/")[0])
        payloads = [json.dumps(body).encode() for body in self.bodies]
        local = threading.local()

        def one(payload: bytes) -> None:
            conn = getattr(local, "conn", None) or http.client.HTTPConnection("127.0.0.1", port)
            local.conn = conn
            conn.request("POST", "/v1/chat/completions", body=payload, headers={"Content-Type": "application/json"})
            json.loads(conn.getresponse().read())

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as executor:
            list(executor.map(one, payloads))
        return time.perf_counter() - start


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    server_script = Path(__file__).resolve().parent.parent / "tests" / "llm_server.py"
    port_file = root / "port"
    server = subprocess.Popen([sys.executable, str(server_script), "--port-file", str(port_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (port_file.exists() and port_file.read_text()):
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port_file.read_text()}/v1"


def measure_llm(repeat: int, root: Path, scale: float = 1.0) -> list[dict[str, Any]]:
    """(f): 200 calls through the real SDK to a local endpoint answering in 50 ms, 16 in flight, in the plugin's call
    pool, against the same requests made with the SDK alone in as many threads (measured in the same run, batches
    alternating); the ideal, bare http.client, the same calls answered at once (per-call CPU) and a replayed session
    against a policy one for reading. (g): 1,000 calls to an endpoint answering in 500 ms, 64 in flight, against the
    ideal 1000 / 64 x 0.5 s. ``scale`` shrinks the call counts (a smoke run: --llm-scale 0.05)."""
    f_calls, g_calls = max(2, int(LLM_CASES * scale)), max(2, int(G_CALLS * scale))
    server, url = start_server(root)
    try:
        bench = LLMBench(root / "f", url, f_calls)
        # Ours and the SDK alone alternate batch by batch, so that the machine's drift falls on both alike;
        # a batch takes under a second: many of them steady the medians.
        batches = max(repeat, LLM_BATCHES)
        timings: dict[str, list[float]] = {"slow": [], "slow_sdk": [], "slow_bare": [], "instant": [], "instant_sdk": []}
        cpu: list[float] = []
        for _ in range(batches):
            timings["slow"].append(bench.ours(LLM_LATENCY, LLM_CONCURRENCY))
            cpu.append(bench.cpu_per_call)
            timings["slow_sdk"].append(bench.sdk_alone(LLM_LATENCY, LLM_CONCURRENCY))
            timings["slow_bare"].append(bench.bare(LLM_LATENCY, LLM_CONCURRENCY))
        for _ in range(batches):
            timings["instant"].append(bench.ours(0.0, LLM_CONCURRENCY))
            timings["instant_sdk"].append(bench.sdk_alone(0.0, LLM_CONCURRENCY))
        slow_s, slow_sdk_s, slow_bare_s, instant_s, instant_sdk_s = (statistics.median(timings[key]) for key in timings)
        common = (bench.directory.name, f"--llmgate-out={root / 'records'}", "-p", "no:cacheprovider")
        cwd = bench.directory.parent
        run_pytest(cwd, *common, "--llmgate-candidate=llm", "--llmgate-record=all")  # recordings for the replay
        replay_s = median_of(repeat, lambda: run_pytest(cwd, *common, "--llmgate-candidate=llm")[0])
        no_errors(root / "records")
        policy_s = median_of(repeat, lambda: run_pytest(cwd, *common, "--llmgate-candidate=t1")[0])

        # (g): the endpoint as slow as a real one; ours and the SDK alone alternate here too.
        g_bench = LLMBench(root / "g", url, g_calls)
        g_timings: dict[str, list[float]] = {"ours": [], "sdk": []}
        for _ in range(max(repeat, G_BATCHES)):
            g_timings["ours"].append(g_bench.ours(G_LATENCY, G_CONCURRENCY))
            g_timings["sdk"].append(g_bench.sdk_alone(G_LATENCY, G_CONCURRENCY))
        g_s, g_sdk_s = statistics.median(g_timings["ours"]), statistics.median(g_timings["sdk"])
    finally:
        server.terminate()
        server.wait()
    ideal = f_calls * LLM_LATENCY / LLM_CONCURRENCY
    slow = f"{f_calls} calls, endpoint answering in {int(LLM_LATENCY * 1000)} ms, {LLM_CONCURRENCY} in flight"
    instant = f"the same {f_calls} calls, endpoint answering at once (per-call CPU)"
    g_ideal = g_calls / G_CONCURRENCY * G_LATENCY
    g_label = f"{g_calls:,} calls, endpoint answering in {int(G_LATENCY * 1000)} ms, {G_CONCURRENCY} in flight"
    return [
        llm_row("f", f_calls, f"{slow}: ours vs the SDK alone in {LLM_CONCURRENCY} threads", slow_sdk_s, slow_s,
                target=1.1),
        llm_row("f", f_calls, f"{slow}, vs the ideal", ideal, slow_s),
        llm_row("f", f_calls, f"{slow}: the SDK alone, vs the ideal", ideal, slow_sdk_s),
        llm_row("f", f_calls, f"{slow}: bare http.client in {LLM_CONCURRENCY} threads (the endpoint's floor), "
                "vs the ideal", ideal, slow_bare_s),
        llm_row("f", f_calls, f"{instant}: ours vs the SDK alone", instant_sdk_s, instant_s),
        llm_row("f", f_calls, "replayed openai_chat session vs evidence_policy session", policy_s, replay_s),
        llm_row("g", g_calls, f"{g_label}, vs the ideal {g_calls:,} / {G_CONCURRENCY} x {G_LATENCY:g} s", g_ideal, g_s,
                target=1.15),
        llm_row("g", g_calls, f"{g_label}: the SDK alone, vs the ideal", g_ideal, g_sdk_s),
        {"cases": f_calls, "key": "l", "measure": f"{slow}: process CPU per call (time.process_time)",
         "baseline": None, "ours": round(statistics.median(cpu) * 1000, 3), "unit": "ms", "ratio": None,
         "target": 2.5, "met": statistics.median(cpu) * 1000 <= 2.5},
    ]


def measure_startup(repeat: int, root: Path) -> list[dict[str, Any]]:
    """Issue 19's figures for a prompt engineer's rerun loop, each against bare pytest measured alternately:
    (i) the plugin installed, no option and no experiment, vs the same session with it disabled (target: at most
    0.1 s more); (j) one case of the LLM example replayed vs bare pytest with one test (target <= 1.15x); (k) one
    case live against the local endpoint vs bare pytest + the SDK's import + the call (target: at most 0.2 s more)."""
    example = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-llm"
    work = root / "startup"
    shutil.copytree(example, work / "exp")
    (work / "test_one.py").write_text("def test_one():\n    pass\n")
    one = ("test_one.py", "-p", "no:cacheprovider")
    bare_off: list[float] = []
    bare_on: list[float] = []
    replay: list[float] = []
    replay_node: list[float] = []
    common = ("--llmgate-candidate=ci-answerer-llm-v2", "-p", "no:cacheprovider",
              f"--llmgate-out={root / 'startup-records'}")
    replay_args = ("exp", "-k", "req_205", *common)  # selected by -k
    node_args = ("exp/regression.suite.yaml::req_205[ci-answerer-llm-v2]", *common)  # selected by node id
    for _ in range(2):  # warm: bytecode and the OS's file cache
        run_pytest(work, *one)
        run_pytest(work, *replay_args)
        run_pytest(work, *node_args)
    for _ in range(max(repeat, 7)):  # paired: each figure beside its baseline, medians
        bare_off.append(run_pytest(work, *one, "-p", "no:llmgate")[0])
        bare_on.append(run_pytest(work, *one)[0])
        replay.append(run_pytest(work, *replay_args)[0])
        replay_node.append(run_pytest(work, *node_args)[0])
    off, on, replay_s = statistics.median(bare_off), statistics.median(bare_on), statistics.median(replay)
    node_s = statistics.median(replay_node)

    server, url = start_server(root)
    try:
        template = work / "exp" / "templates" / "live.yaml"
        import yaml

        settings = yaml.safe_load((work / "exp" / "templates" / "ci-answerer-llm-v2.yaml").read_text())
        settings.update(template_id="live", base_url=url, api_key_env="LLMGATE_BENCH_KEY")
        template.write_text(yaml.safe_dump(settings))
        os.environ["LLMGATE_BENCH_KEY"] = "local"
        live_args = ("exp", "--llmgate-candidate=live", "-k", "req_205", "--llmgate-record=all", "-p",
                     "no:cacheprovider", f"--llmgate-out={root / 'startup-records'}")
        run_pytest(work, *live_args)
        live = [run_pytest(work, *live_args)[0] for _ in range(max(repeat, 5))]
        no_errors(root / "startup-records")
        whole = _whole_session(root, url, repeat)
        no_errors(root / "whole-out")
        sdk_import = [_python(work, "import openai") - _python(work, "pass") for _ in range(max(repeat, 5))]
        client_call = [_python(work, _ONE_CALL.format(url=url)) - _python(work, "import openai")
                       for _ in range(max(repeat, 5))]
    finally:
        server.terminate()
        server.wait()
    live_s, import_s, call_s = statistics.median(live), statistics.median(sdk_import), statistics.median(client_call)
    allowed = on + import_s + call_s
    return [
        {"cases": 0, "key": "i", "measure": "startup: plugin installed, no option, no experiment, vs disabled "
         "(-p no:llmgate), one trivial test", "baseline": round(off, 4), "ours": round(on, 4), "unit": "s",
         "ratio": round(on - off, 4), "target": 0.1, "met": on - off <= 0.1, "note": "ratio column: seconds more"},
        {"cases": 1, "key": "j", "measure": "one case of the LLM example replayed, selected by -k, vs bare pytest "
         "with one test and the plugin disabled (-p no:llmgate)",
         "baseline": round(off, 4), "ours": round(replay_s, 4), "unit": "s", "ratio": round(replay_s / off, 3),
         "target": 1.15, "met": replay_s / off <= 1.15},
        {"cases": 1, "key": "j", "measure": "one case of the LLM example replayed, selected by node id, vs bare "
         "pytest with one test and the plugin disabled (-p no:llmgate)",
         "baseline": round(off, 4), "ours": round(node_s, 4), "unit": "s", "ratio": round(node_s / off, 3),
         "target": 1.15, "met": node_s / off <= 1.15},
        {"cases": 1, "key": "k", "measure": "one case live vs bare pytest + the openai import + one SDK call "
         f"({import_s:.3f} s + {call_s:.3f} s)", "baseline": round(allowed, 4), "ours": round(live_s, 4),
         "unit": "s", "ratio": round(live_s - allowed, 4), "target": 0.2, "met": live_s - allowed <= 0.2,
         "note": "ratio column: seconds more"},
        {"cases": WHOLE_CALLS, "key": "m", "measure": f"whole session: {WHOLE_CALLS} cases live, endpoint answering in "
         f"{int(LLM_LATENCY * 1000)} ms, {LLM_CONCURRENCY} in flight, vs the ideal "
         f"({WHOLE_CALLS} x {LLM_LATENCY:g} s / {LLM_CONCURRENCY}) + bare pytest with one test",
         "baseline": round(WHOLE_CALLS * LLM_LATENCY / LLM_CONCURRENCY + on, 4), "ours": round(whole, 4), "unit": "s",
         "ratio": round(whole / (WHOLE_CALLS * LLM_LATENCY / LLM_CONCURRENCY + on), 3), "target": 1.3,
         "met": whole / (WHOLE_CALLS * LLM_LATENCY / LLM_CONCURRENCY + on) <= 1.3},
    ]


WHOLE_CALLS = 500


def _whole_session(root: Path, url: str, repeat: int) -> float:
    """One pytest process gating a 500-case experiment whose candidate calls the endpoint live (record: all)."""
    directory = write_experiment(root / "whole", WHOLE_CALLS, ".yaml")
    (directory / "templates" / "llm.yaml").write_text(json.dumps({
        "template_id": "llm", "provider": "openai_chat", "model": "local", "base_url": url,
        "api_key_env": "LLMGATE_BENCH_KEY", "max_retries": 0, "timeout": 30,
        "prompt": {"system": "Serve only when the evidence state is one of: test_failure_log, dependency_error.",
                   "user": "Evidence state: {{ evidence_state }}"},
    }))
    control = urllib.request.Request(url.rsplit("/v1", 1)[0] + "/control", method="POST",
                                     data=json.dumps({"mode": "ok", "delay": LLM_LATENCY}).encode())
    urllib.request.urlopen(control).read()
    args = (directory.name, "--llmgate-candidate=llm", "--llmgate-record=all",
            f"--llmgate-concurrency={LLM_CONCURRENCY}", "-p", "no:cacheprovider", f"--llmgate-out={root / 'whole-out'}")
    run_pytest(directory.parent, *args)
    return median_of(max(repeat, 3), lambda: run_pytest(directory.parent, *args)[0])


_ONE_CALL = ("import openai; openai.OpenAI(api_key='local', base_url='{url}', max_retries=0).post("
             "'/chat/completions', body={{'model': 'm', 'messages': [{{'role': 'user', 'content': 'x'}}]}}, "
             "cast_to=object)")


def _python(cwd: Path, code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=USER_ENV, check=True)
    return time.perf_counter() - start


def llm_row(key: str, calls: int, measure: str, baseline: float, ours: float,
            target: float | None = None) -> dict[str, Any]:
    ratio = ours / baseline
    return {"cases": calls, "key": key, "measure": measure, "baseline": round(baseline, 4), "ours": round(ours, 4),
            "unit": "s", "ratio": round(ratio, 3), "target": target, "met": None if target is None else ratio <= target}


def measure_evidence(repeat: int) -> list[dict[str, Any]]:
    """(o): the evidence figures of a run (metrics with their bounds, the evidence requirement, more_clean_cases):
    100,000 cases with 50 unsafe serves at max_unsafe_rate 0.0001; and 100 cases of 1,000 trials with 6 unsafe
    trials (issue 28: 545 s before)."""
    from pytest_llmgate.model.decision import Promotion
    from pytest_llmgate.model.evidence import evidence_of
    from pytest_llmgate.model.vocab import Outcome, Route
    from pytest_llmgate.records.run import CaseEntry, Metrics, run_status

    def entry(number: int, outcome: Outcome, routes: tuple[Route, ...] = ()) -> CaseEntry:
        predicted = Route.SERVE if outcome is Outcome.UNSAFE_CLAIM_SERVED else Route.ABSTAIN
        return CaseEntry(suite="main", case_id=f"c{number}", slice_name="s", evidence_state="none",
                         expected_route=Route.ABSTAIN, predicted_route=predicted, outcome=outcome,
                         trial_routes=routes)

    promotion = Promotion(alias="canary", rollback_artifact=None, limitation="-", max_unsafe_rate=0.0001)
    wide = [entry(n, Outcome.UNSAFE_CLAIM_SERVED if n < 50 else Outcome.PASS) for n in range(100_000)]
    served = (Route.SERVE,) * 6 + (Route.ABSTAIN,) * 994
    deep = [entry(n, Outcome.UNSAFE_CLAIM_SERVED if n < 6 else Outcome.PASS,
                  served if n < 6 else (Route.ABSTAIN,) * 1000) for n in range(100)]
    rows = []
    for cases, label, entries in (
        (100_000, "evidence figures: 100,000 cases, 50 unsafe, max_unsafe_rate 0.0001", wide),
        (100, "evidence figures: 100 cases x 1,000 trials, 6 unsafe trials, max_unsafe_rate 0.0001", deep),
    ):
        def figures(entries: list[CaseEntry] = entries) -> None:
            metrics = Metrics.of(entries)
            evidence = evidence_of(metrics, promotion)
            assert evidence is not None and evidence.more_clean_cases is not None
            run_status(True, metrics, promotion)

        seconds = median_of(repeat, lambda figures=figures: timed(figures))
        rows.append({"cases": cases, "key": "o", "measure": label, "baseline": None, "ours": round(seconds, 4),
                     "unit": "s", "ratio": None, "target": 0.5, "met": seconds <= 0.5})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    parser.add_argument("--no-llm", action="store_true", help="skip (f) and (g), which need the openai extra")
    parser.add_argument("--no-xdist", action="store_true", help="skip (d), the -n 2 sessions (long at 100,000)")
    parser.add_argument("--no-startup", action="store_true", help="skip (i)-(k), the one-case sessions")
    parser.add_argument("--only-evidence", action="store_true", help="only (o), the evidence figures")
    parser.add_argument("--llm-scale", type=float, default=1.0,
                        help="scale the call counts of (f) and (g) (a smoke run: 0.05; figures only at 1.0)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = measure_evidence(args.repeat)
    if args.only_evidence:
        print(table({"machine": _machine(), "repeat": args.repeat, "rows": rows}))
        return
    if not args.no_startup and not args.no_llm:
        with tempfile.TemporaryDirectory(prefix="llmgate-bench-") as tmp:
            print("measuring one-case sessions ...", file=sys.stderr, flush=True)
            rows.extend(measure_startup(args.repeat, Path(tmp)))
    if not args.no_llm:
        with tempfile.TemporaryDirectory(prefix="llmgate-bench-") as tmp:
            print("measuring the openai_chat provider ...", file=sys.stderr, flush=True)
            rows.extend(measure_llm(args.repeat, Path(tmp), args.llm_scale))
    for count in (int(size) for size in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="llmgate-bench-") as tmp:
            print(f"measuring {count:,} cases ...", file=sys.stderr, flush=True)
            rows.extend(measure(count, args.repeat, Path(tmp), xdist=not args.no_xdist))
    rss = {row["cases"]: row["ours"] for row in rows if row["key"] == "e" and row["measure"] == RSS_ROW}
    if 10_000 in rss and 100_000 in rss:
        growth = rss[100_000] / rss[10_000]
        rows.append({"cases": 100_000, "key": "e", "measure": "peak RSS, 100,000 vs 10,000 cases",
                     "baseline": rss[10_000], "ours": rss[100_000], "unit": "KiB", "ratio": round(growth, 2),
                     "target": 12.0, "met": growth <= 12.0})
    result = {"schema": "llmgate.benchmark/1", "machine": _machine(), "repeat": args.repeat, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


def _machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def table(result: dict[str, Any]) -> str:
    lines = [f"machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
             f"Python {result['machine']['python']}; medians of {result['repeat']}",
             "", "| cases | | measure | baseline | ours | ratio | target | met |", "|---:|---|---|---:|---:|---:|---:|---|"]
    for row in result["rows"]:
        target = "" if row["target"] is None else f"≤ {row['target']}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        baseline = "" if row["baseline"] is None else f"{row['baseline']} {row['unit']}"
        ratio = "" if row["ratio"] is None else row["ratio"]
        lines.append(f"| {row['cases']:,} | ({row['key']}) | {row['measure']} | {baseline} | {row['ours']} {row['unit']} "
                     f"| {ratio} | {target} | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
