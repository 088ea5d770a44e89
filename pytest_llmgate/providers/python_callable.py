"""Provider ``python``: ``callable: package.module:function``, called with the case and the artifact."""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, TimeoutError as FutureTimeout
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.defaults import MAX_TRIALS
from pytest_llmgate.model.errors import CandidateError
from pytest_llmgate.model.vocab import Route
from pytest_llmgate.providers import FactoryDefaults, FreePrompt, ProviderContext, ProviderDefaults, coerce_route
from pytest_llmgate.providers.calls import DEFAULT_CASE_TIMEOUT
from pytest_llmgate.records.candidate import Candidate, CandidateSettings, callable_params

CALLABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


class PythonSettings(CandidateSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A ``python`` artifact: a function called with each case (without its expected route) and the artifact."""

    provider: Annotated[Literal["python"], Meta(description="The provider: python.")]
    callable: Annotated[str, Meta(
        pattern=CALLABLE_PATTERN,
        description="the callable is written package.module:function (a module importable as it is, or from the "
                    "experiment's directory)")]
    params: Annotated[dict[str, Any], Meta(
        description="Free-form settings, handed to the callable with the rest of the artifact.")] | UnsetType = UNSET
    trials: Annotated[int, Meta(ge=1, le=MAX_TRIALS, description="How often each case is asked (--llmgate-trials overrides it).")] = 1
    prompt: FreePrompt | UnsetType = UNSET


class PythonCallable(ProviderDefaults):
    """Calls ``function(case, artifact)`` once per trial; it returns a route, or a mapping or object with ``route``.

    A function that takes a keyword argument ``trial`` (or ``**kwargs``) is given the trial's index (0, 1, ...),
    so that a seeded candidate can vary from trial to trial."""

    __slots__ = ("_function", "_artifact", "_name", "_takes_trial", "trials")
    concurrent = False

    def __init__(self, function: Callable[..., Any], artifact: Mapping[str, Any], name: str, trials: int = 1) -> None:
        self._function = function
        self._artifact = artifact
        self._name = name
        self._takes_trial = _takes_trial(function)
        self.trials = trials

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        extra = {"trial": trial} if self._takes_trial else {}
        return coerce_route(self._function(case, self._artifact, **extra), self._name)


def _takes_trial(function: Callable[..., Any]) -> bool:
    """Whether ``function`` accepts ``trial=`` (a parameter of that name, or ``**kwargs``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == "trial" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) or p.kind is p.VAR_KEYWORD
        for p in parameters
    )


class PythonCallableFactory(FactoryDefaults):
    """The ``python`` settings: ``callable`` (required), free-form ``params``, a prompt (handed to the function), and
    ``trials`` (how often each case is asked; ``--llmgate-trials`` overrides it)."""

    name = "python"
    settings = PythonSettings

    def check(self, candidate: Candidate) -> None:
        pass  # the module is imported only when the artifact is selected

    def build(self, candidate: Candidate, context: ProviderContext) -> PythonCallable:
        typed = msgspec.convert(candidate.document.data, PythonSettings)
        timeout = DEFAULT_CASE_TIMEOUT[False] if typed.case_timeout is UNSET else typed.case_timeout
        function = import_callable(typed.callable, context.experiment_dir, candidate, timeout)
        return PythonCallable(function, candidate.settings, typed.callable, trials_of(typed, context))

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        """``callable_path`` and ``callable_sha256``: where the callable's module is and its source's SHA-256
        (``llmgate promote`` refuses a run whose code changed since); ``trials``, when a case is asked more than
        once."""
        typed = msgspec.convert(candidate.document.data, PythonSettings)
        trials = trials_of(typed, context)
        return {**callable_params("callable", typed.callable, context.experiment_dir),
                **({"trials": str(trials)} if trials > 1 else {})}


def trials_of(typed: PythonSettings, context: ProviderContext) -> int:
    """The trials of a run: ``--llmgate-trials`` when given, else the artifact's ``trials:`` (its Struct's default)."""
    return context.trials if context.trials is not None else typed.trials


FACTORY = PythonCallableFactory()


def import_callable(target: str, experiment_dir: Path, candidate: Candidate, timeout: float) -> Callable[..., Any]:
    """The function ``target`` names (a python candidate's, or a python evaluator's). Its module is imported in a
    daemon thread, waited for as long as a case (``timeout``: the artifact's ``case_timeout``, else
    ``DEFAULT_CASE_TIMEOUT``): a module that hangs at import is a collection error, never a hung session."""
    module_name, _, attribute = target.partition(":")
    line = candidate.line_of("callable")
    imported: Future[Any] = Future()

    def run() -> None:
        try:
            imported.set_result(_import(module_name, experiment_dir))
        except BaseException as exc:
            imported.set_exception(exc)

    threading.Thread(target=run, name=f"llmgate-import-{module_name}", daemon=True).start()
    try:
        module = imported.result(timeout)
    except FutureTimeout:
        raise CandidateError(
            candidate.path, line, f"callable {target!r}: its module did not finish importing within {timeout:g}s "
                                  "(case_timeout); the import was abandoned"
        ) from None
    except (Exception, SystemExit) as exc:
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
