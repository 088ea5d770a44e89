"""Provider ``evidence_policy``: deterministic, SERVE when the case's evidence state is in ``serve_evidence``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._candidate import Candidate
from .._errors import CandidateError
from .._vocab import Route
from . import PROMPT_ANY, ProviderContext


#: Why ``trials:`` is refused in an ``evidence_policy`` artifact (``--llmgate-trials`` is noted, not refused).
DETERMINISTIC = ("trials: evidence_policy is deterministic (every trial gives the same route), so trials do not "
                 "apply; remove the key (a python or LLM candidate can be asked several times)")


class EvidencePolicy:
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


class EvidencePolicyFactory:
    """The ``evidence_policy`` settings: ``serve_evidence`` (a list of evidence states, or ``"*"``) and a prompt."""

    name = "evidence_policy"
    #: Asked once per case whatever ``--llmgate-trials`` says (the session notes it in its header).
    deterministic = True
    settings_schema: Mapping[str, Any] = {
        "required": ["serve_evidence"],
        "properties": {
            "serve_evidence": {"oneOf": [
                {"const": "*"},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
            ]},
            "prompt": PROMPT_ANY,
            "trials": {"x-refused": True, "description": "Refused with a reason: the policy is deterministic."},
        },
    }

    def check(self, candidate: Candidate) -> None:
        if "trials" in candidate.settings:
            raise CandidateError(candidate.path, candidate.line_of("trials"), DETERMINISTIC)

    def build(self, candidate: Candidate, context: ProviderContext) -> EvidencePolicy:
        return EvidencePolicy(candidate.settings["serve_evidence"])

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        return {}


FACTORY = EvidencePolicyFactory()
