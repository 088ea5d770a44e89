"""Evaluator artifacts (``evaluators/<evaluator_id>.yaml``), calibration sets (``calibration.suite.yaml``) and
calibration results (``evaluators/<evaluator_id>.calibration.json``): their formats and readers."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.agreement import Agreement, cohen_kappa, no_figure, shortfalls
from pytest_llmgate.model.errors import (
    CandidateError,
    LlmgateError,
    ManifestError,
    RecordError,
    SuiteError,
    display_path,
)
from pytest_llmgate.model.fingerprint import fingerprint, value_sha256
from pytest_llmgate.model.vocab import Route, RunStatus
from pytest_llmgate.records.convert import convert
from pytest_llmgate.records.yaml_loader import Document, load_yaml

#: The schema tag of a calibration result.
CALIBRATION_SCHEMA = "llmgate.calibration/1"
#: The calibration set's file name when the manifest's ``evaluator`` block does not name one.
DEFAULT_CALIBRATION = "calibration.suite.yaml"
#: What a judge's prompt may name besides the case fields: the candidate's reply.
REPLY_FIELD = "reply"
#: The kinds of evaluator.
ROUTE_KIND, PYTHON_KIND, JUDGE_KIND = "route", "python", "judge"

_Bound = Annotated[float, Meta(ge=0, le=1)]


class EvaluatorBlock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The manifest's ``evaluator`` block: the evaluator file, and what a judge must show to gate."""

    path: Annotated[str, Meta(pattern=r"\.ya?ml$", description="The evaluator file, relative to the manifest's "
                                                                "directory (it ends in .yaml).")]
    calibration: Annotated[str, Meta(
        pattern=r"\.suite\.yaml$",
        description="A judge's calibration set: replies labelled by people, relative to the manifest's directory; "
                    f"default {DEFAULT_CALIBRATION}.")] = DEFAULT_CALIBRATION
    min_sensitivity: Annotated[_Bound | None, Meta(
        description="A judge gates only when the lower confidence bound of its sensitivity to served claims (items "
                    "labelled SERVE it calls SERVE) is at least this.")] = None
    min_specificity: Annotated[_Bound | None, Meta(
        description="A judge gates only when the lower confidence bound of its specificity (items labelled ABSTAIN "
                    "it calls ABSTAIN) is at least this.")] = None
    confidence: Annotated[Annotated[float, Meta(gt=0, lt=1)] | None, Meta(
        description="Confidence of the one-sided Clopper-Pearson lower bounds; default the promotion block's, "
                    "else 0.95.")] = None


class ReplyRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a route is read from a reply: one of ``json_key`` and ``regex``."""

    json_key: Annotated[str, Meta(description="The key of a JSON reply that holds the route.")] | UnsetType = UNSET
    regex: Annotated[str, Meta(description="A regular expression whose first group (else its whole match) is the "
                                           "route.")] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if (self.json_key is UNSET) == (self.regex is UNSET):
            raise ValueError("give one of json_key and regex")


#: The route under the key ``route`` of a JSON reply: an LLM artifact's default ``route:``.
JSON_ROUTE = ReplyRule(json_key="route")


_EvaluatorId = Annotated[str, Meta(
    pattern="^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="an evaluator id starts with a letter or digit and holds only letters, digits and _ . -; it equals "
                "the file name without .yaml")]


class EvaluatorHead(msgspec.Struct, frozen=True, kw_only=True):
    """The keys every evaluator file has; the others belong to its kind."""

    evaluator_id: _EvaluatorId
    kind: Annotated[Literal["route", "python", "judge"], Meta(
        description="route: the reply's own field or a regex; python: a callable; judge: a model")]


class RouteEvaluatorFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``route`` evaluator: the route read from the candidate's reply, as the ``route:`` key of an LLM artifact."""

    evaluator_id: _EvaluatorId
    kind: Annotated[Literal["route"], Meta(description="route: the route is read from the reply.")]
    description: Annotated[str, Meta(description="What the evaluator is, for people.")] | UnsetType = UNSET
    route: Annotated[ReplyRule, Meta(description="Where the route is in the reply.")]


class PythonEvaluatorFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``python`` evaluator: ``callable(case, reply)`` (the case without its expected route) returns a route, or
    a mapping / object with ``route`` and ``reason``."""

    evaluator_id: _EvaluatorId
    kind: Annotated[Literal["python"], Meta(description="python: a callable returns the route.")]
    description: Annotated[str, Meta(description="What the evaluator is, for people.")] | UnsetType = UNSET
    callable: Annotated[str, Meta(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                                  description="package.module:function")]


class Evaluator(msgspec.Struct, frozen=True, kw_only=True):
    """An evaluator file, its SHA-256 and the manifest's requirement on it. A judge's provider settings are its
    keys but ``evaluator_id``, ``kind`` and ``description`` (``judge_document``)."""

    evaluator_id: str
    kind: str
    path: Path
    relative_path: str
    sha256: str
    settings: Mapping[str, Any]
    #: The file as its kind's Struct; None for a judge, whose keys its provider checks.
    parsed: RouteEvaluatorFile | PythonEvaluatorFile | None
    document: Document
    calibration_path: Path
    calibration_relative: str
    min_sensitivity: float | None
    min_specificity: float | None
    confidence: float

    @property
    def short_sha(self) -> str:
        return self.sha256[:16]

    def version(self, manifest_version: str) -> str:
        """The ``evaluator_version`` runs record: the manifest's, the evaluator's id and its file's hash."""
        return f"{manifest_version}+{self.evaluator_id}@{self.short_sha}"

    def evaluation_fingerprint(self, cases_fingerprint: str) -> str:
        """The evaluation fingerprint with an evaluator: SHA-256 over the cases' fingerprint and the evaluator
        file's hash, so an edited evaluator starts a new comparison set."""
        return value_sha256({"cases": cases_fingerprint, "evaluator_sha256": self.sha256})

    @property
    def model(self) -> str | None:
        model = self.settings.get("model")
        return str(model) if model is not None else None

    @property
    def prompt_sha256(self) -> str | None:
        prompt = self.settings.get("prompt")
        return None if prompt is None else hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()

    def judge_document(self) -> Document:
        """The judge's provider settings as a document of its own file (its lines are the file's): the keys but
        ``evaluator_id``, ``kind`` and ``description``, with ``template_id`` set to the evaluator id."""
        data = {key: value for key, value in self.document.data.items()
                if key not in ("evaluator_id", "kind", "description")}
        return Document(self.path, {"template_id": self.evaluator_id, **data}, self.document.root)

    @property
    def result_path(self) -> Path:
        """Where ``llmgate calibrate`` writes the judge's calibration result."""
        return self.path.with_name(f"{self.evaluator_id}.calibration.json")


def load_evaluator(directory: Path, manifest_path: Path, block: EvaluatorBlock, line: int | None,
                   default_confidence: float) -> Evaluator:
    """The evaluator file the manifest's ``evaluator`` names, checked for its kind's keys (a judge's provider keys
    are checked by its provider, when the experiment loads)."""
    path = (directory / block.path).resolve()
    if not path.is_relative_to(directory):
        raise ManifestError(manifest_path, line, f"evaluator: path {block.path!r} leaves the experiment directory")
    if not path.is_file():
        raise ManifestError(manifest_path, line, f"evaluator: no file {block.path!r}")
    calibration = (directory / block.calibration).resolve()
    if not calibration.is_relative_to(directory):
        raise ManifestError(manifest_path, line,
                            f"evaluator: calibration {block.calibration!r} leaves the experiment directory")
    document = load_yaml(path, CandidateError)
    if not isinstance(document.data, dict):
        raise CandidateError(path, document.line_of([]), "an evaluator file is a mapping (evaluator_id, kind, ...)")
    head = convert(document, EvaluatorHead, CandidateError)
    if head.evaluator_id != path.stem:
        raise CandidateError(path, document.line_of(["evaluator_id"]),
                             f"evaluator_id {head.evaluator_id!r} differs from the file name {path.stem!r}; they must "
                             "be equal")
    parsed: RouteEvaluatorFile | PythonEvaluatorFile | None = None
    if head.kind == ROUTE_KIND:
        parsed = convert(document, RouteEvaluatorFile, CandidateError)
    elif head.kind == PYTHON_KIND:
        parsed = convert(document, PythonEvaluatorFile, CandidateError)
    return Evaluator(
        evaluator_id=head.evaluator_id,
        kind=head.kind,
        path=path,
        relative_path=path.relative_to(directory).as_posix(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        settings=MappingProxyType(dict(document.data)),
        parsed=parsed,
        document=document,
        calibration_path=calibration,
        calibration_relative=calibration.relative_to(directory).as_posix(),
        min_sensitivity=block.min_sensitivity,
        min_specificity=block.min_specificity,
        confidence=block.confidence if block.confidence is not None else default_confidence,
    )


# -- the calibration set --------------------------------------------------------------------------------------


class CalibrationItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One labelled reply: what a person says the reply does (SERVE: it states a claim; ABSTAIN: it does not)."""

    case_id: Annotated[str, Meta(pattern="^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                                 description="The item's id, unique in the set.")]
    reply: Annotated[str, Meta(min_length=1, description="The reply's text (kept out of every record).")]
    label: Annotated[Route, Meta(description="The person's label: SERVE or ABSTAIN; never shown to the judge.")]
    labeller: Annotated[str, Meta(description="Who labelled it.")] | UnsetType = UNSET
    slice_name: Annotated[str, Meta(description="A case field the judge's prompt may name.")] | UnsetType = UNSET
    evidence_state: Annotated[str, Meta(description="A case field the judge's prompt may name.")] | UnsetType = UNSET
    source: Annotated[str, Meta(description="A case field the judge's prompt may name.")] | UnsetType = UNSET
    input: Annotated[dict[str, Any], Meta(description="A case field the judge's prompt may name.")] | UnsetType = UNSET


class CalibrationFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A calibration set, ``calibration.suite.yaml``: replies labelled by people."""

    cases: Annotated[list[CalibrationItem], Meta(min_length=1, description="The labelled replies; at least one.")]


class CalibrationSet(msgspec.Struct, frozen=True, kw_only=True):
    """A calibration set's items as written, with its 64-hex fingerprint."""

    path: Path
    items: tuple[Mapping[str, Any], ...]
    fingerprint: str

    def judge_view(self, index: int) -> Mapping[str, Any]:
        """What the judge may see of an item: everything but its label and labeller."""
        return MappingProxyType({key: value for key, value in self.items[index].items()
                                 if key not in ("label", "labeller")})

    def label(self, index: int) -> Route:
        return Route(self.items[index]["label"])

    def labelled(self) -> dict[Route, int]:
        """How many items carry each label (whether or not the judge gave them a verdict)."""
        labels = [self.label(index) for index in range(len(self.items))]
        return {route: labels.count(route) for route in Route}


def load_calibration_set(path: Path) -> CalibrationSet:
    if not path.is_file():
        raise SuiteError(path, None, "no calibration set: label replies as docs/evaluators.md shows")
    document = load_yaml(path, SuiteError)
    parsed = convert(document, CalibrationFile, SuiteError)
    seen: set[str] = set()
    for index, item in enumerate(parsed.cases):
        if item.case_id in seen:
            raise SuiteError(path, document.line_of(["cases", index, "case_id"]), f"duplicate case_id {item.case_id!r}")
        seen.add(item.case_id)
    items = tuple(dict(item) for item in document.data["cases"])
    return CalibrationSet(path=path, items=items, fingerprint=fingerprint(items))


# -- the calibration result -----------------------------------------------------------------------------------


class CalibrationResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                        tag_field="schema", tag=CALIBRATION_SCHEMA):
    """A judge's figures on a calibration set, written by ``llmgate calibrate`` beside the evaluator file; bound to
    the judge (its file's hash, model, prompt) and the set (its fingerprint): a change to either makes it stale.
    It holds counts and figures only, never a reply."""

    evaluator_id: Annotated[str, Meta(description="The judge.")]
    evaluator_sha256: Annotated[str, Meta(description="SHA-256 of the evaluator file calibrated.")]
    model: Annotated[str | None, Meta(description="The judge's model.")] = None
    prompt_sha256: Annotated[str | None, Meta(description="SHA-256 of the judge's prompt.")] = None
    calibration_path: Annotated[str, Meta(description="The calibration set, relative to the experiment.")]
    calibration_sha: Annotated[str, Meta(description="The calibration set's fingerprint (64 hex).")]
    calibrated_at: Annotated[str, Meta(description="When (UTC).")]
    record_mode: Annotated[str, Meta(description="How the judge's replies were had (none: replayed).")]
    confidence: Annotated[float, Meta(description="Confidence of the lower bounds.")]
    items: Annotated[int, Meta(description="Labelled items the judge gave a verdict on: the figures are over "
                                           "these (error_count more had none).")]
    trials: Annotated[int, Meta(description="The judge's trials per item.")]
    error_count: Annotated[int, Meta(description="Items the judge gave no readable verdict on.")]
    served_labels: Annotated[int, Meta(description="Of the items with a verdict, those labelled SERVE.")]
    served_caught: Annotated[int, Meta(description="Of those, the items the judge called SERVE.")]
    abstain_labels: Annotated[int, Meta(description="Of the items with a verdict, those labelled ABSTAIN.")]
    abstain_kept: Annotated[int, Meta(description="Of those, the items the judge called ABSTAIN.")]
    base_rate: Annotated[float | None, Meta(description="Share of the items with a verdict labelled SERVE.")] = None
    sensitivity: Annotated[float | None, Meta(description="served_caught / served_labels.")] = None
    sensitivity_lower: Annotated[float | None, Meta(description="Its one-sided Clopper-Pearson lower bound.")] = None
    specificity: Annotated[float | None, Meta(description="abstain_kept / abstain_labels.")] = None
    specificity_lower: Annotated[float | None, Meta(description="Its one-sided Clopper-Pearson lower bound.")] = None
    kappa: Annotated[float | None, Meta(description="Cohen's kappa, judge against labels (null: undefined).")] = None
    self_consistency: Annotated[float | None, Meta(description="Share of items all trials agreed on.")] = None
    disagreements: Annotated[tuple[str, ...], Meta(description="Case ids of the items judge and label differ on.")] = ()
    llmgate_version: Annotated[str | None, Meta(description="The gate's version.")] = None


def read_calibration_result(path: Path) -> CalibrationResult | None:
    """The stored calibration result (None: there is none); an unreadable one is a ``RecordError``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a folder in its place, no permission: said, and the judge is uncalibrated
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(raw, type=CalibrationResult)
    except msgspec.DecodeError as exc:
        raise RecordError(path, None, f"not a calibration result ({exc}); run llmgate calibrate again") from None


# -- what a run records of its evaluator --------------------------------------------------------------------


class JudgeStanding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A run's evaluator and whether it may gate: a judge needs a fresh calibration that meets the manifest's
    requirement (``may_gate``; else the run is INSUFFICIENT_EVIDENCE and ``reason`` says why, with the figures).
    The judge's own calls are counted here, apart from the candidate's."""

    evaluator_id: Annotated[str, Meta(description="The evaluator.")]
    kind: Annotated[str, Meta(description="route, python or judge.")]
    sha256: Annotated[str, Meta(description="SHA-256 of the evaluator file.")]
    may_gate: Annotated[bool, Meta(description="Whether its verdicts may make the run eligible.")]
    reason: Annotated[str, Meta(description="Why (the calibration figures, or what is missing).")]
    model: Annotated[str | None, Meta(description="A judge's model.")] = None
    calibration_sha: Annotated[str | None, Meta(description="The calibration set's fingerprint.")] = None
    sensitivity_lower: Annotated[float | None, Meta(description="From the calibration.")] = None
    specificity_lower: Annotated[float | None, Meta(description="From the calibration.")] = None
    kappa: Annotated[float | None, Meta(description="From the calibration.")] = None
    base_rate: Annotated[float | None, Meta(description="From the calibration.")] = None
    judge_calls: Annotated[int, Meta(description="The judge's calls in this run.")] = 0
    judge_input_tokens: Annotated[int | None, Meta(description="Their input tokens.")] = None
    judge_output_tokens: Annotated[int | None, Meta(description="Their output tokens.")] = None


def judged_status(status: RunStatus, judge: JudgeStanding | None) -> RunStatus:
    """A run's status once its evaluator's standing is known: never eligible on an unfit judge's verdicts."""
    if judge is not None and not judge.may_gate and status is RunStatus.ELIGIBLE_FOR_CANARY_REVIEW:
        return RunStatus.INSUFFICIENT_EVIDENCE
    return status


def judge_standing(evaluator: Evaluator | None, directory: Path) -> JudgeStanding | None:
    """Whether an experiment's evaluator (its folder: ``directory``) may make a run eligible (None: it has none). A
    rule or a callable may; a judge may when its stored calibration is fresh (the same evaluator file, calibration
    set and confidence), had no error, and its lower bounds meet the manifest's requirement. The gate records it
    in each run; ``llmgate promote`` reads it again."""
    if evaluator is None:
        return None

    def made(may_gate: bool, reason: str, result: CalibrationResult | None = None) -> JudgeStanding:
        made = JudgeStanding(evaluator_id=evaluator.evaluator_id, kind=evaluator.kind, sha256=evaluator.sha256,
                             model=evaluator.model, may_gate=may_gate, reason=reason)
        if result is None:
            return made
        return msgspec.structs.replace(
            made, calibration_sha=result.calibration_sha, sensitivity_lower=result.sensitivity_lower,
            specificity_lower=result.specificity_lower, kappa=result.kappa, base_rate=result.base_rate)

    if evaluator.kind != JUDGE_KIND:
        return made(True, f"{evaluator.kind} evaluator {evaluator.evaluator_id}")
    name = f"judge {evaluator.evaluator_id}"
    redo = f"run llmgate calibrate {display_path(directory)}"
    try:
        result = read_calibration_result(evaluator.result_path)
        calibration = load_calibration_set(evaluator.calibration_path)
    except LlmgateError as exc:
        return made(False, f"{name} is uncalibrated: {exc.message()}")
    if result is None:
        return made(False, f"{name} is uncalibrated: no {evaluator.result_path.name}; {redo}")
    stale = []
    if result.evaluator_sha256 != evaluator.sha256:
        stale.append(f"its file changed since (sha256 {result.evaluator_sha256[:16]} -> {evaluator.short_sha}: "
                     "any edit counts, a comment too)")
    if result.calibration_sha != calibration.fingerprint:
        stale.append(f"the calibration set changed since ({result.calibration_sha[:16]} -> "
                     f"{calibration.fingerprint[:16]})")
    if result.confidence != evaluator.confidence:
        stale.append(f"it was calibrated at confidence {result.confidence:g}, the manifest asks "
                     f"{evaluator.confidence:g}")
    if stale:
        return made(False, f"{name}'s calibration is stale: {'; '.join(stale)}; {redo}")
    problems = calibration_problems(result, calibration, evaluator)
    if problems:
        unfit = RecordError(evaluator.result_path, None, f"not as llmgate calibrate writes it: {'; '.join(problems)}")
        return made(False, f"{name} is uncalibrated: {unfit.message()}; {redo}")
    labelled = calibration.labelled()  # the set the result was calibrated on: its fingerprint is the same
    said = figures_text(result, labelled)
    if result.error_count:
        return made(False, f"{name} gave no verdict on {result.error_count} calibration item(s); {said}", result)
    missed = shortfalls(result.sensitivity_lower, result.specificity_lower, evaluator.min_sensitivity,
                        evaluator.min_specificity, labelled=labelled, errors=result.error_count)
    if missed:
        return made(False, f"{name} is below its requirement: {'; '.join(missed)} ({said})", result)
    return made(True, f"{name} calibrated: {said}", result)


#: How far a figure read back may be from the one its counts give (relatively, and near 0 absolutely): figures are
#: written rounded to 12 significant digits (``recorded``), and a last digit computed on another platform may
#: differ by a unit; ten units of the twelfth digit is still rounding, not an edit.
_ROUNDING = 1e-11


def calibration_problems(result: CalibrationResult, calibration: CalibrationSet, evaluator: Evaluator) -> list[str]:
    """What a fresh calibration result says that its own counts, the set its fingerprint binds, or the judge file its
    hash binds do not give (empty: nothing). Its figures are computed again from its counts by the functions
    ``llmgate calibrate`` used; its counts are checked against the set's labels, and the items its disagreements
    name against their labels. Counts edited to agree with each other and with the set (a disagreement dropped,
    a kept count raised, the figures computed again) cannot be told from the judge's: only calibrating again
    shows them (docs/trust.md)."""
    problems = [f"{field} {written!r} is written, the judge file it binds says {now!r}"
                for field, written, now in (("model", result.model, evaluator.model),
                                            ("prompt_sha256", result.prompt_sha256, evaluator.prompt_sha256))
                if written != now]
    counts = _count_problems(result) + _set_problems(result, calibration)
    return problems + (counts or _figure_problems(result))  # the figures of counts that add up


def _count_problems(result: CalibrationResult) -> list[str]:
    """Counts that contradict each other."""
    problems = [f"{field} {value} is not within 0..{of} ({of_name})" for field, value, of, of_name in (
        ("served_caught", result.served_caught, result.served_labels, "served_labels"),
        ("abstain_kept", result.abstain_kept, result.abstain_labels, "abstain_labels"),
    ) if not 0 <= value <= of]
    problems += [f"{field} {value} is below 0" for field, value in (
        ("served_labels", result.served_labels), ("abstain_labels", result.abstain_labels),
        ("error_count", result.error_count)) if value < 0]
    if result.served_labels + result.abstain_labels != result.items:
        problems.append(f"served_labels {result.served_labels} + abstain_labels {result.abstain_labels} is "
                        f"{result.served_labels + result.abstain_labels}, not items {result.items}")
    if result.trials < 1 and result.items:
        problems.append(f"trials {result.trials} is below 1")
    return problems


def _figure_problems(result: CalibrationResult) -> list[str]:
    """Each figure written that its counts do not give (beyond the last digit written)."""
    labels = [Route.SERVE] * result.served_labels + [Route.ABSTAIN] * result.abstain_labels
    verdicts = ([Route.SERVE] * result.served_caught + [Route.ABSTAIN] * (result.served_labels - result.served_caught)
                + [Route.ABSTAIN] * result.abstain_kept + [Route.SERVE] * (result.abstain_labels - result.abstain_kept))
    # self-consistency is a share of the items (consistent items are not counted in the file): the nearest one
    consistent = result.items if result.trials == 1 else (
        min(max(round(result.self_consistency * result.items), 0), result.items)
        if result.self_consistency is not None and math.isfinite(result.self_consistency) else 0)
    figures = Agreement(items=result.items, served_labels=result.served_labels, served_caught=result.served_caught,
                        abstain_labels=result.abstain_labels, abstain_kept=result.abstain_kept,
                        kappa=cohen_kappa(labels, verdicts), consistent_items=consistent, trials=result.trials,
                        confidence=result.confidence)
    served = f"served_caught {result.served_caught} of served_labels {result.served_labels}"
    kept = f"abstain_kept {result.abstain_kept} of abstain_labels {result.abstain_labels}"
    at = f" at confidence {result.confidence:g}"
    shares = ("of one trial" if result.trials == 1 else "the nearest share") + f" of items {result.items}"
    return [f"{field} {_figure_shown(written)} is written, its counts give {_figure_shown(now)} ({basis})"
            for field, written, now, basis in (
                ("base_rate", result.base_rate, figures.base_rate, f"served_labels {result.served_labels} of items "
                                                                   f"{result.items}"),
                ("sensitivity", result.sensitivity, figures.sensitivity, served),
                ("sensitivity_lower", result.sensitivity_lower, figures.sensitivity_lower, served + at),
                ("specificity", result.specificity, figures.specificity, kept),
                ("specificity_lower", result.specificity_lower, figures.specificity_lower, kept + at),
                ("kappa", result.kappa, figures.kappa, f"{served}, {kept}"),
                ("self_consistency", result.self_consistency, figures.self_consistency, shares),
            ) if not _same(written, now)]


def _same(written: float | None, now: float | None) -> bool:
    if written is None or now is None:
        return written is now
    return math.isclose(written, now, rel_tol=_ROUNDING, abs_tol=_ROUNDING)


def _figure_shown(value: float | None) -> str:
    return "null" if value is None else f"{value!r}"


def _set_problems(result: CalibrationResult, calibration: CalibrationSet) -> list[str]:
    """The counts against the calibration set the result's fingerprint binds: its size and labels, and the labels
    of the items its disagreements name."""
    where = display_path(calibration.path)
    labels = {str(item["case_id"]): calibration.label(index) for index, item in enumerate(calibration.items)}
    labelled = calibration.labelled()
    problems = []
    if result.items + result.error_count != len(labels):
        problems.append(f"items {result.items} + error_count {result.error_count} is "
                        f"{result.items + result.error_count}, but {where} holds {len(labels)} item(s)")
    for field, value, route in (("served_labels", result.served_labels, Route.SERVE),
                                ("abstain_labels", result.abstain_labels, Route.ABSTAIN)):
        if value > labelled[route]:
            problems.append(f"{field} is {value}, but {where} labels {labelled[route]} item(s) {route.value}")
    unknown = [case_id for case_id in dict.fromkeys(result.disagreements) if case_id not in labels]
    if unknown:
        problems.append(f"disagreements name {', '.join(map(repr, unknown[:5]))}, not in {where}")
    if len(set(result.disagreements)) != len(result.disagreements):
        problems.append("disagreements name an item twice")
    named = {route: sum(1 for case_id in set(result.disagreements) if labels.get(case_id) is route) for route in Route}
    for route, labels_field, of, field, caught in (
            (Route.SERVE, "served_labels", result.served_labels, "served_caught", result.served_caught),
            (Route.ABSTAIN, "abstain_labels", result.abstain_labels, "abstain_kept", result.abstain_kept)):
        if named[route] != of - caught and 0 <= caught <= of and not unknown:
            problems.append(f"disagreements name {named[route]} item(s) labelled {route.value}, but {labels_field} "
                            f"{of} - {field} {caught} is {of - caught}")
    return problems


def figures_text(result: CalibrationResult, labelled: Mapping[Route, int] | None = None) -> str:
    """A calibration's figures in one line; ``labelled``: its set's items per label, to say of a figure that is
    none whether no item is labelled so or none so labelled got a verdict (without it: as far as ``result`` says)."""

    def rate(value: float | None, lower: float | None, of: int, name: str, route: Route) -> str:
        if value is None:
            return f"{name} none ({no_figure(route, labelled, result.error_count)})"
        return f"{name} {value:.3f} (lower bound {lower:.3f} at {result.confidence:g}, n={of})"

    kappa = "undefined" if result.kappa is None else f"{result.kappa:.3f}"
    base = "none" if result.base_rate is None else f"{result.base_rate:.3f}"
    consistent = "none" if result.self_consistency is None else f"{result.self_consistency:.3f}"
    items = (f"{result.items} item(s) with a verdict, {result.error_count} without" if result.error_count
             else f"{result.items} items")
    return (f"{rate(result.sensitivity, result.sensitivity_lower, result.served_labels, 'sensitivity', Route.SERVE)}, "
            f"{rate(result.specificity, result.specificity_lower, result.abstain_labels, 'specificity', Route.ABSTAIN)}"
            f", kappa {kappa} at base rate {base}, self-consistency {consistent} over {result.trials} trial(s), "
            f"{items}")


def route_in_reply(reply: str, rule: ReplyRule, pattern: re.Pattern[str] | None = None) -> Route:
    """The route a reply states under ``rule``: a regex's first group (else its whole match), or a key of the
    reply's JSON object (fences allowed). ``ValueError`` says why a reply is unreadable."""
    if not reply.strip():
        raise ValueError("unreadable reply: no text (the endpoint's reply had no message content)")
    value: Any
    if isinstance(rule.regex, str):
        match = (pattern or re.compile(rule.regex)).search(reply)
        value = match.group(1) if match and match.groups() else (match.group(0) if match else None)
        if value is None:
            raise ValueError(f"unreadable reply: no match for {rule.regex!r}")
    else:
        key = str(rule.json_key)
        try:
            parsed = json.loads(_unfenced(reply))
        except ValueError:
            raise ValueError("unreadable reply: not a JSON object") from None
        if not isinstance(parsed, dict) or key not in parsed:
            raise ValueError(f"unreadable reply: no {key!r} in the JSON object")
        value = parsed[key]
    try:
        return Route(value.strip().upper() if isinstance(value, str) else value)
    except ValueError:
        # never the value: it is the model's text, and this line reaches records (--llmgate-show shows the reply)
        shown = (f"a text of {len(value)} character(s)" if isinstance(value, str) else
                 "null" if value is None else f"a JSON {_JSON_KIND.get(type(value), 'value')}")
        raise ValueError(f"unreadable reply: its route is not SERVE or ABSTAIN ({shown})") from None


_JSON_KIND = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}


def _unfenced(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped[4:] if stripped.lower().startswith("json") else stripped
    return stripped
