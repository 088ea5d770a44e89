"""SPEC §6: every bad input gets an error naming the file, the line and the problem; no record is lost."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .conftest import MakeExperiment, read_report, snapshot, write_yaml

SUITE_HEAD = "cases:\n  - case_id: c1\n    slice_name: s\n    evidence_state: log\n    expected_route: SERVE\n    source: t\n"


def replace_suite(text: str) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        (directory / "main.suite.yaml").write_text(text)

    return breaker


def edit_manifest(**changes: object) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        import yaml

        manifest = yaml.safe_load((directory / "llmgate.yaml").read_text())
        manifest.update(changes)
        write_yaml(directory / "llmgate.yaml", manifest)

    return breaker


def write_template(name: str, text: str) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        (directory / "templates" / name).write_text(text)

    return breaker


def stray_suite(directory: Path) -> None:
    (directory / "stray.suite.yaml").write_text(SUITE_HEAD)


def outside_suite(directory: Path) -> None:
    (directory.parent / "outside.suite.yaml").write_text(SUITE_HEAD.replace("c1", "o1"))
    manifest = (directory / "llmgate.yaml").read_text()
    (directory / "llmgate.yaml").write_text(manifest.replace("main: main.suite.yaml", "main: ../outside.suite.yaml"))


def callable_exiting_on_import(directory: Path) -> None:
    (directory / "exits_on_import.py").write_text("import sys\n\nsys.exit(3)\n")
    (directory / "templates" / "good.yaml").write_text(
        "template_id: good\nprovider: python\ncallable: exits_on_import:route\n")


LLM_TEMPLATE = "template_id: good\nprovider: openai_chat\nmodel: m\nprompt:\n  user: 'Evidence: {{ evidence_state }}'\n"


def recordings_not_utf8(directory: Path) -> None:
    (directory / "templates" / "good.yaml").write_text(LLM_TEMPLATE)
    (directory / "recordings").mkdir()
    (directory / "recordings" / "good.jsonl").write_bytes(b'{"key": "k", "reply": "{}"}\n{"key": "\xff"}\n')


def brackets_escaped(pattern: str) -> str:
    """Square brackets matched literally by fnmatch."""
    return re.sub(r"[\[\]]", lambda m: f"[{m.group()}]", pattern)


BAD_INPUTS = [
    pytest.param(replace_suite(SUITE_HEAD + "  - case_id: [c2\n"), "exp/main.suite.yaml:8: YAML syntax error",
                 id="yaml-syntax"),
    pytest.param(replace_suite(SUITE_HEAD + "  - case_id: c2\n    slice_name: s\n    evidence_state: log\n"
                               "    expected_route: SERVE\n"),
                 "exp/main.suite.yaml:7: cases[1]: missing required key 'source'", id="schema-missing-field"),
    pytest.param(replace_suite(SUITE_HEAD + "    colour: blue\n"),
                 "exp/main.suite.yaml:7: cases[0]: unknown key 'colour' (allowed: case_id, slice_name, evidence_state, "
                 "expected_route, source, input)", id="schema-unknown-key"),
    pytest.param(edit_manifest(owner="me"), "exp/llmgate.yaml:*: unknown key 'owner'", id="manifest-unknown-key"),
    pytest.param(replace_suite(SUITE_HEAD + "    source: u\n"),
                 "exp/main.suite.yaml:7: duplicate key 'source' (first defined on line 6)", id="duplicate-key"),
    pytest.param(replace_suite(SUITE_HEAD + SUITE_HEAD.replace("cases:\n", "")),
                 "exp/main.suite.yaml:7: duplicate case_id 'c1' (first on line 2)", id="duplicate-case-id"),
    pytest.param(replace_suite(SUITE_HEAD.replace("SERVE", "MAYBE")),
                 "exp/main.suite.yaml:5: cases[0].expected_route: 'MAYBE' is not one of ['SERVE', 'ABSTAIN']",
                 id="unknown-route"),
    pytest.param(write_template("good.yaml", "template_id: goood\nprovider: evidence_policy\nserve_evidence: [log]\n"),
                 "exp/templates/good.yaml:1: template_id 'goood' differs from the file name 'good'*", id="template-id"),
    pytest.param(stray_suite, "exp/stray.suite.yaml: is not listed in the suites of any llmgate.yaml*",
                 id="unlisted-suite"),
    pytest.param(write_template("good.yaml", "template_id: good\nprovider: python\ncallable: no_such_module:route\n"),
                 "exp/templates/good.yaml:3: callable 'no_such_module:route' cannot be imported: "
                 "ModuleNotFoundError*", id="callable-import"),
    pytest.param(callable_exiting_on_import, "exp/templates/good.yaml:3: callable 'exits_on_import:route' cannot be "
                 "imported: SystemExit: 3", id="callable-exits-on-import"),
    pytest.param(write_template("good.yaml", LLM_TEMPLATE + "route:\n  regex: '(unclosed'\n"),
                 "exp/templates/good.yaml:7: route.regex '(unclosed' is not a regular expression: missing ), "
                 "unterminated subpattern at position 0", id="route-regex"),
    pytest.param(recordings_not_utf8, "exp/recordings/good.jsonl:2: not UTF-8 text (byte 0xff at column 10)",
                 id="recordings-not-utf8"),
    pytest.param(write_template("good.yaml", "template_id: good\nprovider: evidence_policy\nserve_evidence: [log]\n"
                                "model: m\n"),
                 "exp/templates/good.yaml:4: unknown key 'model' (allowed: template_id, provider, description, case_timeout, "
                 "serve_evidence, prompt)", id="setting-of-another-provider"),
    pytest.param(outside_suite, "exp/llmgate.yaml:6: suites.main: path '../outside.suite.yaml' leaves the "
                 "experiment directory", id="path-leaves-directory"),
]


@pytest.mark.parametrize(("breaker", "message"), BAD_INPUTS)
def test_bad_input_is_a_clear_error_and_keeps_every_record(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, breaker: Callable[[Path], None], message: str
) -> None:
    directory = make_experiment("exp")
    good = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert good.ret == pytest.ExitCode.OK
    before = snapshot(pytester.path / ".llmgate")
    assert len(before) == 3  # a run record, its redacted report, the session report

    breaker(directory)
    result = pytester.runpytest("exp", "--llmgate-candidate=good")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*{brackets_escaped(message)}*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    after = snapshot(pytester.path / ".llmgate")
    # Every record is kept; the last report is kept whole beside the marker that replaced it (no stale verdict).
    assert after.pop("report.previous.json") == before["report.json"]
    marker = json.loads(after.pop("report.json"))
    assert (marker["in_progress"], marker["experiments"]) == (True, [])
    assert after == {name: data for name, data in before.items() if name != "report.json"}


def test_a_collection_error_in_one_experiment_names_it_even_with_continue(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("first")
    broken = make_experiment("second")
    (broken / "main.suite.yaml").write_text("cases: [\n")
    result = pytester.runpytest("first", "second", "--llmgate-candidate=good", "--continue-on-collection-errors")
    result.stdout.fnmatch_lines(["*ERROR collecting second*", "*second/main.suite.yaml:2: YAML syntax error*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = (pytester.path / ".llmgate" / "report.json").read_text()
    assert '"experiment": "first"' in report and '"experiment": "second"' not in report


def test_a_missing_suite_file_names_the_manifest_line(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    directory = make_experiment("exp")
    (directory / "main.suite.yaml").unlink()
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/llmgate.yaml:6: suite 'main': no file 'main.suite.yaml'*"])


def test_a_case_id_repeated_across_suites_is_an_error(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    from .conftest import case

    make_experiment("exp", suites={"a": [case("c1", "log", "SERVE")], "b": [case("c1", "log", "SERVE")]})
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/b.suite.yaml:2: duplicate case_id 'c1': already in suite 'a'*"])


def test_two_experiments_of_one_name_are_an_error(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: both ran and the report held two decisions for one name, which promote and canary could not pick
    make_experiment("a")
    twin = make_experiment("b")
    write_yaml(twin / "llmgate.yaml", {**yaml.safe_load((twin / "llmgate.yaml").read_text()), "experiment": "a"})
    result = pytester.runpytest("a", "b", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["b/llmgate.yaml: experiment 'a' is also the name of a: give each experiment its own "
                                 "name"])


def test_a_template_named_all_is_refused(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: it loaded, yet no option could select it alone (all means every artifact)
    make_experiment(templates={"all": {"provider": "evidence_policy", "serve_evidence": ["log"]}})
    result = pytester.runpytest("exp", "--llmgate-candidate=all")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*exp/templates/all.yaml:1: template_id 'all' is reserved (--llmgate-candidate=all "
                                 "selects every artifact)*"])


def test_an_unwritable_out_dir_is_one_clear_error_before_any_run(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    (pytester.path / "blocked").write_text("a file where the records folder should be")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-out=blocked")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at the start, before any candidate is called
    result.stderr.fnmatch_lines(["ERROR: blocked/report.json: cannot be written: blocked is a file, not a folder"])
    result.stdout.no_fnmatch_line("*passed*")
    assert (pytester.path / "blocked").read_text().startswith("a file")


def test_a_run_record_that_cannot_be_written_stops_the_promotion(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # Two eligible candidates tie; if one's record is lost, the other must not be promoted in its place.
    make_experiment("exp")
    pytester.makeconftest('''
        import os

        def pytest_llmgate_run_record(config, record, files):
            if record["params"]["template_id"] == "good":  # after good's record, its folder is taken away
                os.rename(os.path.join(".llmgate", "runs"), "moved-runs")
                open(os.path.join(".llmgate", "runs"), "w").close()
    ''')
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*decision: INCOMPLETE_EVALUATION: no run record could be written for also-good; nothing is promoted*",
        "*ERROR llmgate: .llmgate/runs/*.json: cannot be written: .llmgate/runs is a file, not a folder*",
    ])
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "INCOMPLETE_EVALUATION" and report["decision"] is None
    assert [run["template_id"] for run in report["runs"]] == ["good"]


# -- each input format's definition says what is wrong, where (unit level: no session) ---------------------------

MANIFEST = ("experiment: exp\npolicy_id: p\nevidence_version: e\nevaluator_version: v\n"
            "suites:\n  main: main.suite.yaml\n")


@pytest.mark.parametrize(("text", "message"), [
    (MANIFEST + "promotion:\n  alias: x\n  rollbak_artifact: y\n",
     "llmgate.yaml:9: promotion: unknown key 'rollbak_artifact', a misspelling of 'rollback_artifact'? (allowed: "
     "alias, rollback_artifact, limitation, max_unsafe_rate, max_unnecessary_rate, confidence)"),
    (MANIFEST + "handoff:\n  hypothesis: 3\n", "llmgate.yaml:8: handoff.hypothesis: 3 is not a string"),
    (MANIFEST + "budget:\n  max_latency_p95_ms: -1\n",
     "llmgate.yaml:8: budget.max_latency_p95_ms: -1 is less than the minimum of 0"),
    (MANIFEST + "budget:\n  max_latency_p95_ms: .inf\n",  # was accepted, then crashed the budget check
     "llmgate.yaml:8: budget.max_latency_p95_ms: inf is no limit; give a number (leave the key out for none)"),
    (MANIFEST + "budget:\n  max_cost_per_case_usd: .nan\n",
     "llmgate.yaml:8: budget.max_cost_per_case_usd: NaN is not a number"),
    (MANIFEST + "promotion:\n  max_unsafe_rate: 2\n",
     "llmgate.yaml:8: promotion.max_unsafe_rate: 2 is greater than the maximum of 1"),
    (MANIFEST + "promotion:\n  confidence: .nan\n", "llmgate.yaml:8: promotion.confidence: NaN is not a number"),
    (MANIFEST + "promotion:\n  rollback_artifact: \"v1\\nCONTINUE_CANARY_MONITORING\"\n",
     "llmgate.yaml:8: promotion.rollback_artifact: 'v1\\nCONTINUE_CANARY_MONITORING' is refused: What a canary rolls "
     "back to (llmgate canary), one line of printable text; none by default."),
    (MANIFEST.replace("main: main", "evaluation: main"),
     "llmgate.yaml:6: suites: key 'evaluation' is refused: Suite names -> suite files: a suite name starts with a "
     "letter*'evaluation' names the fingerprint over all suites*"),
    (MANIFEST.replace("main.suite.yaml", "main.yaml"),
     "llmgate.yaml:6: suites.main: 'main.yaml' is refused: a suite file's name ends in .suite.yaml or .suite.jsonl*"),
    (MANIFEST + "  other: 3\n", "llmgate.yaml:7: suites.other: 3 is not a string"),
    ("- a\n- b\n", "llmgate.yaml:1: ['a', 'b'] is not a mapping"),
    ("", "llmgate.yaml: is empty; expected a mapping"),
    ("experiment: exp\n", "llmgate.yaml:1: missing required keys 'policy_id', 'evidence_version', "
         "'evaluator_version' and 'suites'"),
    (MANIFEST + "7: seven\n", "llmgate.yaml:1: key 7 is not a string"),
    (MANIFEST + "handoff: {2: x}\n", "llmgate.yaml:7: handoff: key 2 is not a string"),
])
def test_a_bad_manifest_names_its_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    from fnmatch import fnmatchcase

    from pytest_llmgate import ManifestError, load_experiment

    (tmp_path / "llmgate.yaml").write_text(text)
    (tmp_path / "main.suite.yaml").write_text(SUITE_HEAD)
    with pytest.raises(ManifestError) as info:
        load_experiment(tmp_path)
    shown = f"llmgate.yaml{str(info.value).split('llmgate.yaml', 1)[1]}"
    assert fnmatchcase(shown, brackets_escaped(message)), shown


@pytest.mark.parametrize(("text", "message"), [
    ("provider: evidence_policy\nserve_evidence: x\n", "3: serve_evidence: 'x' is not '*' or a list"),
    ("provider: evidence_policy\nserve_evidence: [a, b, a]\n", "3: serve_evidence: 'a' is listed twice"),
    ("provider: evidence_policy\nserve_evidence: '*'\nprompt: {system: s}\n", "4: prompt: missing required key 'user'"),
    ("provider: evidence_policy\nserve_evidence: '*'\nprompt: 3\n", "4: prompt: 3 is not a string or a mapping"),
    ("provider: openai_chat\nmodel: m\nprompt: {user: u}\nroute: {json_key: a, regex: b}\n",
     "5: route: give one of json_key and regex"),
    ("provider: openai_chat\nmodel: m\nprompt: {user: u}\nprice: {input_per_mtok: 1}\n",
     "5: price: missing required key 'output_per_mtok'"),
    ("provider: openai_chat\nmodel: m\nprompt: {user: u}\nprice: {input_per_mtok: .inf, output_per_mtok: 1}\n",
     "5: price.input_per_mtok: inf is greater than the maximum of 1e+15"),  # an infinite cost is written as null
    ("provider: openai_chat\nmodel: m\nprompt: {user: u}\ntimeout: .inf\n",
     "5: timeout: inf is greater than the maximum of 86400"),
    ("provider: openai_chat\nmodel: m\nprompt: {user: u}\nbase_url: ftp://x\n",
     "5: base_url: 'ftp://x' is refused: an endpoint URL starts with http:// or https://*"),
    ("provider: openai_chat\nprompt: {user: u}\nmodl: m\n",
     "4: unknown key 'modl', a misspelling of 'model'? (allowed: template_id, provider, description, case_timeout, "
     "model, *, seed)"),
    ("provider: anthropic_messages\nmodel: m\nprompt: {user: u}\nmax_tokens: 1.5\n", "5: max_tokens: 1.5 is not an integer"),
    ("provider: python\ncallable: 'a b'\n", "3: callable: 'a b' is refused: the callable is written "
                                            "package.module:function*"),
    ("provider: python\ncallable: a:b\nparams: [1]\n", "4: params: [1] is not a mapping"),
    ("provider: 3\n", "2: provider: 3 is not a string"),
    ("templat_id: t\nprovider: python\n",
     "1: missing required key 'template_id' (unknown key 'templat_id', a misspelling of 'template_id'?)"),
    ("provider: python\ncallable: a:b\ndescription: ~\n", "4: description: null is not a string"),
])
def test_a_bad_artifact_names_its_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    from fnmatch import fnmatchcase

    from pytest_llmgate import CandidateError, load_candidate
    from pytest_llmgate.providers import builtin_factory, check_settings

    path = tmp_path / "templates" / "t.yaml"
    path.parent.mkdir()
    path.write_text(text if text.startswith("templat") else "template_id: t\n" + text)
    with pytest.raises(CandidateError) as info:
        candidate = load_candidate(path, tmp_path)
        factory = builtin_factory(candidate.provider)
        assert factory is not None
        check_settings(candidate, factory)
    shown = str(info.value).split("t.yaml:", 1)[1]
    assert fnmatchcase(shown, brackets_escaped(message)), shown
