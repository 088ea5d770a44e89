"""Names and defaults the light pytest entry point needs before any gate is loaded (nothing heavy to import)."""

from __future__ import annotations

#: An experiment directory holds this manifest.
MANIFEST_NAME = "llmgate.yaml"
#: Suite files, in YAML or JSON Lines.
SUITE_SUFFIXES = (".suite.yaml", ".suite.jsonl")
#: The records folder under the rootdir (pytest) or the working directory (``llmgate``), unless told otherwise.
DEFAULT_DIR = ".llmgate"
#: LLM calls of a candidate in flight at once.
DEFAULT_CONCURRENCY = 8
#: The most trials a case may be asked (an artifact's ``trials``, ``--llmgate-trials``): each trial is kept.
MAX_TRIALS = 10_000
#: How many ids a one-line message names at most.
SHOWN = 5
