"""Providers as plugins: a conftest.py adds one through pytest_llmgate_make_provider and gates with it."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MakeExperiment, case, read_report, runs_by_template

KEYWORD_CONFTEST = '''
import json
from typing import Annotated

import msgspec

from pytest_llmgate import CandidateSettings, ProviderError, Route


class NoInput(ProviderError):
    """The case has no input to look in."""


class Keyword:
    """SERVE when the word appears in the case's input."""

    trials = 1
    concurrent = False

    def __init__(self, word):
        self.word = word

    def route(self, case, trial=0):
        if "input" not in case:
            raise NoInput(f"case {case['case_id']} has no input to look for {self.word!r} in")
        return Route.SERVE if self.word in json.dumps(case["input"]) else Route.ABSTAIN


class KeywordSettings(CandidateSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    word: Annotated[str, msgspec.Meta(min_length=1, description="The word to look for in the input.")]


class KeywordFactory:
    name = "keyword"
    settings = KeywordSettings

    def check(self, candidate):
        pass

    def build(self, candidate, context):
        return Keyword(candidate.settings["word"])

    def params(self, candidate, context):
        return {"word": candidate.settings["word"]}


def pytest_llmgate_make_provider(config, name):
    return KeywordFactory() if name == "keyword" else None
'''

CASES = [
    case("c1", "log", "SERVE", input={"question": "the stack trace says KeyError"}),
    case("c2", "none", "ABSTAIN", input={"question": "why is it red?"}),
    case("c3", "log", "SERVE", input={"question": "a stack trace and a log"}),
]


@pytest.fixture
def keyword_experiment(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    pytester.makeconftest(KEYWORD_CONFTEST)
    make_experiment("exp", suites={"main": CASES}, templates={
        "kw-trace": {"provider": "keyword", "word": "stack trace"},
        "kw-log": {"provider": "keyword", "word": "log"},
        "policy": {"provider": "evidence_policy", "serve_evidence": ["log"]},
    })


@pytest.mark.usefixtures("keyword_experiment")
def test_a_provider_from_a_conftest_gates_end_to_end(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=kw-trace", "--llmgate-candidate=kw-log",
                                "--llmgate-baseline=policy", *workers)
    # kw-log abstains on c1 ("log" is not in its input); + the 2 candidates' run items (that is not a run gate)
    result.assert_outcomes(passed=8 + 2, failed=1)
    result.stdout.fnmatch_lines(["*UNNECESSARY_ABSTENTION: kw-log abstained where the frozen label says SERVE "
                                 "on case c1*", "*decision: PROMOTE kw-trace -> canary_candidate*"])
    runs = runs_by_template(pytester.path / ".llmgate")
    assert runs["kw-trace"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert runs["kw-trace"]["params"]["provider"] == "keyword" and runs["kw-trace"]["params"]["word"] == "stack trace"
    assert runs["kw-log"]["status"] == "REJECT_UNNECESSARY_ABSTENTION"


def test_a_run_whose_params_cannot_be_had_is_unrecorded_and_the_others_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    """As the built-in LLM providers do when a run's recordings left the experiment after its cases ran: that run
    is not recorded (its candidate's run item fails INCOMPLETE_EVALUATION), and every other record and the report
    are written."""
    pytester.makeconftest(KEYWORD_CONFTEST.replace(
        '        return {"word": candidate.settings["word"]}',
        '        if candidate.settings["word"] == "log":\n'
        '            from pytest_llmgate import RecordError\n'
        '            raise RecordError(candidate.path, None, "its recordings left the experiment")\n'
        '        return {"word": candidate.settings["word"]}'))
    make_experiment("exp", suites={"main": CASES}, templates={
        "kw-trace": {"provider": "keyword", "word": "stack trace"},
        "kw-log": {"provider": "keyword", "word": "log"},
        "policy": {"provider": "evidence_policy", "serve_evidence": ["log"]},
    })
    result = pytester.runpytest("exp", "--llmgate-candidate=kw-trace", "--llmgate-candidate=kw-log",
                                "--llmgate-baseline=policy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*kw-log: its run record could not be written: *kw-log.yaml: its recordings left "
                                 "the experiment*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert set(runs_by_template(pytester.path / ".llmgate")) == {"kw-trace", "policy"}
    report = read_report(pytester.path / ".llmgate")
    assert [run["template_id"] for run in report["experiments"][0]["runs"]] == ["policy", "kw-trace"]


def test_its_provider_error_is_a_one_line_reason(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    pytester.makeconftest(KEYWORD_CONFTEST)
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]},
                    templates={"kw": {"provider": "keyword", "word": "log"}})
    result = pytester.runpytest("exp", "--llmgate-candidate=kw", *workers)
    result.assert_outcomes(errors=1, failed=1)  # + the run item: its only case not evaluated
    result.stdout.fnmatch_lines(["*ERROR: kw on case c1 (suite main, slice s, evidence log): "
                                 "case c1 has no input to look for 'log' in"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert runs_by_template(pytester.path / ".llmgate")["kw"]["cases"][0]["error"].startswith("NoInput: ")


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ("template_id: kw\nprovider: keywords\nword: log\n", 2,
         "unknown provider 'keywords': no installed plugin provides it (built in: evidence_policy, python, "
         "openai_chat, anthropic_messages; a plugin adds one through pytest_llmgate_make_provider)"),
        ("template_id: kw\nprovider: keyword\nword: log\ncolour: blue\n", 4,
         "unknown key 'colour' (allowed: template_id, provider, description, case_timeout, word)"),
        ("template_id: kw\nprovider: keyword\nword: ''\n", 3, "word: '' should be non-empty"),
    ],
    ids=["unknown-provider", "unknown-key", "bad-setting"],
)
def test_an_unusable_artifact_names_its_file_and_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, template: str, line: int, message: str
) -> None:
    pytester.makeconftest(KEYWORD_CONFTEST)
    directory = make_experiment("exp", suites={"main": CASES}, templates={})
    (directory / "templates").mkdir(exist_ok=True)
    (directory / "templates" / "kw.yaml").write_text(template)
    result = pytester.runpytest("exp", "--llmgate-candidate=kw")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*exp/templates/kw.yaml:{line}: {message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(("declares", "problem"), [
    ('settings_schema = {"required": ["word"], "properties": {"word": {"type": "string"}}}',
     "provider 'keyword': its factory declares no settings Struct (settings_schema, a JSON-Schema fragment, is not "
     "read); a provider declares settings = a subclass of pytest_llmgate.CandidateSettings with "
     "forbid_unknown_fields=True (docs/providers.md)"),
    ("class settings(CandidateSettings, kw_only=True):\n        word: str",
     "provider 'keyword': its factory declares no settings Struct; a provider declares settings = a subclass of "
     "pytest_llmgate.CandidateSettings with forbid_unknown_fields=True (docs/providers.md)"),
], ids=["json-schema-fragment", "unknown-keys-allowed"])
def test_a_factory_without_a_settings_struct_is_an_error_naming_the_artifact(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, declares: str, problem: str
) -> None:
    """A settings declaration that would let a misspelt key through is refused, not trusted."""
    conftest = KEYWORD_CONFTEST.replace("    settings = KeywordSettings", f"    {declares}")
    assert conftest != KEYWORD_CONFTEST
    pytester.makeconftest(conftest)
    make_experiment("exp", suites={"main": CASES}, templates={"kw": {"provider": "keyword", "word": "log"}})
    result = pytester.runpytest("exp", "--llmgate-candidate=kw")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*exp/templates/kw.yaml:2: {problem}"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_every_type_the_protocols_name_is_offered_to_plugins() -> None:
    """A plugin imports what the Provider and ProviderFactory signatures name from pytest_llmgate.providers (or the
    package), never from an internal module."""
    import builtins
    import re

    import pytest_llmgate
    from pytest_llmgate import providers

    assert set(providers.__all__) <= set(dir(providers))
    named: set[str] = set()
    for protocol in (providers.Provider, providers.ProviderFactory):
        for member in vars(protocol).values():
            function = member.fget if isinstance(member, property) else member
            annotations = getattr(function, "__annotations__", {})
            named.update(re.findall(r"[A-Za-z_]\w*", " ".join(map(str, annotations.values()))))
    offered = {*providers.__all__, *pytest_llmgate.__all__, *dir(builtins), "Any", "Callable", "Mapping"}
    assert {"Usage", "TrialTranscript", "Candidate"} <= named
    assert named - offered == set()


# -- a provider that gives reply text, for an evaluator to read -------------------------------------------------

REPLYING_CONFTEST = KEYWORD_CONFTEST + '''

from pytest_llmgate.providers import Usage


class Replying(Keyword):
    """Keyword's route, said in a JSON reply (no answer, transcript or read_route of its own). Its own route() says
    the opposite: a gate that took the route from anything but the reply text would show it."""

    def route(self, case, trial=0):
        return Route.ABSTAIN if Keyword.route(self, case, trial) is Route.SERVE else Route.SERVE

    def reply(self, case, trial=0):
        said = Keyword.route(self, case, trial).value
        return json.dumps({"route": said, "verdict": said}), Usage(input_tokens=10, output_tokens=1)


class ReplyingFactory(KeywordFactory):
    name = "replying"

    def build(self, candidate, context):
        return Replying(candidate.settings["word"])


def pytest_llmgate_make_provider(config, name):
    return {"keyword": KeywordFactory, "replying": ReplyingFactory}.get(name, lambda: None)()
'''


def _replying_experiment(pytester: pytest.Pytester, make_experiment: MakeExperiment, provider: str,
                         evaluator: str) -> None:
    pytester.makeconftest(REPLYING_CONFTEST)
    directory = make_experiment("exp", suites={"main": CASES}, evaluator="evaluators/ev.yaml",
                                templates={"rp": {"provider": provider, "word": "stack trace"}})
    (directory / "evaluators").mkdir()
    (directory / "evaluators" / "ev.yaml").write_text(f"evaluator_id: ev\n{evaluator}")


def test_a_plugin_providers_reply_text_is_read_by_the_experiments_evaluator(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    _replying_experiment(pytester, make_experiment, "replying", "kind: route\nroute:\n  json_key: verdict\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=rp", *workers)
    result.assert_outcomes(passed=3 + 1)
    run = runs_by_template(pytester.path / ".llmgate")["rp"]
    assert [c["predicted_route"] for c in run["cases"]] == ["SERVE", "ABSTAIN", "SERVE"]
    assert run["params"]["evaluator_version"].startswith("v1+ev@") and run["evaluator"]["kind"] == "route"
    assert run["metrics"]["cost"]["input_tokens"] == 30  # what reply said it used


def test_a_plugin_provider_judges_with_its_reply_text_and_the_default_read_route(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    """A judge's provider without read_route reads the route key of its JSON reply."""
    _replying_experiment(pytester, make_experiment, "replying", "kind: judge\nprovider: replying\nword: stack trace\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=rp", "--llmgate-show=full")
    result.assert_outcomes(passed=3, failed=1)  # the run item: an uncalibrated judge may not gate
    run = runs_by_template(pytester.path / ".llmgate")["rp"]
    assert [c["predicted_route"] for c in run["cases"]] == ["SERVE", "ABSTAIN", "SERVE"]
    assert run["status"] == "INSUFFICIENT_EVIDENCE"
    assert (run["evaluator"]["judge_calls"], run["evaluator"]["judge_input_tokens"]) == (3, 30)


SLOW_REPLIES = """

import threading

# The first reply waits (10 s at most) until a second is in flight: with calls made one at a time it waits in vain
# once and the most in flight stays 1. No timing decides the result: only whether a second call starts.
_said, _lock, _in_flight, _second = Replying.reply, threading.Lock(), [0, 0], threading.Event()


def _waiting_reply(self, case, trial=0):
    with _lock:
        _in_flight[0] += 1
        _in_flight[1] = max(_in_flight)
        if _in_flight[0] > 1:
            _second.set()
    if not _second.wait(10):
        _second.set()  # waited in vain once: the calls are not concurrent; the others need not wait too
    with _lock:
        _in_flight[0] -= 1
        with open("most_in_flight.txt", "w") as out:
            out.write(str(_in_flight[1]))
    return _said(self, case, trial)


Replying.reply = _waiting_reply
"""


def test_a_candidate_judged_by_a_judge_is_asked_concurrently(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # protects: a judge's calls go through the session's pool (several in flight), even for a non-concurrent candidate
    _replying_experiment(pytester, make_experiment, "replying", "kind: judge\nprovider: replying\nword: stack trace\n")
    pytester.makeconftest(REPLYING_CONFTEST + SLOW_REPLIES)
    result = pytester.runpytest("exp", "--llmgate-candidate=rp", "--llmgate-concurrency=4")
    result.assert_outcomes(passed=3, failed=1)  # the run item: an uncalibrated judge may not gate
    assert int((pytester.path / "most_in_flight.txt").read_text()) > 1


MISSHAPEN_JUDGE = """

class Misshapen(Keyword):
    \"\"\"A judge that breaks the Provider contract: its answer() gives three values, not a route and a Usage.\"\"\"

    def answer(self, case, trial=0):
        return Route.SERVE, Usage(), "a third value"


class MisshapenFactory(KeywordFactory):
    name = "misshapen"

    def build(self, candidate, context):
        return Misshapen(candidate.settings["word"])


def pytest_llmgate_make_provider(config, name):
    return {"keyword": KeywordFactory, "replying": ReplyingFactory, "misshapen": MisshapenFactory}.get(
        name, lambda: None)()
"""


def test_a_judge_that_breaks_the_provider_contract_is_the_cases_error_with_a_one_line_reason(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # protects: whatever a plugin's judge gives back is read inside the judge's own error handling, so a wrong shape
    # is the case's ERROR naming the judge, never a bare exception of the gate's
    _replying_experiment(pytester, make_experiment, "replying", "kind: judge\nprovider: misshapen\nword: x\n")
    pytester.makeconftest(REPLYING_CONFTEST + MISSHAPEN_JUDGE)
    result = pytester.runpytest("exp", "--llmgate-candidate=rp")
    result.stdout.fnmatch_lines(["*ERROR: rp on case c1*judge ev raised ValueError*"])
    assert {case["outcome"] for case in runs_by_template(pytester.path / ".llmgate")["rp"]["cases"]} == {"ERROR"}


def test_a_provider_without_reply_text_cannot_be_judged(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    _replying_experiment(pytester, make_experiment, "keyword", "kind: route\nroute:\n  json_key: verdict\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=rp")
    result.stdout.fnmatch_lines(["*exp/templates/rp.yaml:2: provider 'keyword' gives no reply text for the route "
                                 "evaluator ev to read (an LLM provider does: openai_chat, anthropic_messages, or a "
                                 "plugin provider with reply(case, trial))*"])


def test_a_providers_optional_members_are_its_own_or_the_defaults() -> None:
    from pytest_llmgate import Route
    from pytest_llmgate.engine.judging import judge_calls_of
    from pytest_llmgate.providers import ProviderError, Usage, complete_provider

    class Bare:
        trials, concurrent = 1, False

        def route(self, case: object, trial: int = 0) -> Route:
            return Route.SERVE

    class Talking(Bare):
        def reply(self, case: object, trial: int = 0) -> tuple[str, Usage]:
            return "SERVE", Usage(output_tokens=1)

        def read_route(self, reply: str) -> Route:
            return Route(reply)

    bare, talking = complete_provider(Bare()), complete_provider(Talking())
    assert bare.reply is None and bare.read_route('```json\n{"route": "abstain"}\n```') is Route.ABSTAIN
    with pytest.raises(ProviderError, match="^unreadable reply: not a JSON object$"):
        bare.read_route("SERVE")
    assert talking.reply is not None and talking.reply({}, 0) == ("SERVE", Usage(output_tokens=1))
    assert talking.read_route("ABSTAIN") is Route.ABSTAIN and talking.bounded is False
    assert judge_calls_of(bare, "c1") == ()
    assert not hasattr(bare, "word")  # no passthrough of other members


def test_a_factorys_optional_members_are_its_own_or_the_defaults() -> None:
    from pytest_llmgate.providers import complete_factory

    class Bare:
        name, settings, word = "bare", None, "log"

        def check(self, candidate: object) -> None: ...

        def build(self, candidate: object, context: object) -> object: ...

        def params(self, candidate: object, context: object) -> dict[str, str]:
            return {}

    class Warm(Bare):
        deterministic = True

        def ready(self, candidate: object, context: object) -> str | None:
            return "no recordings"

    bare, warm = complete_factory(Bare()), complete_factory(Warm())
    candidate: Any = None
    bare.warm(candidate, candidate)  # the default does nothing
    assert (bare.deterministic, bare.ready(candidate, candidate)) == (False, None)
    assert (warm.deterministic, warm.ready(candidate, candidate)) == (True, "no recordings")
    assert not hasattr(bare, "word")  # no passthrough of other members
