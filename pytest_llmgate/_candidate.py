"""Candidate artifacts: versioned files in the experiment's templates folder, hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._errors import CandidateError
from ._schemas import check_document
from ._yaml import Document, load_yaml

ARTIFACT_SUFFIXES = (".yaml", ".yml")

#: Keys that belong to one provider only.
_PROVIDER_KEYS = {
    "serve_evidence": "evidence_policy",
    "callable": "python",
    "params": "python",
    **{key: "openai_chat" for key in ("model", "base_url", "api_key_env", "temperature", "seed", "max_tokens",
                                     "timeout", "max_retries", "trials", "route")},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One candidate artifact: its id, file, SHA-256 and validated settings."""

    template_id: str
    path: Path
    relative_path: str
    sha256: str
    provider: str
    settings: Mapping[str, Any]
    document: Document

    def line_of(self, key: str) -> int | None:
        return self.document.line_of([key])


def load_candidate(path: Path, experiment_dir: Path) -> Candidate:
    """Load and validate the artifact at ``path``; its ``template_id`` must equal the file's stem."""
    document = load_yaml(path, CandidateError)
    check_document(document, "candidate", CandidateError)
    data = document.data
    if data["template_id"] != path.stem:
        raise CandidateError(
            path, document.line_of(["template_id"]),
            f"template_id {data['template_id']!r} differs from the file name {path.stem!r}; they must be equal",
        )
    for key, provider in _PROVIDER_KEYS.items():
        if key in data and data["provider"] != provider:
            raise CandidateError(
                path, document.line_of([key]),
                f"{key!r} is a setting of provider {provider!r}, not of {data['provider']!r}",
            )
    return Candidate(
        template_id=data["template_id"],
        path=path,
        relative_path=path.relative_to(experiment_dir).as_posix(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        provider=data["provider"],
        settings=MappingProxyType(data),
        document=document,
    )
