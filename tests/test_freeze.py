"""``import_in_background``: the garbage collector's permanent generation around an SDK's import (issue 19)."""

from __future__ import annotations

import os
import subprocess
import sys

#: A process started by a test inherits PYTEST_CURRENT_TEST, which makes it a session run inside a test: no freeze.
TOP_LEVEL = {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"}

PROBE = """
import gc, json, sys
from pytest_llmgate.providers import import_in_background, thaw
{before}
start = gc.get_freeze_count()
thread = import_in_background("json.tool", "this_module_does_not_exist_4711")
thread.join()
frozen = gc.get_freeze_count()
thaw()
print(json.dumps([start, frozen, gc.get_freeze_count(), "json.tool" in sys.modules]))
"""


def run(before: str = "") -> list[object]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], capture_output=True, text=True,
                          check=True, timeout=60, env=TOP_LEVEL)
    return list(__import__("json").loads(done.stdout))


def test_the_import_freezes_what_exists_and_thaw_gives_it_back() -> None:
    start, frozen, after, imported = run()
    assert start == 0 and imported
    assert isinstance(frozen, int) and frozen > 1000  # the interpreter's objects and the module's
    assert after == 0


def test_objects_frozen_by_someone_else_are_left_as_they_are() -> None:
    start, frozen, after, imported = run("gc.freeze()")
    assert isinstance(start, int) and start > 0 and imported
    assert frozen == start and after == start  # neither frozen further nor thawed by the gate


def test_nothing_to_import_starts_no_thread() -> None:
    from pytest_llmgate.providers import import_in_background

    assert import_in_background("json", "sys") is None


SLOW = """
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from pytest_llmgate.providers import import_in_background, thaw
thread = import_in_background("slow_import_4711")
during = gc.get_freeze_count()
thaw()  # the session ends while the import is still running
thread.join()
print(json.dumps([during, gc.get_freeze_count(), "slow_import_4711" in sys.modules]))
"""


def test_a_session_that_ends_during_the_import_is_not_frozen_again_by_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "slow_import_4711.py").write_text("import time\ntime.sleep(0.5)\n")
    done = subprocess.run([sys.executable, "-c", SLOW, str(tmp_path)], capture_output=True, text=True, check=True,
                          timeout=60, env=TOP_LEVEL)
    during, after, imported = __import__("json").loads(done.stdout)
    assert during > 0 and imported
    assert after == 0


def test_a_session_inside_another_sessions_test_freezes_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(before="")], capture_output=True, text=True,
                          check=True, timeout=60, env={**TOP_LEVEL, "PYTEST_CURRENT_TEST": "t.py::test (call)"})
    start, frozen, after, imported = __import__("json").loads(done.stdout)
    assert imported and start == frozen == after == 0
