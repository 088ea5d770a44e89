"""Every file format the gate reads or writes, by the name of its shipped schema file, generated from its one
definition. ``python -m pytest_llmgate.cli.schemas`` rewrites ``schemas/<name>.schema.json`` for each; a test fails
when a shipped file differs from what its definition generates."""

from __future__ import annotations

import json
import sys
from typing import Any

from pytest_llmgate.io.lock import Lock
from pytest_llmgate.model.decision import Decision
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.providers import BUILTIN, builtin_factory
from pytest_llmgate.providers.recordings import RecordingLine
from pytest_llmgate.records.canary_window import CanaryRequest
from pytest_llmgate.records.candidate import CandidateSettings
from pytest_llmgate.records.codec import json_schema
from pytest_llmgate.records.evaluator import CalibrationFile, CalibrationResult, PythonEvaluatorFile, RouteEvaluatorFile
from pytest_llmgate.records.experiment import Manifest
from pytest_llmgate.records.replies import SavedReplies
from pytest_llmgate.records.report import SessionReport
from pytest_llmgate.records.run import RedactedEval, RunRecord
from pytest_llmgate.records.schemas import schema_path
from pytest_llmgate.records.suite import SuiteFile

#: Schema file name -> the type that defines the format (``candidate-<provider>``: each built-in provider's
#: artifact, the common keys included).
FORMATS: dict[str, type[Any]] = {
    "manifest": Manifest,
    "suite": SuiteFile,
    "candidate": CandidateSettings,
    **{f"candidate-{name}": factory.settings for name in BUILTIN if (factory := builtin_factory(name)) is not None},
    "run": RunRecord,
    "redacted-eval": RedactedEval,
    "report": SessionReport,
    "decision": Decision,
    "lock": Lock,
    "result": CaseResult,
    "recording": RecordingLine,
    "evaluator-route": RouteEvaluatorFile,
    "evaluator-python": PythonEvaluatorFile,
    "calibration-set": CalibrationFile,
    "calibration": CalibrationResult,
    "replies": SavedReplies,
    "canary-window": CanaryRequest,
}


def schema_text(name: str) -> str:
    """The text of ``schemas/<name>.schema.json`` as the definition generates it."""
    return json.dumps(json_schema(FORMATS[name]), indent=2, ensure_ascii=False) + "\n"


def write_all() -> int:
    for name in FORMATS:
        schema_path(name).write_text(schema_text(name), encoding="utf-8")
        print(f"wrote {schema_path(name)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(write_all())
