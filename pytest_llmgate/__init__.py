"""pytest-llmgate: gate a changed LLM artifact on frozen suites, with guardrails, records and a verdict."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Module -> the public names it defines. Nothing is imported until a name is used (PEP 562), so that
#: ``import pytest_llmgate.plugin.entry`` (pytest's entry point, on every pytest run) does not load the core. The
#: imports below say the same to type checkers (``X as X``), as does ``__all__``; a test keeps the three alike.
_PUBLIC: dict[str, tuple[str, ...]] = {
    "model.case": ("Case",),
    "model.decision": ("ComparabilityIssue", "Decision", "Promotion", "Verdict", "comparability_issues", "decide"),
    "model.errors": ("CandidateError", "ExportError", "GuardrailViolation", "LlmgateError", "ManifestError",
                     "ProviderError", "RecordError", "SelectionError", "SuiteError"),
    "model.evaluate": ("CaseResult", "judge"),
    "model.fingerprint": ("canonical_json", "fingerprint", "short"),
    "model.vocab": ("DecisionStatus", "Outcome", "Role", "Route", "RunStatus"),
    "records.candidate": ("Candidate", "CandidateSettings", "load_candidate"),
    "records.experiment": ("Experiment", "load_experiment"),
    "records.run": ("Metrics", "RunRecord", "build_run_record", "run_status"),
    "records.schemas": ("check_json", "schema_path"),
    "records.suite": ("Suite", "load_suite"),
}
_LAZY = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = [  # written out: type checkers read only a literal list (a test keeps it to _PUBLIC)
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

if TYPE_CHECKING:
    from pytest_llmgate.model.case import Case as Case
    from pytest_llmgate.model.decision import (
        ComparabilityIssue as ComparabilityIssue,
        Decision as Decision,
        Promotion as Promotion,
        Verdict as Verdict,
        comparability_issues as comparability_issues,
        decide as decide,
    )
    from pytest_llmgate.model.errors import (
        CandidateError as CandidateError,
        ExportError as ExportError,
        GuardrailViolation as GuardrailViolation,
        LlmgateError as LlmgateError,
        ManifestError as ManifestError,
        ProviderError as ProviderError,
        RecordError as RecordError,
        SelectionError as SelectionError,
        SuiteError as SuiteError,
    )
    from pytest_llmgate.model.evaluate import CaseResult as CaseResult, judge as judge
    from pytest_llmgate.model.fingerprint import (
        canonical_json as canonical_json,
        fingerprint as fingerprint,
        short as short,
    )
    from pytest_llmgate.model.vocab import (
        DecisionStatus as DecisionStatus,
        Outcome as Outcome,
        Role as Role,
        Route as Route,
        RunStatus as RunStatus,
    )
    from pytest_llmgate.records.candidate import (
        Candidate as Candidate,
        CandidateSettings as CandidateSettings,
        load_candidate as load_candidate,
    )
    from pytest_llmgate.records.experiment import Experiment as Experiment, load_experiment as load_experiment
    from pytest_llmgate.records.run import (
        Metrics as Metrics,
        RunRecord as RunRecord,
        build_run_record as build_run_record,
        run_status as run_status,
    )
    from pytest_llmgate.records.schemas import check_json as check_json, schema_path as schema_path
    from pytest_llmgate.records.suite import Suite as Suite, load_suite as load_suite

    __version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from pytest_llmgate.io.provenance import llmgate_version

        return llmgate_version()
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Looked up on each use, not kept: a module imported again (pytester's inline runs drop the modules a run
    # imported) must give its own class, the one the gate checks for.
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
