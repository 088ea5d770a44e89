"""pytest-llmgate: gate a changed LLM artifact on frozen suites, with guardrails, records and a verdict."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it. Nothing is imported until a name is used (PEP 562), so that
#: ``import pytest_llmgate.plugin.entry`` (pytest's entry point, on every pytest run) does not load the core.
_LAZY: dict[str, str] = {
    "Candidate": "records.candidate",
    "CandidateError": "model.errors",
    "CandidateSettings": "records.candidate",
    "Case": "model.case",
    "CaseResult": "model.evaluate",
    "ComparabilityIssue": "model.decision",
    "Decision": "model.decision",
    "DecisionStatus": "model.vocab",
    "Experiment": "records.experiment",
    "ExportError": "model.errors",
    "GuardrailViolation": "model.errors",
    "LlmgateError": "model.errors",
    "ManifestError": "model.errors",
    "Metrics": "records.run",
    "Outcome": "model.vocab",
    "Promotion": "model.decision",
    "ProviderError": "model.errors",
    "RecordError": "model.errors",
    "Role": "model.vocab",
    "Route": "model.vocab",
    "RunRecord": "records.run",
    "RunStatus": "model.vocab",
    "SelectionError": "model.errors",
    "Suite": "records.suite",
    "SuiteError": "model.errors",
    "Verdict": "model.decision",
    "build_run_record": "records.run",
    "canonical_json": "model.fingerprint",
    "check_json": "records.schemas",
    "comparability_issues": "model.decision",
    "decide": "model.decision",
    "fingerprint": "model.fingerprint",
    "judge": "model.evaluate",
    "load_candidate": "records.candidate",
    "load_experiment": "records.experiment",
    "load_suite": "records.suite",
    "run_status": "records.run",
    "schema_path": "records.schemas",
    "short": "model.fingerprint",
}

if TYPE_CHECKING:
    from pytest_llmgate.model.case import Case
    from pytest_llmgate.model.decision import (
        ComparabilityIssue,
        Decision,
        Promotion,
        Verdict,
        comparability_issues,
        decide,
    )
    from pytest_llmgate.model.errors import (
        CandidateError,
        ExportError,
        GuardrailViolation,
        LlmgateError,
        ManifestError,
        ProviderError,
        RecordError,
        SelectionError,
        SuiteError,
    )
    from pytest_llmgate.model.evaluate import CaseResult, judge
    from pytest_llmgate.model.fingerprint import canonical_json, fingerprint, short
    from pytest_llmgate.model.vocab import DecisionStatus, Outcome, Role, Route, RunStatus
    from pytest_llmgate.records.candidate import Candidate, CandidateSettings, load_candidate
    from pytest_llmgate.records.experiment import Experiment, load_experiment
    from pytest_llmgate.records.run import Metrics, RunRecord, build_run_record, run_status
    from pytest_llmgate.records.schemas import check_json, schema_path
    from pytest_llmgate.records.suite import Suite, load_suite

    __version__: str

__all__ = [
    "Candidate",
    "CandidateError",
    "CandidateSettings",
    "Case",
    "CaseResult",
    "ComparabilityIssue",
    "Decision",
    "DecisionStatus",
    "Experiment",
    "ExportError",
    "GuardrailViolation",
    "LlmgateError",
    "ManifestError",
    "Metrics",
    "Outcome",
    "Promotion",
    "ProviderError",
    "RecordError",
    "Role",
    "Route",
    "RunRecord",
    "RunStatus",
    "SelectionError",
    "Suite",
    "SuiteError",
    "Verdict",
    "build_run_record",
    "canonical_json",
    "check_json",
    "comparability_issues",
    "decide",
    "fingerprint",
    "judge",
    "load_candidate",
    "load_experiment",
    "load_suite",
    "run_status",
    "schema_path",
    "short",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from pytest_llmgate.io.provenance import llmgate_version

        found: Any = llmgate_version()
    elif name in _LAZY:
        found = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
