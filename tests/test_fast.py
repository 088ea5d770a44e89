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


def modules_after(pytester: pytest.Pytester, *args: str, passed: int = 1) -> set[str]:
    (pytester.path / "mods.json").unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=passed)
    return set(json.loads((Path(pytester.path) / "mods.json").read_text()))


def test_a_bare_pytest_session_does_not_load_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROBE_CONFTEST)
    pytester.makepyfile(test_one="def test_one():\n    assert True\n")
    modules = modules_after(pytester)
    assert "pytest_llmgate._plugin" in modules  # the plugin is installed and loaded ...
    assert "pytest_llmgate._gate_plugin" not in modules  # ... and the gate is not
    assert not modules & set(HEAVY)


# --- the exact fast validator (jsonschema only when a fast check does not say VALID) ---------------------------

from typing import Any  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402

from pytest_llmgate._candidate import COMMON_PROPERTIES  # noqa: E402
from pytest_llmgate._fastcheck import INVALID, UNKNOWN, VALID, compile_schema  # noqa: E402
from pytest_llmgate._schemas import schema  # noqa: E402
from pytest_llmgate.providers import BUILTIN, builtin_factory  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False) | st.sampled_from([1.0, 0.0])
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def guided(sub: Any, root: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents shaped like ``sub`` mostly, with a random value now and then: near the edges of what it accepts."""
    if depth > 6 or not isinstance(sub, dict):
        return JSON
    options: list[st.SearchStrategy[Any]] = []
    if "$ref" in sub:
        options.append(st.deferred(lambda: guided(root["$defs"][sub["$ref"].split("/")[-1]], root, depth + 1)))
    for key in ("anyOf", "oneOf"):
        options.extend(guided(branch, root, depth + 1) for branch in sub.get(key, ()))
    if "enum" in sub:
        options.append(st.sampled_from(sub["enum"]))
    if "const" in sub:
        options.append(st.just(sub["const"]))
    types = sub.get("type", [])
    for kind in [types] if isinstance(types, str) else types:
        if kind == "object":
            properties = sub.get("properties", {})
            extra = sub.get("additionalProperties", True)
            keys = st.from_regex(sub["propertyNames"]["pattern"], fullmatch=True) if "propertyNames" in sub else st.text(max_size=4)
            values = guided(extra, root, depth + 1) if isinstance(extra, dict) else JSON
            options.append(st.builds(
                lambda required, optional, more: {**required, **optional, **more},
                st.fixed_dictionaries({key: guided(properties.get(key, {}), root, depth + 1)
                                       for key in sub.get("required", ())}),
                st.fixed_dictionaries({}, optional={key: guided(value, root, depth + 1)
                                                    for key, value in properties.items()}),
                st.dictionaries(keys, values, max_size=2) if extra is not False
                else st.dictionaries(st.text(max_size=3), JSON, max_size=1) | st.just({}),
            ))
        elif kind == "array":
            options.append(st.lists(guided(sub.get("items", {}), root, depth + 1), max_size=3))
        elif kind == "string":
            options.append(st.from_regex(sub["pattern"]) if "pattern" in sub else st.text(min_size=sub.get("minLength", 0), max_size=6))
        elif kind in ("integer", "number"):
            low = sub.get("minimum", sub.get("exclusiveMinimum", 0))
            options.append(st.sampled_from([low - 1, low, low + 1, float(low), low + 0.5, sub.get("maximum", 99)]))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
    if not options:
        return JSON
    shaped = st.one_of(*options)
    return st.integers(0, 11).flatmap(lambda pick: JSON if pick == 0 else shaped)  # now and then a stray value


def settings_schema(provider: str) -> dict[str, Any]:
    """The schema ``providers.check_settings`` builds for a provider's artifact."""
    factory = builtin_factory(provider)
    assert factory is not None
    fragment = factory.settings_schema
    return {"type": "object", "required": ["template_id", "provider", *fragment.get("required", ())],
            "properties": {**COMMON_PROPERTIES, **fragment.get("properties", {})}, "additionalProperties": False}


SCHEMAS: dict[str, tuple[Any, Any]] = {
    "manifest": (schema("manifest"), schema("manifest")),
    "candidate": (schema("candidate"), schema("candidate")),
    "suite": (schema("suite"), schema("suite")),
    "suite case": (schema("suite")["properties"]["cases"]["items"], schema("suite")),
    **{f"provider {name}": (settings_schema(name), settings_schema(name)) for name in BUILTIN},
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_fast_validator_never_says_valid_where_jsonschema_says_invalid(name: str) -> None:
    sub, root = SCHEMAS[name]
    fast = compile_schema(sub, root=root)
    exact = Draft202012Validator({**sub, "$defs": root.get("$defs", {})} if isinstance(sub, dict) else sub)
    seen: dict[str, int] = {VALID: 0, INVALID: 0, UNKNOWN: 0}

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(guided(sub, root))
    def agrees(document: Any) -> None:
        verdict = fast(document)
        seen[verdict] += 1
        if verdict != UNKNOWN:
            assert (verdict == VALID) == exact.is_valid(document), (verdict, document)

    agrees()
    assert seen[VALID] and seen[INVALID]  # both answers were exercised, not only UNKNOWN


def test_the_shipped_examples_are_valid_to_the_fast_validator() -> None:
    import yaml

    examples = Path(__file__).resolve().parent.parent / "example_suites"
    for pattern, name in (("*/llmgate.yaml", "manifest"), ("*/templates/*.yaml", "candidate"), ("*/*.suite.yaml", "suite")):
        files = sorted(examples.glob(pattern))
        assert files
        for path in files:
            assert compile_schema(schema(name))(yaml.safe_load(path.read_text(encoding="utf-8"))) == VALID, path


@pytest.mark.parametrize(("sub", "document", "verdict"), [
    ({"type": "integer"}, 1.0, UNKNOWN),  # jsonschema takes 1.0 as an integer
    ({"type": "integer"}, True, INVALID),
    ({"enum": [1]}, 1.0, UNKNOWN),
    ({"enum": ["a"]}, "b", INVALID),
    ({"enum": [[1]]}, [True], UNKNOWN),
    ({"uniqueItems": True}, [1, 1], UNKNOWN),  # a keyword it does not know
    ({"$ref": "other.json"}, 1, UNKNOWN),
    ({"type": "string"}, Path("x"), UNKNOWN),  # not a JSON value
    ({"type": "object"}, {1: "a"}, UNKNOWN),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 3, INVALID),
    ({"type": "object", "x-refused": True, "description": "d"}, {}, VALID),
])
def test_what_the_fast_validator_leaves_to_jsonschema(sub: Any, document: Any, verdict: str) -> None:
    assert compile_schema(sub)(document) == verdict


LLM_EXAMPLE = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-llm"


@pytest.fixture
def llm_example(pytester: pytest.Pytester) -> Path:
    import shutil

    target = pytester.path / "example_suites" / LLM_EXAMPLE.name
    shutil.copytree(LLM_EXAMPLE, target)
    pytester.makeconftest(PROBE_CONFTEST)
    return target


def test_a_one_case_replayed_session_imports_no_jsonschema_and_no_sdk(
    pytester: pytest.Pytester, llm_example: Path
) -> None:
    first = sorted(line for line in (llm_example / "regression.suite.yaml").read_text().splitlines()
                   if "case_id:" in line)[0].split("case_id:")[1].strip()
    modules = modules_after(pytester, "example_suites", "--llmgate-candidate=ci-answerer-llm-v2", "-k", first)
    assert "pytest_llmgate._gate_plugin" in modules and "pytest_llmgate.providers.openai_chat" in modules
    assert not {"jsonschema", "openai"} & modules


def modules_after_collection(pytester: pytest.Pytester, *args: str) -> set[str]:
    """The modules loaded by a ``--collect-only`` session: no case runs, so no call imports an SDK itself."""
    (pytester.path / "mods.json").unlink(missing_ok=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str()
    return set(json.loads((Path(pytester.path) / "mods.json").read_text()))


@pytest.mark.usefixtures("llm_example")
def test_the_sdk_import_starts_at_session_start_when_a_call_may_go_live(pytester: pytest.Pytester) -> None:
    pytest.importorskip("openai")
    selected = ("example_suites", "--llmgate-candidate=ci-answerer-llm-v2")
    assert "openai" in modules_after_collection(pytester, *selected, "--llmgate-record=new_episodes")
    assert "openai" not in modules_after_collection(pytester, *selected)  # replay: no call can go live


def test_a_live_session_against_a_dead_endpoint_still_says_cannot_connect(
    pytester: pytest.Pytester, llm_example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_EXAMPLE_API_KEY", "sk-test")
    template = llm_example / "templates" / "ci-answerer-llm-v2.yaml"
    template.write_text(template.read_text().replace("127.0.0.1:8000", "127.0.0.1:9"), encoding="utf-8")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "example_suites", "--llmgate-freeze",
                                           "--llmgate-candidate=ci-answerer-llm-v2", "--llmgate-record=all",
                                           "--llmgate-concurrency=1", "-x")
    result.stdout.fnmatch_lines(["*cannot connect to http://127.0.0.1:9/v1*"])
    assert "openai" in json.loads((Path(pytester.path) / "mods.json").read_text())


def test_ptw_reruns_the_replayed_gate_when_a_file_is_saved(pytester: pytest.Pytester) -> None:
    """The local loop of docs/loop.md: pytest-watcher reruns the gate on save, replaying the recordings.

    The experiment is at the watched folder's top: on this machine the watcher saw no change in a subfolder
    (inotify watches are shared by many processes here), which is the watcher's business, not the gate's."""
    import os
    import shutil
    import signal
    import time

    for item in LLM_EXAMPLE.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, pytester.path / item.name)
    pytester.makeconftest(PROBE_CONFTEST)

    ptw = shutil.which("ptw", path=str(Path(sys.executable).parent))
    if ptw is None:
        pytest.skip("pytest-watcher is not installed: pip install 'pytest-llmgate[test]'")
    log = pytester.path / "ptw.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH", "")])}
    with log.open("w") as out:
        watcher = subprocess.Popen(
            [ptw, ".", "--now", "--delay", "0.1", "--patterns", "*.yaml,*.jsonl", "--runner",
             str(Path(sys.executable).parent / "pytest"), ".",
             "--llmgate-candidate=ci-answerer-llm-v2", "-p", "no:randomly"],
            cwd=pytester.path, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
    try:
        def runs() -> int:
            return log.read_text(errors="replace").count(" passed in ")  # sessions finished

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + 90
            while runs() < count and time.monotonic() < deadline and watcher.poll() is None:
                time.sleep(0.2)
            assert runs() >= count, log.read_text(errors="replace")

        wait_for(1)  # --now: the first run
        first = runs()
        time.sleep(1.0)  # a change made while a run is under way is not watched for
        manifest = pytester.path / "llmgate.yaml"
        manifest.write_text(manifest.read_text() + "\n# edited\n", encoding="utf-8")
        wait_for(first + 1)  # the save started a second run ...
        assert log.read_text(errors="replace").count("4 passed in ") == 2, log.read_text(errors="replace")  # ... replayed
    finally:
        os.killpg(watcher.pid, signal.SIGTERM)
        watcher.wait(timeout=30)
