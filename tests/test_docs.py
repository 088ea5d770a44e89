"""The README and docs/*.md as a user reads them: every fenced YAML and shell block runs, or says why not.

What the markers mean (docs/README.md says it for writers): the HTML comment on the line before a fence
- ``<!-- illustrative: REASON -->``: not run (a reason is required);
- ``<!-- checked by test_NAME -->``: run by that test of this file;
- ``<!-- file: PATH -->``: the block is written to PATH in the sandbox before the page's commands run;
- ``<!-- output -->``: an untagged block, the end of what the shell block before it prints.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llmgate import ManifestError, load_candidate, load_experiment, load_suite
from pytest_llmgate.engine.judging import check_evaluator
from pytest_llmgate.providers import builtin_factory, check_settings
from pytest_llmgate.records.evaluator import load_calibration_set
from pytest_llmgate.records.experiment import Manifest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_suites"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
YAML = {"yaml", "yml"}
SHELL = {"sh", "shell", "bash", "console"}
ILLUSTRATIVE = re.compile(r"<!--\s*illustrative:\s*(?P<reason>\S.*?)\s*-->")
CHECKED_BY = re.compile(r"<!--\s*checked by (?P<test>test_\w+)\s*-->")
FILE = re.compile(r"<!--\s*file:\s*(?P<path>\S+)\s*-->")
OUTPUT = re.compile(r"<!--\s*output\s*-->")
#: Parts of a command that set up the environment these tests already run in.
SETUP = re.compile(r"^(python3? -m venv |(\.|source) \.venv[\w-]*/bin/activate$|pip install )")
ELLIPSIS = re.compile(r"(?<!\.)\.\.\.(?!\.)")  # "...", not a run of pytest's progress dots
RUN_ID = re.compile(r"\b\d{8}T\d{12}Z(?:-[0-9a-f]{8})?\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str  # the line before the fence

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def illustrative(self) -> bool:
        return ILLUSTRATIVE.search(self.marker) is not None or CHECKED_BY.search(self.marker) is not None


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = re.match(r"^\s*(`{3,}|~{3,})\s*([\w-]*)", lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(opening.group(1)):
            end += 1
        found.append(Block(page, index + 1, opening.group(2).lower(), "\n".join(lines[index + 1:end]) + "\n",
                           lines[index - 1] if index else ""))
        index = end + 1
    return found


ALL = [block for page in PAGES for block in blocks(page)]


def test_the_pages_have_blocks() -> None:
    """The walk finds the pages (new pages of docs/ included) and their blocks."""
    assert {page.name for page in PAGES} >= {"README.md", "loop.md", "providers.md", "cli.md"}
    assert sum(block.lang in YAML for block in ALL) >= 15 and sum(block.lang in SHELL for block in ALL) >= 5


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_markers_are_well_formed(page: Path) -> None:
    """A marker sits right before a fence and says what it must: a reason, an existing test, a path."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("<!--") or not re.search(r"illustrative|checked by|file:|output", line):
            continue
        assert ILLUSTRATIVE.search(line) or CHECKED_BY.search(line) or FILE.search(line) or OUTPUT.search(line), (
            f"{page.name}:{number}: a malformed marker {line!r} (illustrative needs ': REASON')")
        assert number < len(lines) and re.match(r"^\s*(```|~~~)", lines[number]), (
            f"{page.name}:{number}: a marker must be the line right before a fence")
        checked = CHECKED_BY.search(line)
        assert checked is None or callable(globals().get(checked.group("test"))), (
            f"{page.name}:{number}: no test {checked.group('test') if checked else ''} in tests/test_docs.py")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_pages_stay_inside_the_repository(page: Path) -> None:
    """A page never sends the reader to a file outside the repository (the project's contract is not theirs)."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\bSPEC\b|shared folder", text), f"{page.name} names SPEC or the shared folder"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        path = (page.parent / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{page.name}: link to {target!r} leads nowhere"


def test_readme_names_every_core_dependency() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    core = re.search(r"The core needs\s+only (.*?);", text, re.S)
    assert core is not None
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    dependencies = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.S | re.M)
    assert dependencies is not None
    for name in re.findall(r'"([A-Za-z0-9_-]+)', dependencies.group(1)):
        assert name.lower() in core.group(1).lower(), f"README's core dependencies lack {name}"


# YAML blocks ----------------------------------------------------------------------------------------------------

def _example_artifact(provider: str) -> Path:
    for path in sorted(EXAMPLES.glob("*/templates/*.yaml")):
        if yaml.safe_load(path.read_text(encoding="utf-8")).get("provider") == provider:
            return path
    raise AssertionError(f"no example artifact of provider {provider!r} to check an excerpt against")


def _check_artifact(data: dict[str, Any], text: str | None, tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    path = experiment / "templates" / f"{data['template_id']}.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text if text is not None else yaml.safe_dump(data), encoding="utf-8")
    candidate = load_candidate(path, experiment)
    factory = builtin_factory(candidate.provider)
    assert factory is not None, f"provider {candidate.provider!r} is not built in"
    check_settings(candidate, factory)


def _check_manifest(data: dict[str, Any], text: str | None, tmp_path: Path) -> None:
    experiment = tmp_path / "exp"
    # a manifest naming an evaluator is checked in the example that has one (docs/evaluators.md)
    shutil.copytree(EXAMPLES / ("ci-claim-gate-prose" if "evaluator" in data else "ci-claim-gate-repair"), experiment)
    (experiment / "llmgate.yaml").write_text(text if text is not None else yaml.safe_dump(data), encoding="utf-8")
    load_experiment(experiment)


def _check_evaluator(data: dict[str, Any], text: str, tmp_path: Path) -> None:
    """An evaluator file, loaded as the prose example's evaluator (a judge's keys checked by its provider)."""
    experiment = tmp_path / "exp"
    shutil.copytree(EXAMPLES / "ci-claim-gate-prose", experiment)
    (experiment / "evaluators" / f"{data['evaluator_id']}.yaml").write_text(text, encoding="utf-8")
    manifest = experiment / "llmgate.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("claim-judge-v1.yaml", f"{data['evaluator_id']}.yaml"))
    loaded = load_experiment(experiment)
    assert loaded.evaluator is not None and loaded.evaluator.evaluator_id == data["evaluator_id"]

    def factory_of(candidate: Any) -> Any:
        factory = builtin_factory(candidate.provider)
        assert factory is not None, f"provider {candidate.provider!r} is not built in"
        return factory

    check_evaluator(loaded.evaluator, factory_of)


YAML_BLOCKS = [block for block in ALL if block.lang in YAML and not block.illustrative]


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda block: block.where)
def test_yaml_block(block: Block, tmp_path: Path) -> None:
    """Parsed; an artifact, a manifest or a suite (or an excerpt of one) is loaded by the package's loaders.

    An excerpt (an artifact without ``template_id``, a manifest's keys alone) is checked merged over the example's
    artifact of that provider or its manifest. Other YAML (a CI workflow) is only parsed."""
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{block.where}: not valid YAML: {exc}")
    if not isinstance(data, dict):
        return
    if "evaluator_id" in data:
        _check_evaluator(data, block.text, tmp_path)
    elif "template_id" in data and "provider" in data:
        _check_artifact(data, block.text, tmp_path)
    elif "provider" in data:
        example = yaml.safe_load(_example_artifact(data["provider"]).read_text(encoding="utf-8"))
        _check_artifact({**example, **data}, None, tmp_path)
    elif "experiment" in data:
        _check_manifest(data, block.text, tmp_path)
    elif "cases" in data and any("label" in item for item in data["cases"]):
        path = tmp_path / "calibration.suite.yaml"
        path.write_text(block.text, encoding="utf-8")
        load_calibration_set(path)
    elif "cases" in data:
        path = tmp_path / "doc.suite.yaml"
        path.write_text(block.text, encoding="utf-8")
        load_suite("doc", path)
    elif set(data) <= set(Manifest.__struct_fields__):
        manifest = yaml.safe_load((EXAMPLES / "ci-claim-gate-repair" / "llmgate.yaml").read_text(encoding="utf-8"))
        _check_manifest({**manifest, **data}, None, tmp_path)


def test_yaml_checks_refuse_a_bad_block(tmp_path: Path) -> None:
    """The checks above are real: a manifest excerpt with a wrong key is refused by the loader."""
    manifest = yaml.safe_load((EXAMPLES / "ci-claim-gate-repair" / "llmgate.yaml").read_text(encoding="utf-8"))
    with pytest.raises(ManifestError, match="max_cost_per_case"):
        _check_manifest({**manifest, "budget": {"max_cost_per_case": 1}}, None, tmp_path)


# Shell blocks ---------------------------------------------------------------------------------------------------

def _environment() -> dict[str, str]:
    """This interpreter's scripts first on PATH; nothing of the outer pytest session or of a signing key; pytest's
    own order, as the documented output shows it, whatever shuffler is installed."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST_", "LLMGATE_", "GITHUB_", "MLFLOW_", "WANDB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTEST_ADDOPTS"] = "-p no:randomly"
    return env


def _sandbox(page: Path, tmp_path: Path) -> Path:
    """A copy of the repository's examples, plus the page's ``<!-- file: PATH -->`` blocks."""
    shutil.copytree(EXAMPLES, tmp_path / "example_suites")
    for block in blocks(page):
        written = FILE.search(block.marker)
        if written is not None:
            target = tmp_path / written.group("path")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
    return tmp_path


def commands(text: str) -> Iterator[str]:
    """The commands of a shell block: continued lines joined, comments and environment set-up left out."""
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(" && ")]
        kept = [part for part in parts if not SETUP.match(part)]
        if kept:
            yield " && ".join(kept)


def _with_run_ids(command: str, block: Block, sandbox: Path) -> str:
    """Run ids in a command stand for the sandbox's runs: the n-th id of the block (sorted) is the n-th run."""
    if RUN_ID.search(command) is None:
        return command
    written = sorted({match.group(0) for line in commands(block.text) for match in RUN_ID.finditer(line)})
    runs = sorted(path.stem for path in (sandbox / ".llmgate" / "runs").glob("*.json"))
    assert len(runs) >= len(written), f"{block.where}: names {len(written)} runs; the commands before made {len(runs)}"
    return RUN_ID.sub(lambda match: runs[written.index(match.group(0))], command)


def _assert_output(expected: Block, stdout: str, command: str) -> None:
    """The lines of ``expected`` are consecutive lines of ``stdout`` (trailing blanks aside): ``...`` in a line
    (not four dots or more) matches any text, a line of ``...`` alone any lines, and a run id any run id."""
    parts = []
    for wanted in expected.text.rstrip("\n").splitlines():
        if wanted.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        tokens = re.split(f"({ELLIPSIS.pattern}|{RUN_ID.pattern})", wanted.rstrip())
        parts.append("".join("[^\n]*" if ELLIPSIS.fullmatch(token) else RUN_ID.pattern if RUN_ID.fullmatch(token)
                             else re.escape(token) for token in tokens) + "\n")
    printed = "".join(line.rstrip() + "\n" for line in stdout.splitlines())
    assert re.search("(?m)^" + "".join(parts), printed), (
        f"{expected.where}: the output of {command!r} does not hold these lines together:\n{expected.text}\n"
        f"It printed:\n{stdout}")


SHELL_PAGES = [page for page in PAGES if any(b.lang in SHELL and not b.illustrative for b in blocks(page))]


@pytest.mark.slow
@pytest.mark.parametrize("page", SHELL_PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_shell_blocks(page: Path, tmp_path: Path) -> None:
    """A page's shell commands, in order, in a sandbox (a copy of the examples and the page's files): each exits 0
    or 1 (1: a gate that rejects, a canary to roll back), never a usage or input error; an ``output`` block after
    a shell block is what its last command prints."""
    sandbox = _sandbox(page, tmp_path)
    env = _environment()
    page_blocks = blocks(page)
    for index, block in enumerate(page_blocks):
        if block.lang not in SHELL or block.illustrative:
            continue
        ran, last = "", ""
        for command in commands(block.text):
            command = _with_run_ids(command, block, sandbox)
            result = subprocess.run(["bash", "-c", command], cwd=sandbox, env=env, capture_output=True, text=True,
                                    timeout=120, stdin=subprocess.DEVNULL)
            assert result.returncode in (0, 1), (
                f"{block.where}: {command!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
            assert "Traceback" not in result.stdout + result.stderr, f"{block.where}: {command!r}:\n{result.stderr}"
            ran = result.stdout
            last = command
        following = page_blocks[index + 1] if index + 1 < len(page_blocks) else None
        if following is not None and OUTPUT.search(following.marker):
            _assert_output(following, ran, last)


def test_output_blocks_follow_a_checked_command() -> None:
    """An ``output`` block is checked: the block before it is a shell block that runs."""
    for page in PAGES:
        page_blocks = blocks(page)
        for before, block in zip(page_blocks, page_blocks[1:], strict=False):
            if OUTPUT.search(block.marker):
                assert before.lang in SHELL and not before.illustrative, f"{block.where}: no command before it runs"


def test_output_check_is_real() -> None:
    expected = Block(ROOT / "README.md", 1, "", "a\n  fingerprints: ...\nsource run 20261127T170102514022Z-0c1d2e3f\n",
                     "<!-- output -->")
    _assert_output(expected, "x\na\n  fingerprints: r 1\nsource run 20261205T062742369670Z-dedfefef\n", "cmd")
    with pytest.raises(AssertionError, match="does not hold these lines together"):
        _assert_output(expected, "a\n  fingerprints: r 1\nmissing from the doc\nsource run 20261205T062742369670Z-dedfefef\n", "cmd")


# The local loop --------------------------------------------------------------------------------------------------

def _wait_for(path: Path, count: int, seconds: float, proc: subprocess.Popen[bytes]) -> str:
    """Wait until the watcher's output shows ``count`` finished pytest sessions."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(re.findall(r"^=+ .*\b(passed|failed|error|errors|no tests ran)\b.* in [\d.]+s", text, re.M)) >= count:
            return text
        assert proc.poll() is None, f"the watcher exited {proc.returncode}:\n{text}"
        time.sleep(0.2)
    raise AssertionError(f"no {count} session(s) within {seconds} s; the watcher printed:\n{text}")


@pytest.mark.slow
def test_loop_watcher_reruns_on_save(tmp_path: Path) -> None:
    """docs/loop.md's watcher command, as written there, run with the experiment in a subfolder of the project:
    it runs once at start and again when a template is saved."""
    (block,) = [b for b in blocks(ROOT / "docs" / "loop.md") if CHECKED_BY.search(b.marker)]
    (command,) = [line for line in commands(block.text) if line.startswith("ptw ")]
    watcher = shutil.which("ptw", path=str(Path(sys.executable).parent))
    assert watcher is not None, "pytest-watcher is in the test extra"
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES, project / "example_suites")
    template = project / "example_suites" / "ci-claim-gate-llm" / "templates" / "ci-answerer-llm-v2.yaml"
    log = tmp_path / "watcher.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([watcher, *shlex.split(command)[1:]], cwd=project, env=_environment(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(log, 1, 30, proc)
        time.sleep(0.5)
        template.write_text(template.read_text(encoding="utf-8") + "# saved while editing\n", encoding="utf-8")
        text = _wait_for(log, 2, 30, proc)
        assert "ci-answerer-llm-v2.yaml" in text  # the watcher names the save it reacted to
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
