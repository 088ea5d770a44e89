"""Provider ``evidence_policy``: deterministic, SERVE when the case's evidence state is in ``serve_evidence``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.errors import CandidateError
from pytest_llmgate.model.vocab import Route
from pytest_llmgate.providers import FactoryDefaults, FreePrompt, ProviderContext, ProviderDefaults
from pytest_llmgate.records.candidate import Candidate, CandidateSettings

#: Why ``trials:`` is refused in an ``evidence_policy`` artifact (``--llmgate-trials`` is noted, not refused).
DETERMINISTIC = ("evidence_policy is deterministic (every trial gives the same route), so trials do not apply; "
                 "remove the key (a python or LLM candidate can be asked several times)")

_EvidenceState = Annotated[str, Meta(min_length=1)]


class EvidencePolicySettings(CandidateSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An ``evidence_policy`` artifact: SERVE when the case's evidence state is in ``serve_evidence``, else
    ABSTAIN. Deterministic: ``trials`` is refused."""

    refused_keys: ClassVar[Mapping[str, str]] = {"trials": DETERMINISTIC}

    provider: Annotated[Literal["evidence_policy"], Meta(description="The provider: evidence_policy.")]
    serve_evidence: Annotated[Literal["*"] | Annotated[list[_EvidenceState], Meta(extra_json_schema={"uniqueItems": True})], Meta(
        description="The evidence states served (each once), or '*' to serve every case.")]
    prompt: FreePrompt | UnsetType = UNSET


class EvidencePolicy(ProviderDefaults):
    """SERVE when the case's evidence state is in the served set (``*``: all), else ABSTAIN."""

    __slots__ = ("_serve",)
    trials = 1
    concurrent = False
    bounded = True  # a set lookup: answered in the caller's thread, with no timeout watchdog

    def __init__(self, serve_evidence: str | list[str]) -> None:
        self._serve: frozenset[str] | None = None if serve_evidence == "*" else frozenset(serve_evidence)

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        if self._serve is None or case["evidence_state"] in self._serve:
            return Route.SERVE
        return Route.ABSTAIN


class EvidencePolicyFactory(FactoryDefaults):
    """The ``evidence_policy`` settings: ``serve_evidence`` (a list of evidence states, or ``"*"``) and a prompt."""

    name = "evidence_policy"
    #: Asked once per case whatever ``--llmgate-trials`` says (the session notes it in its header).
    deterministic = True
    settings = EvidencePolicySettings

    def check(self, candidate: Candidate) -> None:
        """An evidence state listed twice is a slip (the Struct's list cannot say "each once")."""
        served = candidate.settings["serve_evidence"]
        if isinstance(served, list):
            for index, state in enumerate(served):
                if state in served[:index]:
                    raise CandidateError(candidate.path, candidate.document.line_of(["serve_evidence", index]),
                                         f"serve_evidence: {state!r} is listed twice")

    def build(self, candidate: Candidate, context: ProviderContext) -> EvidencePolicy:
        return EvidencePolicy(candidate.settings["serve_evidence"])

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        return {}


FACTORY = EvidencePolicyFactory()
