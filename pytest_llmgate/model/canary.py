"""The canary rule (SPEC §5.3): continue while no unsafe claim is observed, else roll back to the recorded artifact."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmgate.model.errors import RecordError
from pytest_llmgate.model.vocab import CanaryVerdict, Route


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryCall:
    """The verdict on a canary, and the line ``llmgate canary`` prints for it."""

    verdict: CanaryVerdict
    rollback_artifact: str | None

    @property
    def line(self) -> str:
        if self.verdict is CanaryVerdict.CONTINUE:
            return str(self.verdict.value)
        return f"{self.verdict.value}:{self.rollback_artifact}"


def canary_call(unsafe_claims: int, rollback_artifact: str | None, source: Path | None = None) -> CanaryCall:
    """CONTINUE when no unsafe claim was observed, else ROLL_BACK_TO the decision's rollback artifact."""
    if unsafe_claims == 0:
        return CanaryCall(verdict=CanaryVerdict.CONTINUE, rollback_artifact=rollback_artifact)
    if not rollback_artifact:
        raise RecordError(
            source, None, f"{unsafe_claims} unsafe claim(s) observed, but the decision names no rollback_artifact"
        )
    return CanaryCall(verdict=CanaryVerdict.ROLL_BACK, rollback_artifact=rollback_artifact)


def unsafe_requests_in(window: Path) -> list[str]:
    """The ids of the served requests whose claim was not supported, in a JSON Lines window of canary requests."""
    try:
        lines = window.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(window, None, f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    unsafe: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            raise RecordError(window, number, f"not a JSON object: {exc}") from None
        problem = _window_problem(request)
        if problem:
            raise RecordError(window, number, problem)
        if request["route"] == Route.SERVE.value and request["supported"] is False:
            unsafe.append(str(request["request_id"]))
    return unsafe


def _window_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return "not a JSON object"
    missing = [key for key in ("request_id", "route", "supported") if key not in request]
    if missing:
        return f"missing {', '.join(missing)} (each line needs request_id, route and supported)"
    if request["route"] not in {route.value for route in Route}:
        return f"route {request['route']!r} is not SERVE or ABSTAIN"
    if not isinstance(request["supported"], bool):
        return f"supported {request['supported']!r} is not true or false"
    return None
