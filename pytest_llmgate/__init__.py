"""pytest-llmgate: gate a changed LLM artifact on frozen suites, with guardrails, records and a verdict."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it. Nothing is imported until a name is used (PEP 562), so that
#: ``import pytest_llmgate._plugin`` (pytest's entry point, on every pytest run) does not load the core.
_LAZY: dict[str, str] = {
    "Candidate": "_candidate",
    "CandidateError": "_errors",
    "CandidateSettings": "_candidate",
    "Case": "_suite",
    "CaseResult": "_evaluate",
    "ComparabilityIssue": "_decision",
    "Decision": "_decision",
    "DecisionStatus": "_vocab",
    "Experiment": "_experiment",
    "ExportError": "_errors",
    "GuardrailViolation": "_errors",
    "LlmgateError": "_errors",
    "ManifestError": "_errors",
    "Metrics": "_record",
    "Outcome": "_vocab",
    "Promotion": "_experiment",
    "ProviderError": "_errors",
    "RecordError": "_errors",
    "Role": "_vocab",
    "Route": "_vocab",
    "RunRecord": "_record",
    "RunStatus": "_vocab",
    "SelectionError": "_errors",
    "Suite": "_suite",
    "SuiteError": "_errors",
    "Verdict": "_decision",
    "build_run_record": "_record",
    "canonical_json": "_fingerprint",
    "check_json": "_schemas",
    "comparability_issues": "_decision",
    "decide": "_decision",
    "fingerprint": "_fingerprint",
    "judge": "_evaluate",
    "load_candidate": "_candidate",
    "load_experiment": "_experiment",
    "load_suite": "_suite",
    "run_status": "_record",
    "schema_path": "_schemas",
    "short": "_fingerprint",
}

if TYPE_CHECKING:
    from ._candidate import Candidate, CandidateSettings, load_candidate
    from ._decision import ComparabilityIssue, Decision, Verdict, comparability_issues, decide
    from ._errors import CandidateError, ExportError, GuardrailViolation, LlmgateError, ManifestError, ProviderError, RecordError, SelectionError, SuiteError
    from ._evaluate import CaseResult, judge
    from ._experiment import Experiment, Promotion, load_experiment
    from ._fingerprint import canonical_json, fingerprint, short
    from ._record import Metrics, RunRecord, build_run_record, run_status
    from ._schemas import check_json, schema_path
    from ._suite import Case, Suite, load_suite
    from ._vocab import DecisionStatus, Outcome, Role, Route, RunStatus

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
        from ._provenance import llmgate_version

        found: Any = llmgate_version()
    elif name in _LAZY:
        found = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = found
    return found


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
