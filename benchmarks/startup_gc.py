"""Where part of benchmark (j)'s floor goes: the garbage collector's full collections in a one-test session.

    python benchmarks/startup_gc.py [--repeat 9]

Runs the three sessions of (i) and (j) in the example's copy (bare pytest with one test and the plugin disabled;
the same with it loaded; one case of the LLM example replayed, selected by ``-k``), each with a ``gc.callbacks``
hook that counts the full (generation 2) collections, the time they take, and whether pytest asked for them
(``gc.collect`` at unconfigure, to report unraisable exceptions) or the interpreter started one on its own because
enough objects were allocated. Prints medians. Nothing here changes the collector's settings. The sessions are
run as ``run.py`` runs them (its flags, its environment: bytecode written), and a session that exits other than 0
or 1 stops the script.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import SESSION_ENV, plugins_for

_PROBE = """
import gc, json, sys, time
import pytest
seen = {"automatic": 0, "asked": 0, "seconds": 0.0, "objects": 0}
state = {"unconfigured": False, "start": 0.0}
def count(phase, info):
    if info["generation"] != 2:
        return
    if phase == "start":
        state["start"] = time.perf_counter()
        return
    seen["seconds"] += time.perf_counter() - state["start"]
    seen["asked" if state["unconfigured"] else "automatic"] += 1
class Probe:
    def pytest_unconfigure(self, config):
        state["unconfigured"] = True
        seen["objects"] = len(gc.get_objects())
gc.callbacks.append(count)
code = pytest.main(sys.argv[2:], plugins=[Probe()])
with open(sys.argv[1], "w") as handle:
    json.dump(seen, handle)
sys.exit(code)
"""


def probe(cwd: Path, *args: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmgate-gc-") as scratch:
        out = Path(scratch) / "gc.json"
        command = [sys.executable, "-c", _PROBE, str(out), "-q", "--no-header", "-p", "no:cacheprovider",
                   *plugins_for(args), *args]
        done = subprocess.run(command, cwd=cwd, env=SESSION_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              check=False)
        if done.returncode not in (0, 1):
            raise SystemExit(f"pytest {' '.join(args)} exited {done.returncode} in {cwd}")
        figures: dict[str, float] = json.loads(out.read_text())
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    repeat = parser.parse_args().repeat
    example = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-llm"
    with tempfile.TemporaryDirectory(prefix="llmgate-gc-") as root:
        work = Path(root)
        shutil.copytree(example, work / "exp")
        (work / "test_one.py").write_text("def test_one():\n    pass\n")
        sessions = {
            "bare pytest, one test, -p no:llmgate": ("test_one.py", "-p", "no:llmgate"),
            "bare pytest, one test, the plugin loaded": ("test_one.py",),
            "(j): one case of the LLM example replayed (-k)": (
                "exp", "-k", "req_205", "--llmgate-candidate=ci-answerer-llm-v2", f"--llmgate-out={work / 'out'}"),
        }
        for args in sessions.values():  # warm: bytecode and the OS's file cache
            probe(work, *args)
        print("| session | objects at exit | full collections on their own | asked by pytest | ms in full collections |")
        print("|---|---|---|---|---|")
        for name, args in sessions.items():
            runs = [probe(work, *args) for _ in range(repeat)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f"| {name} | {median['objects']:,.0f} | {median['automatic']:g} | {median['asked']:g} | "
                  f"{median['seconds'] * 1000:.1f} |")


if __name__ == "__main__":
    main()
