"""Experiments: a manifest with its suites and candidate artifacts, loaded and fingerprinted together."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import msgspec

from ._candidate import ARTIFACT_SUFFIXES, Candidate, load_candidate
from ._costs import Budget
from ._defaults import MANIFEST_NAME as MANIFEST_NAME, SUITE_SUFFIXES as SUITE_SUFFIXES
from ._errors import CandidateError, ManifestError, SuiteError
from ._fingerprint import fingerprint, short
from ._schemas import check_document
from ._suite import Case, Suite, SuiteCache, load_suite
from ._vocab import DEFAULT_ALIAS, DEFAULT_LIMITATION
from ._yaml import Document, load_yaml

EVALUATION = "evaluation"


class Promotion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where an approved candidate goes, and what to go back to (the manifest's ``promotion`` block).

    The evidence requirement (opt-in, docs/statistics.md): a run is eligible only when the one-sided upper
    confidence bound (at ``confidence``, default 0.95) of its unsafe-serve rate is at most ``max_unsafe_rate``
    and that of its unnecessary-abstention rate at most ``max_unnecessary_rate``; omitted when not set."""

    alias: str
    rollback_artifact: str | None
    limitation: str
    max_unsafe_rate: float | None = None
    max_unnecessary_rate: float | None = None
    confidence: float | None = None

    @property
    def requires_evidence(self) -> bool:
        return self.max_unsafe_rate is not None or self.max_unnecessary_rate is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """Everything one manifest names, validated, with the fingerprints of its suites."""

    name: str
    directory: Path
    manifest_path: Path
    policy_id: str
    evidence_version: str
    evaluator_version: str
    suites: tuple[Suite, ...]
    candidates: Mapping[str, Candidate]
    handoff: Mapping[str, str]
    promotion: Promotion
    evaluation_fingerprint: str
    budget: Budget | None = None  # the manifest's budget block (None: no budget, nothing changes)

    @property
    def cases(self) -> tuple[Case, ...]:
        return tuple(case for suite in self.suites for case in suite.cases)

    @property
    def fingerprints(self) -> dict[str, str]:
        """Full fingerprints: one per suite, then ``evaluation``."""
        prints = {suite.name: suite.fingerprint for suite in self.suites}
        prints[EVALUATION] = self.evaluation_fingerprint
        return prints

    @property
    def short_fingerprints(self) -> dict[str, str]:
        return {name: short(value) for name, value in self.fingerprints.items()}

    def suite_paths(self) -> frozenset[Path]:
        return frozenset(suite.path for suite in self.suites)


def is_suite_file(path: Path) -> bool:
    return path.name.endswith(SUITE_SUFFIXES)


def load_experiment(directory: Path, cache: SuiteCache | None = None) -> Experiment:
    """Load the experiment whose ``llmgate.yaml`` is in ``directory``; any bad input raises with file and line.

    With a ``cache``, a suite file whose bytes are unchanged since an earlier session is not parsed again.
    """
    directory = directory.resolve()
    manifest_path = directory / MANIFEST_NAME
    document = load_yaml(manifest_path, ManifestError)
    if not isinstance(document.data, Mapping):
        raise ManifestError(manifest_path, document.line_of([]), "must be a mapping of manifest keys")
    check_document(document, "manifest", ManifestError)
    data = document.data

    suites: list[Suite] = []
    seen_cases: dict[str, Suite] = {}
    for name, relative in data["suites"].items():
        path = _inside(directory, relative, document, ["suites", name])
        if not path.is_file():
            raise ManifestError(manifest_path, document.line_of(["suites", name]), f"suite {name!r}: no file {relative!r}")
        suite = load_suite(name, path, cache)
        for case in suite.cases:
            other = seen_cases.get(case.case_id)
            if other is not None:
                raise SuiteError(
                    path, case.line,
                    f"duplicate case_id {case.case_id!r}: already in suite {other.name!r} ({other.path.name}); "
                    "case ids are unique across the suites of an experiment",
                )
            seen_cases[case.case_id] = suite
        suites.append(suite)

    templates_rel = data.get("templates", "templates")
    templates_dir = _inside(directory, templates_rel, document, ["templates"])
    templates_line = document.line_of(["templates"]) if "templates" in data else None
    if templates_dir.exists() and not templates_dir.is_dir():
        raise ManifestError(manifest_path, templates_line, f"templates folder {templates_rel!r} is not a folder")
    if "templates" in data and not templates_dir.is_dir():
        raise ManifestError(manifest_path, templates_line, f"templates folder {templates_rel!r} does not exist")
    try:
        candidates = _load_candidates(templates_dir, directory)
    except _Unlistable as exc:
        raise ManifestError(manifest_path, templates_line, f"templates folder {templates_rel!r} cannot be listed: {exc}") from None

    promotion = data.get("promotion", {})
    all_cases = [case.written for suite in suites for case in suite.cases]
    return Experiment(
        name=data["experiment"],
        directory=directory,
        manifest_path=manifest_path,
        policy_id=data["policy_id"],
        evidence_version=data["evidence_version"],
        evaluator_version=data["evaluator_version"],
        suites=tuple(suites),
        candidates=MappingProxyType(candidates),
        handoff=MappingProxyType(dict(data.get("handoff", {}))),
        promotion=Promotion(
            alias=promotion.get("alias", DEFAULT_ALIAS),
            rollback_artifact=promotion.get("rollback_artifact"),
            limitation=promotion.get("limitation", DEFAULT_LIMITATION),
            max_unsafe_rate=promotion.get("max_unsafe_rate"),
            max_unnecessary_rate=promotion.get("max_unnecessary_rate"),
            confidence=promotion.get("confidence"),
        ),
        # One suite: its fingerprint already is the evaluation's (the same cases), no second pass needed.
        evaluation_fingerprint=suites[0].fingerprint if len(suites) == 1 else fingerprint(all_cases),
        budget=msgspec.convert(data["budget"], Budget) if "budget" in data else None,
    )


def _inside(directory: Path, relative: str, document: Document, location: list[str | int]) -> Path:
    """``relative`` resolved against ``directory``; a path that leaves it is an error."""
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory):
        raise ManifestError(
            document.path, document.line_of(location),
            f"{'.'.join(map(str, location))}: path {relative!r} leaves the experiment directory",
        )
    return path


class _Unlistable(Exception):
    """The templates folder exists but cannot be listed; the message is the system's reason."""


def _load_candidates(templates_dir: Path, directory: Path) -> dict[str, Candidate]:
    candidates: dict[str, Candidate] = {}
    if not templates_dir.is_dir():
        return candidates
    try:
        paths = sorted(templates_dir.iterdir())
    except OSError as exc:
        raise _Unlistable(exc.strerror or str(exc)) from None
    for path in paths:
        if path.suffix not in ARTIFACT_SUFFIXES:
            continue
        if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(directory):
            # Suites and the templates folder are held inside the experiment; an artifact is too.
            raise CandidateError(
                path, None, f"is a link to {os.readlink(path)!r}, which leaves the experiment directory"
            )
        if not path.is_file():
            continue
        candidate = load_candidate(path, directory)
        if candidate.template_id in candidates:
            raise CandidateError(
                path, None, f"template_id {candidate.template_id!r} is also {candidates[candidate.template_id].path.name}"
            )
        candidates[candidate.template_id] = candidate
    return candidates
