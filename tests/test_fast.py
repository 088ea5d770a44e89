"""Fast feedback (issue 19): what a pytest session pays for the plugin, and what a gating session imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("jsonschema", "openai", "anthropic", "mlflow", "wandb")


def imported_by(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_plugin_entry_imports_no_heavy_library_and_not_the_core() -> None:
    modules = imported_by("import pytest_llmgate._plugin")
    assert "pytest_llmgate._plugin" in modules
    assert not modules & set(HEAVY)
    assert not {"pytest_llmgate._gate_plugin", "pytest_llmgate._candidate", "pytest_llmgate._session"} & modules


def test_the_package_names_stay_public_and_load_when_used() -> None:
    modules = imported_by("import pytest_llmgate as p\nassert p.Candidate.__name__ == 'Candidate'\n"
                          "assert isinstance(p.__version__, str)\nassert set(p.__all__) <= set(dir(p))")
    assert "pytest_llmgate._candidate" in modules


def test_an_unknown_name_is_an_attribute_error() -> None:
    import pytest_llmgate

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        pytest_llmgate.nothing_here  # noqa: B018


PROBE_CONFTEST = (
    "import json, sys\n"
    "def pytest_unconfigure(config):\n"
    "    open('mods.json', 'w').write(json.dumps(sorted(sys.modules)))\n"
)


def modules_after(pytester: pytest.Pytester, *args: str) -> set[str]:
    (pytester.path / "mods.json").unlink(missing_ok=True)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return set(json.loads((Path(pytester.path) / "mods.json").read_text()))


def test_a_bare_pytest_session_does_not_load_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.makepyfile(test_one="def test_one():\n    assert True\n")
    modules = modules_after(pytester)
    assert "pytest_llmgate._plugin" in modules  # the plugin is installed and loaded ...
    assert "pytest_llmgate._gate_plugin" not in modules  # ... and the gate is not
    assert not modules & set(HEAVY)
