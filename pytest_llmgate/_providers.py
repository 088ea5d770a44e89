"""Providers: how a candidate artifact turns a case into a route."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ._candidate import Candidate
from ._errors import CandidateError
from ._vocab import RecordMode
from ._vocab import Route


class Provider(Protocol):
    """Answers one case (without its expected route) with a route.

    ``trials`` is how often each case is asked; ``concurrent`` says whether calls may run in threads.
    """

    trials: int
    concurrent: bool

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        """The candidate's route for ``case``; any exception is an ERROR for that case."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderOptions:
    """Session settings that shape providers: the record mode and a trials override."""

    record_mode: RecordMode = RecordMode.NONE
    trials: int | None = None


class EvidencePolicy:
    """Deterministic: SERVE when the case's evidence state is in the served set (``*``: all)."""

    __slots__ = ("_serve",)
    trials = 1
    concurrent = False

    def __init__(self, serve_evidence: str | list[str]) -> None:
        self._serve: frozenset[str] | None = None if serve_evidence == "*" else frozenset(serve_evidence)

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        if self._serve is None or case["evidence_state"] in self._serve:
            return Route.SERVE
        return Route.ABSTAIN


class PythonCallable:
    """Calls ``function(case, artifact)``; it returns a route, or a mapping or object with ``route``."""

    __slots__ = ("_function", "_artifact", "_name")
    trials = 1
    concurrent = False

    def __init__(self, function: Callable[..., Any], artifact: Mapping[str, Any], name: str) -> None:
        self._function = function
        self._artifact = artifact
        self._name = name

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        return coerce_route(self._function(case, self._artifact), self._name)


def coerce_route(value: Any, source: str) -> Route:
    """Read a route from a provider's answer; anything else is an error naming ``source``."""
    if isinstance(value, Mapping):
        value = value.get("route")
    elif not isinstance(value, str):
        value = getattr(value, "route", value)
    try:
        return Route(value)
    except ValueError:
        raise ValueError(f"{source} returned {value!r}; expected SERVE or ABSTAIN") from None


def build_provider(candidate: Candidate, experiment_dir: Path, options: ProviderOptions | None = None) -> Provider:
    """The provider an artifact asks for; an unusable artifact raises ``CandidateError``."""
    settings = candidate.settings
    if candidate.provider == "openai_chat":
        from ._openai_chat import build_openai_chat  # the SDK itself is imported only for a live call

        options = options or ProviderOptions()
        return build_openai_chat(candidate, experiment_dir, options.record_mode, options.trials)
    if candidate.provider == "evidence_policy":
        return EvidencePolicy(settings["serve_evidence"])
    if candidate.provider == "python":
        target = settings["callable"]
        function = _import_callable(target, experiment_dir, candidate)
        return PythonCallable(function, settings, target)
    raise CandidateError(  # pragma: no cover - the schema admits only the providers above
        candidate.path, candidate.line_of("provider"), f"unknown provider {candidate.provider!r}"
    )


def _import_callable(target: str, experiment_dir: Path, candidate: Candidate) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    line = candidate.line_of("callable")
    try:
        module = _import(module_name, experiment_dir)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
        raise CandidateError(
            candidate.path, line, f"callable {target!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CandidateError(
                candidate.path, line, f"callable {target!r}: module {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(obj):
        raise CandidateError(candidate.path, line, f"callable {target!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _import(module_name: str, experiment_dir: Path) -> Any:
    """Import normally; failing that, from the experiment directory, where a team keeps its candidate code."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0]:
            raise
    directory = str(experiment_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module(module_name)


def provider_params(experiment: Any, candidate: Candidate, options: ProviderOptions) -> dict[str, str]:
    """Run params that make an LLM candidate's run reproducible: model, trials, record mode, recordings hash."""
    if candidate.provider != "openai_chat":
        return {}
    from ._recordings import recordings_sha256

    recordings = experiment.directory / "recordings" / f"{candidate.template_id}.jsonl"
    trials = options.trials if options.trials is not None else candidate.settings.get("trials", 1)
    return {
        "model": candidate.settings["model"],
        "trials": str(trials),
        "record_mode": options.record_mode.value,
        "recordings_sha256": recordings_sha256(recordings) or "none",
    }
