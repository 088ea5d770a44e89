"""Candidate artifacts: versioned files in the experiment's templates folder, hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._errors import CandidateError
from ._schemas import check_document, schema
from ._yaml import Document, load_yaml

ARTIFACT_SUFFIXES = (".yaml", ".yml")

#: The artifact key (any provider) for the seconds a case waits for its answer before it is an ERROR.
CASE_TIMEOUT = "case_timeout"

#: The keys every artifact may have, whatever its provider (the provider checks the rest): ``schemas/candidate``.
COMMON_PROPERTIES: Mapping[str, Any] = MappingProxyType(schema("candidate")["properties"])


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
    return Candidate(
        template_id=data["template_id"],
        path=path,
        relative_path=path.relative_to(experiment_dir).as_posix(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        provider=data["provider"],
        settings=MappingProxyType(data),
        document=document,
    )
