"""Candidate artifacts: versioned files in the experiment's templates folder, hashed."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.errors import CandidateError
from pytest_llmgate.records.convert import convert
from pytest_llmgate.records.yaml_loader import Document, load_yaml

ARTIFACT_SUFFIXES = (".yaml", ".yml")

#: The longest ``case_timeout`` (a day): a wait past it is no timeout, and infinity is not a number of seconds.
MAX_CASE_TIMEOUT = 86_400


# A provider declares its artifacts' keys as a subclass (``frozen=True, kw_only=True, forbid_unknown_fields=True``):
# the common keys and its own, with their limits, defaults and descriptions (docs/providers.md).
class CandidateSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The keys every candidate artifact has, whatever its provider; the other keys belong to its provider (the
    schema ``candidate-<provider>.schema.json`` of a built-in provider has them all)."""

    #: Keys the provider refuses with a reason, shown instead of "unknown key" (say ``trials`` for a deterministic
    #: provider).
    refused_keys: ClassVar[Mapping[str, str]] = {}

    template_id: Annotated[str, Meta(
        pattern="^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="a template id starts with a letter or digit and holds only letters, digits and _ . -; it "
                    "equals the artifact's file name without .yaml")]
    provider: Annotated[str, Meta(
        pattern="^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="a provider name starts with a letter or _ and holds only letters, digits and _ . -; built "
                    "in: evidence_policy, python, openai_chat, anthropic_messages (a plugin adds more through "
                    "the hook pytest_llmgate_make_provider)")]
    description: Annotated[str, Meta(description="What the candidate is, for people.")] | UnsetType = UNSET
    case_timeout: Annotated[float, Meta(
        gt=0, le=MAX_CASE_TIMEOUT,
        description="Seconds each case (each trial) waits for the candidate's answer before it is an ERROR for that "
                    "case; default 300 for LLM providers (openai_chat, anthropic_messages), 60 for in-process ones "
                    "(python, evidence_policy); at most a day.")] | UnsetType = UNSET


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One candidate artifact: its id, file, SHA-256 and its keys as written (validated by its provider's Struct)."""

    template_id: str
    path: Path
    relative_path: str
    sha256: str
    provider: str
    settings: Mapping[str, Any]
    document: Document

    def line_of(self, key: str) -> int | None:
        return self.document.line_of([key])

    @property
    def case_timeout(self) -> float | None:
        """The artifact's ``case_timeout`` (None: it says none, and its provider kind's default applies)."""
        timeout = msgspec.convert(self.document.data, CandidateSettings).case_timeout
        return None if timeout is msgspec.UNSET else timeout


def load_candidate(path: Path, experiment_dir: Path) -> Candidate:
    """Load the artifact at ``path`` and check its common keys (its provider checks the rest: ``check_settings``);
    its ``template_id`` must equal the file's stem."""
    document = load_yaml(path, CandidateError)
    common = convert(document, CandidateSettings, CandidateError)
    if common.template_id != path.stem:
        raise CandidateError(
            path, document.line_of(["template_id"]),
            f"template_id {common.template_id!r} differs from the file name {path.stem!r}; they must be equal",
        )
    if common.template_id == "all":  # --llmgate-candidate=all means every artifact: it could never name this one
        raise CandidateError(path, document.line_of(["template_id"]),
                             "template_id 'all' is reserved (--llmgate-candidate=all selects every artifact)")
    return Candidate(
        template_id=common.template_id,
        path=path,
        relative_path=path.relative_to(experiment_dir).as_posix(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        provider=common.provider,
        settings=MappingProxyType(document.data),
        document=document,
    )


def callable_params(prefix: str, target: str, experiment_dir: Path) -> dict[str, str]:
    """``<prefix>_path`` and ``<prefix>_sha256``: where the module a ``module:function`` target names (a python
    candidate's or evaluator's ``callable``) is, relative to the experiment directory, and the SHA-256 of its
    source, found without importing it: in the experiment directory, the folders above it (a repository's root),
    then on ``sys.path`` (pytest's ``pythonpath``, an installed package). Neither when it is no source file there.
    The run records both, so that ``llmgate`` checks the same file whatever its own path. Code that module imports
    is not covered: the run's ``code_commit`` says that."""
    parts = target.partition(":")[0].split(".")
    for root in [str(folder) for folder in (experiment_dir, *experiment_dir.parents)] + sys.path:
        base = Path(root or ".").joinpath(*parts)
        for source in (base.with_suffix(".py"), base / "__init__.py"):
            if source.is_file():
                where = Path(os.path.relpath(source.resolve(), experiment_dir.resolve())).as_posix()
                return {f"{prefix}_path": where, f"{prefix}_sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    return {}
