"""Benchmark (p): a judge's calls cost no more than the calls themselves.

500 candidate replies (replayed from recordings: no candidate call) judged by an ``openai_chat`` judge against the
local test server answering in 50 ms, 16 in flight, through the session's call pool and the judging path (the
evaluator renders its prompt with the reply, records, reads the verdict); against the same 500 judge requests
made with the ``openai`` SDK alone in 16 threads. Both alternate batch by batch in one run; medians. Target: 1.1x.

    python benchmarks/judging.py                  # 500 replies, 7 batches
    python benchmarks/judging.py --replies 50 --batches 1   # a smoke run (no figure)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import llm_row, make_cases, start_server, write_experiment

LATENCY = 0.05
CONCURRENCY = 16
JUDGE_PROMPT = {
    "system": "You judge replies to questions about CI failures. Say SERVE when the reply states a root cause as "
              "fact, ABSTAIN when it does not. Reply with JSON.",
    "user": "Reply: {{ reply }}",
}


def setup(root: Path, url: str, replies: int) -> Path:
    """An experiment of ``replies`` cases, a prose candidate whose replies are all recorded, and a judge."""
    from pytest_llmgate.providers.recordings import recordings_path, request_key

    directory = write_experiment(root, replies, ".yaml")
    candidate = {
        "template_id": "prose", "provider": "openai_chat", "model": "local", "base_url": url,
        "api_key_env": "LLMGATE_BENCH_KEY", "max_retries": 0, "timeout": 30,
        "prompt": {"system": "Serve always. Answer in prose.",
                   "user": "Case {{ case_id }}. Evidence state: {{ evidence_state }}"},  # one reply per case
    }
    (directory / "templates" / "prose.yaml").write_text(json.dumps(candidate))
    (directory / "evaluators").mkdir()
    (directory / "evaluators" / "judge.yaml").write_text(json.dumps({
        "evaluator_id": "judge", "kind": "judge", "provider": "openai_chat", "model": "local-judge",
        "base_url": url, "api_key_env": "LLMGATE_BENCH_KEY", "max_retries": 0, "timeout": 30,
        "prompt": JUDGE_PROMPT, "route": {"json_key": "verdict"},
    }))
    manifest = directory / "llmgate.yaml"
    manifest.write_text(manifest.read_text() + "evaluator: evaluators/judge.yaml\n")
    os.environ["LLMGATE_BENCH_KEY"] = "local"
    # the candidate's replies, recorded as a session would have: the judge's calls are the only live ones
    from pytest_llmgate.model.vocab import RecordMode
    from pytest_llmgate.providers import ProviderContext
    from pytest_llmgate.providers.openai_chat import FACTORY
    from pytest_llmgate.records.candidate import load_candidate

    renderer = FACTORY.build(load_candidate(directory / "templates" / "prose.yaml", directory),
                             ProviderContext(experiment_dir=directory, record_mode=RecordMode.NONE))
    lines = []
    for index, case in enumerate(make_cases(replies)):
        # every reply distinct: equal judge requests are recorded once and replayed, which would not be a call
        text = (f"The root cause is the failure in step {index}." if index % 2
                else f"I cannot tell what failed in job {index}.")
        key = request_key(renderer.request(case, 0))
        lines.append(json.dumps({"key": key, "model": "local", "reply": text, "trial": 0}))
    path = recordings_path(directory, "prose")
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return directory


class JudgeBench:
    def __init__(self, directory: Path, url: str) -> None:
        import openai

        from pytest_llmgate.records.experiment import load_experiment

        self.url = url
        self.experiment = load_experiment(directory)
        self.cases = [case.candidate_view() for case in self.experiment.cases]
        self.client = openai.OpenAI(api_key="local", base_url=url, max_retries=0, timeout=30)

    def set_delay(self, delay: float) -> None:
        control = urllib.request.Request(self.url.rsplit("/v1", 1)[0] + "/control", method="POST",
                                         data=json.dumps({"mode": "ok", "delay": delay}).encode())
        urllib.request.urlopen(control).read()

    def ours(self) -> tuple[float, list[dict[str, Any]]]:
        """The judging path in the session's pool: candidate replies replayed, each judged live."""
        from pytest_llmgate.engine.plan import Selection
        from pytest_llmgate.engine.session import GateSession
        from pytest_llmgate.model.vocab import RecordMode

        self.set_delay(LATENCY)
        # new_episodes: the candidate's recorded replies are replayed; the judge's recordings of the last batch are
        # removed first, so every judge call is live
        (self.experiment.directory / "recordings" / "judge.jsonl").unlink(missing_ok=True)
        gate = GateSession(Selection(candidates=("prose",), baselines=()), Path(tempfile.mkdtemp()),
                           record_mode=RecordMode.NEW_EPISODES, concurrency=CONCURRENCY)
        gate.load(self.experiment.directory)
        provider = gate.provider(gate.load(self.experiment.directory), "prose")
        judge = provider.verdicts.judge  # type: ignore[attr-defined]
        judge.reply({**self.cases[0], "reply": "warm-up"}, 0)  # the SDK imported, its client made
        # the judge's requests, for the SDK-alone side: the same bodies
        bodies = []
        for case in self.cases:
            reply = provider.candidate.reply(case, 0)[0]  # type: ignore[attr-defined]
            request = judge.request({**case, "reply": reply}, 0)
            bodies.append({"model": request["model"], "messages": request["messages"]})
        cases = self.cases
        start = time.perf_counter()
        for case in cases:
            gate.routes(provider, case, lambda: cases)
        elapsed = time.perf_counter() - start
        gate.answers.shutdown()
        return elapsed, bodies

    def sdk_alone(self, bodies: list[dict[str, Any]]) -> float:
        self.set_delay(LATENCY)
        client = self.client
        client.post("/chat/completions", body=bodies[0], cast_to=object)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as executor:
            list(executor.map(lambda body: client.post("/chat/completions", body=body, cast_to=object), bodies))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "judging.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmgate-bench-judge-") as tmp:
        root = Path(tmp)
        server, url = start_server(root)
        try:
            bench = JudgeBench(setup(root / "o", url, args.replies), url)
            ours: list[float] = []
            sdk: list[float] = []
            for _ in range(args.batches):  # alternating: the machine's drift falls on both alike
                elapsed, bodies = bench.ours()
                ours.append(elapsed)
                sdk.append(bench.sdk_alone(bodies))
        finally:
            server.terminate()
            server.wait()
    label = (f"{args.replies} replies judged by openai_chat, endpoint answering in {int(LATENCY * 1000)} ms, "
             f"{CONCURRENCY} in flight: ours vs the SDK alone in {CONCURRENCY} threads")
    row = llm_row("p", args.replies, label, statistics.median(sdk), statistics.median(ours), target=1.1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"schema": "llmgate.benchmark/1", "rows": [row]}, indent=2) + "\n")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
