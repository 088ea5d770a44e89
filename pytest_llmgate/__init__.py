"""pytest-llmgate: gate a changed LLM artifact on frozen suites, with guardrails, records and a verdict."""

from __future__ import annotations

from ._candidate import Candidate, load_candidate
from ._decision import ComparabilityIssue, Decision, Verdict, comparability_issues, decide
from ._errors import CandidateError, ExportError, GuardrailViolation, LlmgateError, ManifestError, ProviderError, RecordError, SelectionError, SuiteError
from ._evaluate import CaseResult, judge
from ._experiment import Experiment, Promotion, load_experiment
from ._fingerprint import canonical_json, fingerprint, short
from ._provenance import llmgate_version
from ._record import Metrics, RunRecord, build_run_record, run_status
from ._schemas import check_json, schema_path
from ._suite import Case, Suite, load_suite
from ._vocab import DecisionStatus, Outcome, Role, Route, RunStatus

__version__ = llmgate_version()

__all__ = [
    "Candidate",
    "CandidateError",
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
