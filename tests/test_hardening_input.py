"""Hostile and odd input (issue 18): alias bombs, empty suites, bytes that are not UTF-8, JSON Lines edge cases,
case ids that break node ids, templates that cannot be listed or leave the experiment, numbers Python cannot read
or wait for, and a pytest cache rewritten between sessions (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_llmgate import CandidateError, ManifestError, SuiteError, load_suite
from pytest_llmgate.records.yaml_loader import load_yaml

from .conftest import MakeExperiment, case, llmgate, write_yaml

CASE_HEAD = "cases:\n  - case_id: c1\n    slice_name: s\n    evidence_state: log\n    expected_route: SERVE\n    source: t\n"


def alias_bomb() -> str:
    """Nine levels of nine aliases under a case's input: about 800 bytes standing for 9**9 strings."""
    lines = [CASE_HEAD.rstrip("\n"), "    input:", '      l1: &l1 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(2, 10):
        below = f"*l{level - 1}"
        lines.append(f"      l{level}: &l{level} [{', '.join([below] * 9)}]")
    return "\n".join(lines) + "\n"


# --- YAML aliases: refused before any value is built ---------------------------------------------------------


def test_an_alias_bomb_is_refused_before_anything_is_constructed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.suite.yaml"
    path.write_text(alias_bomb())
    assert 600 < len(path.read_bytes()) < 900

    def never(*args: object) -> None:
        raise AssertionError("a value was constructed from a file with aliases")

    # no wall clock: construction never starts (every PyYAML loader builds a document through BaseConstructor)
    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_document", never)
    with pytest.raises(SuiteError) as info:
        load_suite("bomb", path)
    assert str(info.value).endswith("bomb.suite.yaml:9: YAML alias *l1, of the anchor on line 8: aliases are not allowed; "
                                    "write the value out")


@pytest.mark.parametrize("error", [SuiteError, ManifestError, CandidateError])
@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a: &x foo\nb:\n  - 1\n  - *x\n", 4, "YAML alias *x, of the anchor on line 1"),
        ("base: &b {x: 1}\nc:\n  <<: *b\n", 3, "YAML alias *b, of the anchor on line 1"),  # merge keys are aliases too
        ("a: &x [*x]\n", 1, "YAML alias *x, of the anchor on line 1"),  # a value that holds itself
    ],
)
def test_aliases_are_refused_in_every_yaml_file(
    tmp_path: Path, error: type[SuiteError], text: str, line: int, problem: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(error) as info:
        load_yaml(path, error)
    assert info.value.line == line
    assert info.value.problem == f"{problem}: aliases are not allowed; write the value out"


def test_an_anchor_without_an_alias_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: &x 1\nb: [2]\n")
    assert load_yaml(path, SuiteError).data == {"a": 1, "b": [2]}


@pytest.mark.slow
def test_an_alias_bomb_suite_stops_the_session_and_the_fingerprint_command(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    (directory / "main.suite.yaml").write_text(alias_bomb())
    result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=good", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/main.suite.yaml:9: YAML alias [*]l1, of the anchor on line 8: aliases are not allowed*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    done = llmgate(pytester.path, "fingerprint", "exp/main.suite.yaml")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("llmgate: error: exp/main.suite.yaml:9: YAML alias *l1, of the anchor on line 8: "
                           "aliases are not allowed; write the value out\n")


# --- bytes that are not UTF-8 ----------------------------------------------------------------------------------


def test_a_yaml_suite_with_a_byte_that_is_not_utf8_names_the_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    (directory / "main.suite.yaml").write_bytes(CASE_HEAD.replace("source: t", "source: caf\xe9").encode("latin-1"))
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/main.suite.yaml:6: is not UTF-8 text (*UTF-8*)*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_control_character_in_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb: \x07\n")
    with pytest.raises(ManifestError) as info:
        load_yaml(path, ManifestError)
    assert info.value.line == 2
    assert info.value.problem.startswith("character '\\x07' is not allowed in YAML")


# --- empty suites ----------------------------------------------------------------------------------------------


def test_an_empty_yaml_suite_is_a_collection_error_naming_the_file(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", suites={"main": []})
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/main.suite.yaml:1: has no cases; a suite needs at least one case*"])
    assert not (pytester.path / ".llmgate" / "runs").exists()


@pytest.mark.parametrize(("name", "text", "where"), [
    ("main.suite.yaml", "cases: []\n", "main.suite.yaml:1"),
    ("main.suite.jsonl", "", "main.suite.jsonl"),
    ("main.suite.jsonl", "\n  \n\n", "main.suite.jsonl"),
])
def test_an_empty_suite_is_the_same_clean_error_from_the_fingerprint_command(
    pytester: pytest.Pytester, name: str, text: str, where: str
) -> None:
    (pytester.path / name).write_text(text)
    done = llmgate(pytester.path, "fingerprint", name)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"llmgate: error: {where}: has no cases; a suite needs at least one case\n"


# --- JSON Lines --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "key"), [
    ('{"case_id": "b", "slice_name": "s", "evidence_state": "e", "expected_route": "ABSTAIN", "source": "t", '
     '"expected_route": "SERVE"}', "expected_route"),
    ('{"case_id": "b", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t", '
     '"input": {"q": 1, "q": 2}}', "q"),
])
def test_a_duplicate_key_in_a_jsonl_line_is_refused_naming_the_line(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "bad.suite.jsonl"
    path.write_text(json.dumps(case("a", "e", "SERVE")) + "\n" + line + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite("bad", path)
    assert str(info.value).endswith(f"bad.suite.jsonl:2: duplicate key {key!r} in a JSON object")


@pytest.mark.parametrize("character", ["\u2028", "\u2029", "\x85"])  # str.splitlines() splits at each
def test_jsonl_lines_end_at_newline_only(tmp_path: Path, character: str) -> None:
    written = case("a", "e", "SERVE", input={"q": f"one{character}two"})
    jsonl = tmp_path / "s.suite.jsonl"
    jsonl.write_text(json.dumps(written, ensure_ascii=False) + "\n" + json.dumps(case("b", "e", "ABSTAIN")) + "\n",
                     encoding="utf-8", newline="")
    assert character in jsonl.read_bytes().decode("utf-8")  # written raw, not escaped
    from_jsonl = load_suite("s", jsonl)
    assert [c.line for c in from_jsonl.cases] == [1, 2]
    assert from_jsonl.cases[0].written["input"]["q"] == f"one{character}two"
    from_yaml = load_suite("s", write_yaml(tmp_path / "s.suite.yaml", {"cases": [written, case("b", "e", "ABSTAIN")]}))
    assert from_yaml.fingerprint == from_jsonl.fingerprint


def test_a_jsonl_line_nested_too_deeply_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.suite.jsonl"
    path.write_text('{"input": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
    with pytest.raises(SuiteError) as info:
        load_suite("deep", path)
    assert info.value.line == 1 and info.value.problem.startswith("not a JSON object")


# --- case ids ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["req_205", "hold_001", "a.b-c", "t:1", "R2D2", "7"])
def test_ordinary_case_ids_are_accepted(tmp_path: Path, case_id: str) -> None:
    path = tmp_path / "s.suite.jsonl"
    path.write_text(json.dumps(case(case_id, "e", "SERVE")) + "\n")
    assert load_suite("s", path).cases[0].case_id == case_id


@pytest.mark.parametrize("case_id", ["r1\n", "a::b", "a:::b", "x\ny", "-a", "a b", ""])
def test_case_ids_that_break_node_ids_are_refused_with_what_a_case_id_is(tmp_path: Path, case_id: str) -> None:
    path = tmp_path / "s.suite.jsonl"
    path.write_text(json.dumps(case(case_id, "e", "SERVE")) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite("s", path)
    assert str(info.value).endswith(
        f"s.suite.jsonl:1: case_id: {case_id!r} is refused: a case id starts with a letter or digit and holds only "
        "letters, digits and _ . - : (never '::', which separates pytest node ids, and no line break)"
    )


def test_a_case_id_with_a_trailing_newline_in_yaml_names_its_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE"), case("r1\n", "log", "SERVE")]})
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/main.suite.yaml:7: cases[[]1[]].case_id: 'r1\\n' is refused: a case id starts*"])


# --- the pytest cache: no suite is read from it (issue 24, item 5) ----------------------------------------------


def test_the_pytest_cache_holds_no_case_and_the_records_carry_the_files_fingerprints(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    """A session reads its suites from the files, never from pytest's cache folder (which a CI cache restored from
    a fork, say, could have rewritten): the folder holds no case, and the fingerprints recorded are the files'."""
    from pytest_llmgate.records.experiment import load_experiment

    from .conftest import read_report, read_runs

    directory = make_experiment("exp", templates={"serve-all": {"provider": "evidence_policy", "serve_evidence": "*"}})
    result = pytester.runpytest("exp", "--llmgate-candidate=serve-all")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # it serves the case the label says to abstain on
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "NO_ELIGIBLE_CANDIDATE" and report["decision"] is None
    on_disk = load_experiment(directory).fingerprints
    for run in read_runs(pytester.path / ".llmgate"):
        assert run["status"] == "REJECT_UNSAFE_SERVE"
        assert run["fingerprints"] == on_disk
    cached = [p for p in (pytester.path / ".pytest_cache").rglob("*") if p.is_file()]
    assert cached  # pytest's own entries (lastfailed, nodeids)
    assert not [p for p in cached if b"expected_route" in p.read_bytes() or b"evidence_state" in p.read_bytes()]


# --- numbers Python cannot read, or a case cannot wait for --------------------------------------------------------


def test_an_integer_too_long_for_python_is_a_clean_error_naming_its_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    (directory / "main.suite.yaml").write_text(CASE_HEAD + "    input:\n      n: " + "7" * 5000 + "\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    problem = "an integer of 5000 digits is more than Python reads; quote it to keep it as text"
    result.stdout.fnmatch_lines([f"*exp/main.suite.yaml:8: {problem}*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    done = llmgate(pytester.path, "fingerprint", "exp/main.suite.yaml")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"llmgate: error: exp/main.suite.yaml:8: {problem}\n"


@pytest.mark.parametrize(("value", "problem"), [
    (".inf", "case_timeout: inf is greater than the maximum of 86400"),
    ("-.inf", "case_timeout: -inf is not greater than 0"),
    (".nan", "case_timeout: NaN is not a number"),
    ("1.0e+400", "case_timeout: inf is greater than the maximum of 86400"),
    ("1e400", "case_timeout: '1e400' is not a number"),  # YAML 1.1 reads a float only with a dot
    ("0", "case_timeout: 0 is not greater than 0"),
    ("yes", "case_timeout: true is not a number"),
])
def test_a_case_timeout_that_is_no_number_of_seconds_is_refused_naming_its_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, value: str, problem: str
) -> None:
    """Refused when the artifact loads, not met as an OverflowError (``.inf``) or an instant timeout (``.nan``) in
    every case of a candidate whose answers are waited for."""
    directory = make_experiment("exp", templates={"py": {"provider": "python", "callable": "serving:route"}})
    (directory / "serving.py").write_text("def route(case, artifact):\n    return 'SERVE'\n")
    template = directory / "templates" / "py.yaml"
    template.write_text(template.read_text() + f"case_timeout: {value}\n")
    line = len(template.read_text().splitlines())
    result = pytester.runpytest("exp", "--llmgate-candidate=py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*exp/templates/py.yaml:{line}: {problem}"])
    result.stdout.no_fnmatch_line("*Traceback*")


# --- the templates folder and its artifacts ----------------------------------------------------------------------


@pytest.mark.parametrize("named", [True, False])
def test_a_templates_path_that_is_a_file_is_a_clean_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, named: bool
) -> None:
    import shutil

    directory = make_experiment("exp")
    if named:
        with (directory / "llmgate.yaml").open("a") as manifest:
            manifest.write("templates: tpl\n")
    shutil.rmtree(directory / "templates")
    (directory / ("tpl" if named else "templates")).write_text("a file where the templates folder should be\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    where = "exp/llmgate.yaml:7" if named else "exp/llmgate.yaml"
    result.stdout.fnmatch_lines([f"*{where}: templates folder '{'tpl' if named else 'templates'}' is not a folder*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_templates_folder_that_cannot_be_listed_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llmgate.records.experiment import load_experiment

    directory = tmp_path / "exp"
    write_yaml(directory / "llmgate.yaml", {"experiment": "exp", "policy_id": "p", "evidence_version": "e",
                                            "evaluator_version": "v", "suites": {"main": "main.suite.yaml"}})
    write_yaml(directory / "main.suite.yaml", {"cases": [case("c1", "log", "SERVE")]})
    (directory / "templates").mkdir()
    real_iterdir = Path.iterdir

    def refused(self: Path):  # type: ignore[no-untyped-def]
        if self.name == "templates":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refused)
    with pytest.raises(ManifestError) as info:
        load_experiment(directory)
    assert str(info.value).endswith("llmgate.yaml: templates folder 'templates' cannot be listed: Permission denied")


def test_a_template_linking_outside_the_experiment_is_refused(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    write_yaml(pytester.path / "outside" / "evil.yaml",
               {"template_id": "evil", "provider": "evidence_policy", "serve_evidence": "*"})
    (directory / "templates" / "evil.yaml").symlink_to(Path("..", "..", "outside", "evil.yaml"))
    inside = directory / "shared.yaml"
    write_yaml(inside, {"template_id": "linked", "provider": "evidence_policy", "serve_evidence": ["log"]})
    (directory / "templates" / "linked.yaml").symlink_to(Path("..", "shared.yaml"))  # inside: still fine

    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/evil.yaml: is a link to '../../outside/evil.yaml', which leaves "
                                 "the experiment directory*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    (directory / "templates" / "evil.yaml").unlink()
    pytester.runpytest("exp", "--llmgate-candidate=linked").assert_outcomes(passed=2 + 1)  # + its run item
