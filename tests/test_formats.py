"""Each format is defined once: the shipped schemas are generated from the definitions, golden files pin the
output, and records written by 0.1.0 still load."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator, ValidationError

from pytest_llmgate import DecisionStatus, Outcome, RecordError, Route, RunStatus, check_json, schema_path
from pytest_llmgate.cli.main import main as llmgate
from pytest_llmgate.cli.schemas import FORMATS, schema_text
from pytest_llmgate.io.audit import read_run
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.vocab import Role
from pytest_llmgate.records.codec import dump, load

from .conftest import EVALUATION_SHA, FIX_B, THREE_RUNS

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LLMGATE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_shipped_schema_is_generated_from_its_definition(name: str) -> None:
    assert schema_path(name).read_text(encoding="utf-8") == schema_text(name), (
        f"schemas/{name}.schema.json differs from its definition: run python -m pytest_llmgate.cli.schemas"
    )


def test_generated_schemas_do_not_depend_on_the_msgspec_release() -> None:
    """What msgspec 0.19-0.22 and 0.23 write differently comes out the same (docstring indentation, enum-keyed
    maps, the order of an anyOf's branches); what every release writes (a key pattern) stays."""
    from pytest_llmgate.records.codec import normal_schema

    older = {"description": "Doc line.\n\n    More.", "properties": {
        "e": {"type": "object", "additionalProperties": {"type": "integer"}},
        "d": {"type": "object", "propertyNames": {"pattern": "^x"}},
        "u": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Usage"}]}}}
    newer = {"description": "Doc line.\n\nMore.", "properties": {
        "e": {"type": "object", "propertyNames": {"$ref": "#/$defs/E"}, "additionalProperties": {"type": "integer"}},
        "d": {"type": "object", "propertyNames": {"pattern": "^x"}},
        "u": {"anyOf": [{"$ref": "#/$defs/Usage"}, {"type": "null"}]}}}
    assert normal_schema(older) == normal_schema(newer)
    assert normal_schema(newer)["description"] == "Doc line.\n\nMore."
    assert normal_schema(newer)["properties"]["d"]["propertyNames"] == {"pattern": "^x"}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(json.loads(schema_path(name).read_text()))


def test_every_property_of_every_schema_is_described() -> None:
    """Each key of every shipped format (and each position of an array-like one, the xdist result) says what it
    means; only a tag field (``schema``, ``kind``) cannot: msgspec writes it from the Struct's tag, without one."""

    def tag_fields(kind: type[Any]) -> dict[str, str]:
        """Each Struct a format holds, by its schema title, with its tag field when it has one."""
        found: dict[str, str] = {}
        seen: set[int] = set()
        todo: list[Any] = [msgspec.inspect.type_info(kind)]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, msgspec.inspect.StructType) and node.tag_field is not None:
                found[node.cls.__name__] = node.tag_field
            for name in node.__struct_fields__:
                value = getattr(node, name)
                for item in value if isinstance(value, tuple) else (value,):
                    if isinstance(item, msgspec.inspect.Field):
                        item = item.type
                    if isinstance(item, msgspec.inspect.Type):
                        todo.append(item)
        return found

    undescribed: list[str] = []
    for name, kind in sorted(FORMATS.items()):
        tags = tag_fields(kind)
        todo: list[Any] = [json.loads(schema_path(name).read_text(encoding="utf-8"))]
        while todo:
            node = todo.pop()
            if isinstance(node, list):
                todo.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            todo.extend(node.values())
            title = node.get("title", "")
            keys = [key for key in node.get("properties", {}) if key != tags.get(title)]
            parts = [(key, node["properties"][key]) for key in keys]
            parts += [(f"[{index}]", item) for index, item in enumerate(node.get("prefixItems", []))]
            for key, part in parts:
                described = part.get("description")
                if not (isinstance(described, str) and described.strip()):
                    undescribed.append(f"{name}: {title}.{key}")
    assert not undescribed, f"{len(undescribed)} key(s) without a description: {', '.join(undescribed)}"


def test_vocabularies_in_the_schemas_are_the_code_s() -> None:
    run = json.loads(schema_path("run").read_text())["$defs"]
    report = json.loads(schema_path("report").read_text())["$defs"]
    suite = json.loads(schema_path("suite").read_text())
    assert set(run["RunStatus"]["enum"]) == {s.value for s in RunStatus}
    assert set(run["Outcome"]["enum"]) == {o.value for o in Outcome}
    assert set(run["Route"]["enum"]) == {r.value for r in Route}
    assert set(report["DecisionStatus"]["enum"]) == {d.value for d in DecisionStatus}
    assert set(suite["$defs"]["Route"]["enum"]) == {r.value for r in Route}


def test_the_run_record_example_in_the_docs_is_a_run_record() -> None:
    """docs/records.md shows a run record; it must read as one (and match the shipped schema), so that a field
    renamed or added as required in the definition cannot leave the example behind."""
    from pytest_llmgate import RunRecord

    text = (Path(__file__).resolve().parent.parent / "docs" / "records.md").read_text(encoding="utf-8")
    section = text.split("\n## The run record\n", 1)[1]
    example = section.split("```json\n", 1)[1].split("\n```", 1)[0]
    record = msgspec.json.decode(example, type=RunRecord)
    assert json.loads(dump(record)) == json.loads(example)  # nothing in the example is dropped or defaulted away
    check_json(json.loads(example), "run")
    assert record.params["evaluation_sha"] == EVALUATION_SHA and record.status is RunStatus.ELIGIBLE_FOR_CANARY_REVIEW


def test_the_shipped_examples_match_the_published_input_schemas() -> None:
    """What the gate reads, users can check with the published schemas: every example manifest, suite and artifact
    (an artifact against the schema of its provider)."""
    import yaml

    examples = Path(__file__).resolve().parent.parent / "example_suites"
    for pattern, name in (("*/llmgate.yaml", "manifest"), ("*/*.suite.yaml", "suite"), ("*/templates/*.yaml", "")):
        files = sorted(examples.glob(pattern))
        assert files
        for path in files:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if path.name == "calibration.suite.yaml":  # a judge's calibration set (docs/evaluators.md)
                check_json(data, "calibration-set")
                continue
            check_json(data, name or "candidate")
            if not name:
                check_json(data, f"candidate-{data['provider']}")


@pytest.mark.parametrize("provider", ["openai_chat", "anthropic_messages"])
def test_an_llm_artifacts_sampling_settings_are_sent_as_written_and_a_key_left_out_takes_its_structs_default(
        tmp_path: Path, provider: str) -> None:
    """The request (the recording key's material) holds the sampling settings as written, ``temperature: 0`` an
    int, never the Struct's float ``0.0`` (recorded replies would no longer replay); a key the artifact leaves out
    takes its settings Struct's default (anthropic_messages' max_tokens)."""
    from pytest_llmgate import load_candidate
    from pytest_llmgate.providers import ProviderContext, builtin_factory

    factory = builtin_factory(provider)
    assert factory is not None
    written = {"template_id": "t", "provider": provider, "model": "m", "prompt": {"user": "u"}, "temperature": 0}
    path = tmp_path / "templates" / "t.yaml"
    path.parent.mkdir()
    path.write_text(json.dumps(written))
    built: Any = factory.build(load_candidate(path, tmp_path), ProviderContext(experiment_dir=tmp_path))
    request = built.request({"case_id": "c1"}, 0)
    assert request["temperature"] == 0 and type(request["temperature"]) is int
    declared: Any = msgspec.convert(written, factory.settings)
    assert type(declared.temperature) is float  # what the request must not hold
    assert request.get("max_tokens") == (1024 if provider == "anthropic_messages" else None)
    assert (built.timeout, built.trials, built.route_rule) == (declared.timeout, declared.trials, declared.route)


@pytest.mark.parametrize("provider", ["openai_chat", "anthropic_messages"])
def test_every_sampling_setting_and_the_trial_are_in_the_recording_key_and_nothing_else_is(
        tmp_path: Path, provider: str) -> None:
    """A reply recorded at one temperature, seed or max_tokens never replays for another (a changed artifact is
    asked again); a setting that does not change the reply (timeout, retries) keeps the recordings."""
    from pytest_llmgate import load_candidate
    from pytest_llmgate.providers import ProviderContext, builtin_factory
    from pytest_llmgate.providers.recordings import request_key

    factory = builtin_factory(provider)
    assert factory is not None

    def key(trial: int = 0, **settings: Any) -> str:
        written = {"template_id": "t", "provider": provider, "model": "m", "prompt": {"user": "u {{ case_id }}"},
                   "temperature": 0, "max_tokens": 64, **settings}
        path = tmp_path / "templates" / "t.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(written))
        built: Any = factory.build(load_candidate(path, tmp_path), ProviderContext(experiment_dir=tmp_path))
        return request_key(built.request({"case_id": "c1"}, trial))

    first = key()
    changed = [key(temperature=0.7), key(max_tokens=65), key(model="m2"), key(trial=1),
               *([key(seed=7), key(seed=8)] if provider == "openai_chat" else [])]
    assert len({first, *changed}) == 1 + len(changed)
    assert key(timeout=9, max_retries=0) == first


def test_the_xdist_result_round_trips_as_bytes() -> None:
    result = CaseResult(experiment_dir="/x", template_id="t", role=Role.BASELINE, case_id="c1",
                        predicted_route=None, outcome=Outcome.ERROR, error="CallFailed: boom",
                        trial_routes=(Route.SERVE, Route.ABSTAIN))
    payload = result.to_payload()
    assert isinstance(payload, bytes)
    assert CaseResult.from_payload(payload) == result


def test_the_canary_window_schema_says_what_llmgate_canary_reads(tmp_path: Path) -> None:
    """A line the published schema takes, ``llmgate canary --window`` takes (other keys too); one it refuses, the
    command refuses, naming the line and the key."""
    from pytest_llmgate.records.canary_window import unsafe_requests_in

    good = [{"request_id": 7, "route": "SERVE", "supported": False, "latency_ms": 412},
            {"request_id": "r2", "route": "ABSTAIN", "supported": False}]
    for line in good:
        check_json(line, "canary-window")
    window = tmp_path / "window.jsonl"
    window.write_text("\n".join(json.dumps(line) for line in good) + "\n\n")
    assert unsafe_requests_in(window) == ["7"]
    bad = {"request_id": "r3", "route": "SERVE", "supported": "no"}
    with pytest.raises(ValidationError):
        check_json(bad, "canary-window")
    window.write_text(json.dumps(good[0]) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(RecordError, match=r"window.jsonl:2: supported: 'no' is not true or false$"):
        unsafe_requests_in(window)


@pytest.mark.parametrize("nested_in", ["line", "extra key"])
def test_a_canary_window_line_nested_too_deeply_is_an_error_naming_the_line(tmp_path: Path, nested_in: str) -> None:
    from pytest_llmgate.records.canary_window import unsafe_requests_in

    deep = "[" * 100_000 + "]" * 100_000
    line = deep if nested_in == "line" else f'{{"request_id": 1, "route": "SERVE", "supported": true, "x": {deep}}}'
    window = tmp_path / "window.jsonl"
    window.write_text('{"request_id": 1, "route": "SERVE", "supported": true}\n' + line + "\n")
    with pytest.raises(RecordError, match=r"window.jsonl:2: cannot be read as JSON: it nests arrays or objects too "
                                          r"deeply$"):
        unsafe_requests_in(window)


# -- golden files ------------------------------------------------------------------------------------
RUN_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def normalised(text: str, names: dict[str, str]) -> str:
    """Run ids by their template, times, the code commit, the version, latencies and hashes of run-id-bearing
    files fixed."""
    for run_id, template in names.items():
        text = text.replace(run_id, f"RUN-{template}")
    text = TIME.sub("TIME", text)
    text = re.sub(r'"code_commit": "[^"]*"', '"code_commit": "COMMIT"', text)
    text = re.sub(r'"llmgate_version": "[^"]*"', '"llmgate_version": "VERSION"', text)
    text = re.sub(r'("latency(?:_p50|_p95|_max)?_ms": ?)[0-9.e+-]+', r'\1"MS"', text)  # the clock's, not the format's
    return re.sub(r'("path":"reports/RUN-[^"]*","sha256":)"[0-9a-f]{64}"', r'\1"SHA"', text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; create it with LLMGATE_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from tests/golden/{name}: a format change shows here; if deliberate, bump the schema "
        "version where the layout changed and regenerate with LLMGATE_UPDATE_GOLDEN=1"
    )


@pytest.mark.usefixtures("example")
def test_golden_files_pin_every_written_format(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("example_suites", "-p", "no:cacheprovider", *THREE_RUNS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = pytester.path / ".llmgate"
    runs = {p.stem: json.loads(p.read_text())["params"]["template_id"] for p in (out / "runs").glob("*.json")}
    for path in sorted((out / "runs").glob("*.json")):
        check_json(json.loads(path.read_text()), "run")
        check_golden(f"run-{runs[path.stem]}.json", normalised(path.read_text(), runs))
    for path in sorted((out / "reports").glob("*.json")):
        run_id = path.name.removesuffix("-redacted-eval.json")
        check_json(json.loads(path.read_text()), "redacted-eval")
        check_golden(f"redacted-eval-{runs[run_id]}.json", normalised(path.read_text(), runs))
    report = (out / "report.json").read_text()
    check_json(json.loads(report), "report")
    check_golden("report.json", normalised(report, runs))
    lock = (pytester.path / "example_suites" / "ci-claim-gate-repair" / "llmgate.lock").read_text()
    check_json(json.loads(lock), "lock")
    check_golden("llmgate.lock", lock)


def test_records_written_by_0_1_0_still_load(capsys: pytest.CaptureFixture[str]) -> None:
    old = GOLDEN / "v0.1.0"
    records = [read_run(path).record for path in sorted((old / "runs").glob("*.json"))]
    assert {record.template_id: record.status for record in records}[FIX_B] is RunStatus.ELIGIBLE_FOR_CANARY_REVIEW
    for record in records:  # reading and writing again gives the same data
        assert json.loads(dump(record)) == json.loads((old / "runs" / f"{record.run_id}.json").read_text())
    assert llmgate(["runs", "--dir", str(old)]) == 0  # readable: listed, compared, each saying it cannot be checked
    out = capsys.readouterr().out
    assert FIX_B in out and out.count(": unverifiable: it names no experiment_path") == 3
    assert llmgate(["compare", *(r.run_id for r in records), "--dir", str(old)]) == 0
    assert f"decision: PROMOTE {FIX_B}" in capsys.readouterr().out
    # not promotable: its candidate files and redacted reports (not kept here) cannot be checked
    assert llmgate(["promote", *(r.run_id for r in records), "--dir", str(old)]) == 2
    assert ": unverifiable: it names no experiment_path" in capsys.readouterr().err
    assert llmgate(["canary", str(old / "report.json"), "--unsafe-claims", "1"]) == 2
    assert "report.json: unverifiable: it rests on" in capsys.readouterr().err


def test_a_record_that_does_not_match_its_definition_is_refused_naming_the_field(tmp_path: Path) -> None:
    record = json.loads(next((GOLDEN / "v0.1.0" / "runs").glob("*.json")).read_text())
    record["metrics"]["case_count"] = "four"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    from pytest_llmgate import RunRecord

    with pytest.raises(RecordError, match=r"bad.json: is not a valid llmgate.run/1 .*\$\.metrics\.case_count"):
        load(path.read_bytes(), RunRecord, path)


def test_golden_replies_file(tmp_path: Path) -> None:
    """The replies file as --llmgate-save-replies writes it (msgspec's JSON of ``SavedReplies``), pinned byte for
    byte, and read back by ``llmgate view`` as the same value."""
    from pytest_llmgate.records.replies import CaseReplies, SavedReplies, TrialReply, read_replies

    trials = (TrialReply(trial=0, messages=(("system", "Be careful."), ("user", "Why did build 4411 fail?")),
                         reply='{"route": "ABSTAIN"}', source="live", route=Route.ABSTAIN),
              TrialReply(trial=1, messages=(("user", "Why did build 4411 fail?"),), reply='{"route": "SERVE"}',
                         source="replayed", route=Route.SERVE),
              TrialReply(trial=2, messages=(), reply=None, source="no reply", note="missing placeholder {question}"))
    saved = SavedReplies(written_at="2026-11-27T15:00:00+00:00", cases=(
        CaseReplies(experiment="exp", suite="main", case_id="c1", template_id="careful", role=Role.CANDIDATE,
                    expected_route=Route.ABSTAIN, trials=trials, outcome=Outcome.UNSAFE_CLAIM_SERVED, passed_trials=1),
        CaseReplies(experiment="exp", suite="main", case_id="c2", template_id="eager", role=Role.BASELINE,
                    expected_route=Route.SERVE, trials=trials[:1])))
    written = msgspec.json.encode(saved)
    check_golden("replies.json", written.decode("utf-8") + "\n")
    check_json(json.loads(written), "replies")
    path = tmp_path / "replies.json"
    path.write_bytes(written)
    assert read_replies(path) == saved
    # where a reply came from is one of three words, for the reader as for the schema
    path.write_bytes(written.replace(b'"source":"replayed"', b'"source":"cached"'))
    with pytest.raises(RecordError, match=r"replies.json: not a replies file .*Invalid enum value 'cached' - at "
                                          r"`\$\.cases\[0\]\.trials\[1\]\.source`"):
        read_replies(path)
    with pytest.raises(ValidationError, match="'cached' is not one of"):
        check_json(json.loads(path.read_bytes()), "replies")


def test_golden_recording_line_and_xdist_result(tmp_path: Path) -> None:
    from pytest_llmgate.model.vocab import RecordMode
    from pytest_llmgate.providers.recordings import Recordings

    recordings = Recordings(tmp_path / "recordings" / "t.jsonl", RecordMode.ALL)
    request = {"provider": "openai_chat", "model": "m", "messages": [{"role": "user", "content": "hi"}], "trial": 0}
    usage = Usage(input_tokens=12, output_tokens=5, cached_tokens=4, reasoning_tokens=2, latency_ms=31.5,
                  rate_limited=1)
    assert recordings.reply(request, lambda: ('{"route": "SERVE"}', usage), "c1") == ('{"route": "SERVE"}', usage)
    check_golden("recording.jsonl", (tmp_path / "recordings" / "t.jsonl").read_text(encoding="utf-8"))
    replayed = Recordings(tmp_path / "recordings" / "t.jsonl", RecordMode.NONE).reply(request, lambda: ("", Usage()))
    assert replayed == ('{"route": "SERVE"}', msgspec.structs.replace(usage, rate_limited=0))  # 429s are not replayed
    result = CaseResult(experiment_dir="/x", template_id="t", role=Role.CANDIDATE, case_id="c1",
                        predicted_route=Route.SERVE, outcome=Outcome.PASS, calls=(usage,))
    check_golden("result.msgpack.hex", result.to_payload().hex() + "\n")


def test_a_deltas_figures_are_the_runs_figures() -> None:
    """MetricDelta's required fields are the gating figures of Metrics, its optional ones figures of
    Metrics.cost: metric_delta reads each from there by name."""
    from pytest_llmgate.model.costs import CostMetrics
    from pytest_llmgate.records.diff import COST_FIGURES, GATING_FIGURES
    from pytest_llmgate.records.run import Metrics

    assert GATING_FIGURES and set(GATING_FIGURES) <= set(Metrics.__struct_fields__)
    assert COST_FIGURES and set(COST_FIGURES) <= set(CostMetrics.__struct_fields__)


def test_a_calibration_result_that_cannot_be_read_is_a_record_error(tmp_path: Path) -> None:
    """A folder in the file's place is said as a clear error (the judge is then uncalibrated), not an OSError out of
    the session; no file at all is no result."""
    from pytest_llmgate.records.evaluator import read_calibration_result

    (tmp_path / "folder.calibration.json").mkdir()
    with pytest.raises(RecordError, match="folder.calibration.json: cannot be read: "):
        read_calibration_result(tmp_path / "folder.calibration.json")
    assert read_calibration_result(tmp_path / "none.calibration.json") is None


def test_a_calibration_result_without_permission_is_a_record_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root reads any file here, so the refusal an unreadable evaluators folder gives is made for the test
    from pytest_llmgate.records.evaluator import read_calibration_result

    def refused(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(RecordError, match="j.calibration.json: cannot be read: Permission denied"):
        read_calibration_result(tmp_path / "j.calibration.json")
