"""The canary rule (SPEC §5.3): continue while no unsafe claim is observed, else roll back to the recorded artifact."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pytest_llmgate.model.errors import RecordError
from pytest_llmgate.model.vocab import CanaryVerdict


class CanaryCall(msgspec.Struct, frozen=True, kw_only=True):
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

