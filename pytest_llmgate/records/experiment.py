"""Experiments: a manifest with its suites and candidate artifacts, loaded and fingerprinted together."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.case import Case
from pytest_llmgate.model.costs import Budget
from pytest_llmgate.model.decision import Name, Promotion
from pytest_llmgate.model.defaults import MANIFEST_NAME
from pytest_llmgate.model.errors import CandidateError, ManifestError, SuiteError
from pytest_llmgate.model.fingerprint import fingerprint, short
from pytest_llmgate.model.stats import DEFAULT_CONFIDENCE
from pytest_llmgate.records.candidate import ARTIFACT_SUFFIXES, Candidate, load_candidate
from pytest_llmgate.records.convert import convert
from pytest_llmgate.records.evaluator import Evaluator, EvaluatorBlock, JudgeStanding, judge_standing, load_evaluator
from pytest_llmgate.records.suite import Suite, load_suite
from pytest_llmgate.records.yaml_loader import Document, load_yaml

#: The fingerprint over every suite of an experiment; no suite may take its name.
EVALUATION = "evaluation"


# -- the manifest, llmgate.yaml ---------------------------------------------------------------------------------

_Text = Annotated[str, Meta(min_length=1)]
_Rate = Annotated[float, Meta(gt=0, le=1)]


class PromotionBlock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The manifest's ``promotion`` block, every key optional; a run record keeps it whole as ``Promotion``."""

    alias: Annotated[Name, Meta(
        description="The alias a promoted artifact gets, one line of printable text.")] = "canary_candidate"
    rollback_artifact: Annotated[Name | None, Meta(
        description="What a canary rolls back to (llmgate canary), one line of printable text; none by "
                    "default.")] = None
    limitation: Annotated[str, Meta(
        description="What the promotion does not claim; shown with the decision.")] = (
        "requires production review and monitored canary")
    max_unsafe_rate: Annotated[_Rate | None, Meta(
        description="Opt-in evidence requirement: the upper confidence bound of the unsafe-serve rate over "
                    "the cases judged must be at most this.")] = None
    max_unnecessary_rate: Annotated[_Rate | None, Meta(
        description="Opt-in evidence requirement: the upper confidence bound of the unnecessary-abstention rate "
                    "over the cases judged must be at most this.")] = None
    confidence: Annotated[Annotated[float, Meta(gt=0, lt=1)] | None, Meta(
        description="Confidence of the one-sided Clopper-Pearson upper bounds; default 0.95.")] = None


class Handoff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The manifest's ``handoff`` block: lineage from the incident, every key optional; each becomes a run tag."""

    incident_request_id: Annotated[str, Meta(description="The request the incident was found on.")] | UnsetType = UNSET
    failing_template_id: Annotated[str, Meta(description="The artifact that failed.")] | UnsetType = UNSET
    candidate_template_id: Annotated[str, Meta(description="The artifact proposed as the fix.")] | UnsetType = UNSET
    required_metric: Annotated[str, Meta(description="What the fix must show.")] | UnsetType = UNSET
    hypothesis: Annotated[str, Meta(description="Why the fix should work.")] | UnsetType = UNSET


_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: A suite name (its rule is said in ``Manifest.suites``: msgspec 0.19 drops a key type's description, and
#: its pattern from the schema with it).
SuiteName = Annotated[str, Meta(pattern=f"^(?!{EVALUATION}$)[A-Za-z][A-Za-z0-9_-]*$")]
SuitePath = Annotated[str, Meta(
    pattern=r"\.suite\.(yaml|jsonl)$",
    description="a suite file's name ends in .suite.yaml or .suite.jsonl; its path is relative to the manifest's "
                "directory, inside it")]


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An experiment manifest, ``llmgate.yaml``: the experiment's name and versions, its suites, where its candidate
    artifacts are, the incident's handoff, and what a promotion gives and requires."""

    experiment: Annotated[str, Meta(
        pattern=_NAME, description="an experiment name starts with a letter or digit and holds only letters, "
                                   "digits and _ . - (it groups the experiment's runs)")]
    policy_id: Annotated[_Text, Meta(description="The policy the candidates are held to; runs compare only when "
                                                 "it is equal.")]
    evidence_version: Annotated[_Text, Meta(description="The evidence the cases refer to; runs compare only when "
                                                        "it is equal.")]
    evaluator_version: Annotated[_Text, Meta(description="The evaluator's version; runs compare only when it is "
                                                         "equal.")]
    suites: Annotated[dict[SuiteName, SuitePath], Meta(
        min_length=1,
        description=f"Suite names -> suite files: a suite name starts with a letter and holds only letters, digits, _ "
                    f"and - (it becomes the <name>_sha param; '{EVALUATION}' names the fingerprint over all "
                    f"suites); a suite file, relative to the manifest's directory, ends in .suite.yaml or "
                    f".suite.jsonl.")]
    templates: Annotated[_Text, Meta(description="The folder of candidate artifacts, relative to the manifest's "
                                                 "directory.")] = "templates"
    handoff: Annotated[Handoff, Meta(description="Lineage from the incident; run tags.")] = Handoff()
    promotion: Annotated[PromotionBlock, Meta(description="What a promotion gives and requires.")] = PromotionBlock()
    budget: Annotated[Budget | None, Meta(description="Limits a run must stay within to be eligible; over one: "
                                                      "REJECT_OVER_BUDGET (docs/costs.md).")] = None
    evaluator: Annotated[Annotated[str, Meta(pattern=r"\.ya?ml$")] | EvaluatorBlock | None, Meta(
        description="The evaluator that turns each reply into a route (docs/evaluators.md): its file, or a block "
                    "with the file (path), a judge's calibration set and requirement; none: the candidate's "
                    "own route.")] = None


class Experiment(msgspec.Struct, frozen=True, kw_only=True):
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
    evaluator: Evaluator | None = None  # the manifest's evaluator (None: the candidate's own route, as before)

    @property
    def cases(self) -> tuple[Case, ...]:
        return tuple(case for suite in self.suites for case in suite.cases)

    @property
    def fingerprints(self) -> dict[str, str]:
        """Full fingerprints: one per suite, then ``evaluation``."""
        return {**{suite.name: suite.fingerprint for suite in self.suites}, EVALUATION: self.evaluation_fingerprint}

    @property
    def short_fingerprints(self) -> dict[str, str]:
        return {name: short(value) for name, value in self.fingerprints.items()}

    def judge_standing(self) -> JudgeStanding | None:
        """Whether its evaluator may make a run eligible, read from the files as they are now (None: it has none)."""
        return judge_standing(self.evaluator, self.directory)

    def repeated_inputs(self) -> list[tuple[Case, list[Case]]]:
        """Each case whose ``input`` and evidence later cases repeat (suite order), with them: the same question
        asked again under another id, which the evidence bounds count as one more case."""
        groups: dict[tuple[str, str], list[Case]] = {}
        for case in self.cases:
            if case.input_sha256 is not None:
                groups.setdefault((case.input_sha256, case.evidence_state), []).append(case)
        return [(first, copies) for first, *copies in groups.values() if copies]

    def suite_paths(self) -> frozenset[Path]:
        """The suite files, and a judge's calibration set (a ``*.suite.yaml`` the manifest names too)."""
        paths = {suite.path for suite in self.suites}
        if self.evaluator is not None:
            paths.add(self.evaluator.calibration_path)
        return frozenset(paths)


def load_experiment(directory: Path) -> Experiment:
    """Load the experiment whose ``llmgate.yaml`` is in ``directory``; any bad input raises with file and line."""
    directory = directory.resolve()
    manifest_path = directory / MANIFEST_NAME
    document = load_yaml(manifest_path, ManifestError)
    manifest = convert(document, Manifest, ManifestError)
    written = document.data  # which optional keys the file has
    for name, limit in msgspec.structs.asdict(manifest.budget or Budget()).items():
        if isinstance(limit, float) and math.isinf(limit):  # NaN and below 0 are refused by the Struct
            raise ManifestError(manifest_path, document.line_of(["budget", name]),
                                f"budget.{name}: {limit} is no limit; give a number (leave the key out for none)")

    suites: list[Suite] = []
    seen_cases: dict[str, Suite] = {}
    for name, relative in manifest.suites.items():
        path = _inside(directory, relative, document, ["suites", name])
        if not path.is_file():
            raise ManifestError(manifest_path, document.line_of(["suites", name]), f"suite {name!r}: no file {relative!r}")
        suite = load_suite(name, path)
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

    templates_rel = manifest.templates
    templates_dir = _inside(directory, templates_rel, document, ["templates"])
    templates_line = document.line_of(["templates"]) if "templates" in written else None
    if templates_dir.exists() and not templates_dir.is_dir():
        raise ManifestError(manifest_path, templates_line, f"templates folder {templates_rel!r} is not a folder")
    if "templates" in written and not templates_dir.is_dir():
        raise ManifestError(manifest_path, templates_line, f"templates folder {templates_rel!r} does not exist")
    try:
        paths = sorted(templates_dir.iterdir()) if templates_dir.is_dir() else []
    except OSError as exc:
        raise ManifestError(manifest_path, templates_line,
                            f"templates folder {templates_rel!r} cannot be listed: {exc.strerror or exc}") from None
    candidates = _load_candidates(paths, directory)

    # One suite: its fingerprint already is the evaluation's (the same cases), no second pass needed.
    evaluation = (suites[0].fingerprint if len(suites) == 1
                  else fingerprint([case.written for suite in suites for case in suite.cases]))
    evaluator = None
    if manifest.evaluator is not None:
        block = EvaluatorBlock(path=manifest.evaluator) if isinstance(manifest.evaluator, str) else manifest.evaluator
        evaluator = load_evaluator(directory, manifest_path, block, document.line_of(["evaluator"]),
                                   manifest.promotion.confidence or DEFAULT_CONFIDENCE)
        evaluation = evaluator.evaluation_fingerprint(evaluation)
    return Experiment(
        name=manifest.experiment,
        directory=directory,
        manifest_path=manifest_path,
        policy_id=manifest.policy_id,
        evidence_version=manifest.evidence_version,
        evaluator_version=(manifest.evaluator_version if evaluator is None
                           else evaluator.version(manifest.evaluator_version)),
        suites=tuple(suites),
        candidates=MappingProxyType(candidates),
        handoff=MappingProxyType(dict(written.get("handoff") or {})),  # in the file's order: the run's tags
        promotion=Promotion(**msgspec.structs.asdict(manifest.promotion)),  # the same keys, the defaults filled in
        evaluation_fingerprint=evaluation,
        budget=manifest.budget,
        evaluator=evaluator,
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


def _load_candidates(paths: list[Path], directory: Path) -> dict[str, Candidate]:
    """The artifacts among ``paths`` (the templates folder's entries, sorted), by template id."""
    candidates: dict[str, Candidate] = {}
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
