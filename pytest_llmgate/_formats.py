"""The formats the gate writes, by the name of their shipped schema file, generated from their one definition.

``python -m pytest_llmgate._formats`` rewrites ``schemas/<name>.schema.json`` for each; a test fails when a
shipped file differs from what its definition generates.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._codec import json_schema
from ._evaluate import CaseResult
from ._lock import Lock
from ._record import RedactedEval, RunRecord
from ._report import SessionReport
from ._schemas import schema_path
from .providers._recordings import RecordingLine

#: Schema file name -> the type that defines the format.
FORMATS: dict[str, type[Any]] = {
    "run": RunRecord,
    "redacted-eval": RedactedEval,
    "report": SessionReport,
    "lock": Lock,
    "result": CaseResult,
    "recording": RecordingLine,
}


def schema_text(name: str) -> str:
    """The text of ``schemas/<name>.schema.json`` as the definition generates it."""
    return json.dumps(json_schema(FORMATS[name]), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    for name in FORMATS:
        schema_path(name).write_text(schema_text(name), encoding="utf-8")
        print(f"wrote {schema_path(name)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
