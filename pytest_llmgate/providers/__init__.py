"""Providers: how a candidate artifact turns a case into a route, and the one door through which they are found.

Every provider, built in or not, is a ``ProviderFactory`` returned by the hook ``pytest_llmgate_make_provider``
for the name in an artifact's ``provider:`` key. The factory owns the provider's settings (a ``msgspec.Struct``
subclassing ``CandidateSettings``, checked with errors naming the artifact's line), its run params and its
``Provider`` objects; a ``Provider`` answers cases and raises ``ProviderError`` with a safe one-line reason when it
cannot.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

import msgspec
from msgspec import Meta

from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.errors import CandidateError, ProviderError
from pytest_llmgate.model.transcript import TrialTranscript
from pytest_llmgate.model.vocab import RecordMode, Route
from pytest_llmgate.records.candidate import Candidate, CandidateSettings
from pytest_llmgate.records.convert import convert
from pytest_llmgate.records.evaluator import JSON_ROUTE, route_in_reply

if TYPE_CHECKING:
    from pytest_llmgate.providers.calls import Throttles

#: What a provider plugin needs (docs/providers.md); the rest of this module is the gate's own.
__all__ = [
    "CandidateSettings",
    "FactoryDefaults",
    "Messages",
    "Provider",
    "ProviderContext",
    "ProviderDefaults",
    "ProviderError",
    "ProviderFactory",
    "TrialTranscript",
    "Usage",
    "coerce_route",
    "import_in_background",
]


class Provider(Protocol):
    """Answers one case (without its expected route) with a route.

    Required: ``trials`` (how often each case is asked), ``concurrent`` (whether calls may run in the session's
    thread pool: an LLM call yes, a pure function no) and ``route``. The optional members (``answer``,
    ``transcript``, ``bounded``, ``reply``, ``read_route``) are described with their defaults in the table of
    docs/providers.md; ``ProviderDefaults`` declares those defaults (a provider may subclass it, or leave the member
    out: the gate completes a provider with ``complete_provider``, the one place that looks them up).
    """

    @property
    def trials(self) -> int: ...

    @property
    def concurrent(self) -> bool: ...

    @property
    def bounded(self) -> bool: ...

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        """The candidate's route for ``case`` in ``trial``.

        A ``ProviderError`` is an ERROR for the case shown with its one-line message; any other exception is an
        ERROR shown with the candidate's traceback.
        """
        ...

    def answer(self, case: Mapping[str, Any], trial: int = 0) -> tuple[Route, Usage]: ...

    def transcript(self, case: Mapping[str, Any], trial: int) -> TrialTranscript | None: ...

    @property
    def reply(self) -> Callable[[Mapping[str, Any], int], tuple[str, Usage]] | None: ...

    def read_route(self, reply: str) -> Route: ...


class ProviderDefaults:
    """The defaults of a ``Provider``'s optional members; a provider class may subclass it."""

    __slots__ = ()
    bounded = False
    reply: Callable[[Mapping[str, Any], int], tuple[str, Usage]] | None = None

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        raise NotImplementedError

    def answer(self, case: Mapping[str, Any], trial: int = 0) -> tuple[Route, Usage]:
        """``route``, timed: its latency and no tokens."""
        started = time.perf_counter()
        route = self.route(case, trial)
        return route, Usage(latency_ms=round((time.perf_counter() - started) * 1000, 6))

    def transcript(self, case: Mapping[str, Any], trial: int) -> TrialTranscript | None:
        return None

    def read_route(self, reply: str) -> Route:
        """The ``route`` key of a JSON reply."""
        try:
            return route_in_reply(reply, JSON_ROUTE)
        except ValueError as exc:
            raise ProviderError(str(exc)) from None


#: The optional methods of a ``Provider``.
OPTIONAL_METHODS = ("answer", "transcript", "reply", "read_route")


class _CompletedProvider(ProviderDefaults):
    """A plugin's provider with the optional members it left out (``complete_provider``)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.trials: int = provider.trials
        self.concurrent: bool = provider.concurrent
        self.bounded = bool(getattr(provider, "bounded", False))
        for name in OPTIONAL_METHODS:
            own = getattr(provider, name, None)
            if callable(own):
                setattr(self, name, own)

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        return cast(Route, self.provider.route(case, trial))


def complete_provider(provider: Any) -> Provider:
    """``provider`` with every optional member (see ``Provider``): itself when it has them all."""
    if all(hasattr(provider, name) for name in (*OPTIONAL_METHODS, "bounded")):
        return cast(Provider, provider)
    return _CompletedProvider(provider)


class ProviderContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider may use besides its artifact: the experiment's directory, the session's options and its
    per-endpoint concurrency windows (``throttles``; None: the provider's own). ``record_option`` is the option that
    sets ``record_mode``, for a message to name (``llmgate calibrate``'s is ``--record``)."""

    experiment_dir: Path
    record_mode: RecordMode = RecordMode.NONE
    trials: int | None = None
    throttles: Throttles | None = None
    record_option: str = "--llmgate-record"


class ProviderFactory(Protocol):
    """One kind of provider, named by artifacts' ``provider:`` key; what ``pytest_llmgate_make_provider`` returns.

    Required: ``name``, ``settings``, ``check``, ``build`` and ``params``. Optional, with the defaults that
    ``FactoryDefaults`` declares (the gate completes a factory with ``complete_factory``): ``deterministic`` and
    ``warm``, described in the table of docs/providers.md, and ``ready``. ``warm`` runs at session start in each
    process that runs cases, before pytest collects: it must return at once, never raise for an unusable artifact
    (``build`` says so) and make no call. ``ready(candidate, context) -> str | None`` runs once on the controller
    before any case, making no call: why none of the artifact's cases can be answered (no API key for a live
    call, nothing recorded to replay), said as one usage error; default None (it may answer).
    """

    @property
    def deterministic(self) -> bool: ...

    def warm(self, candidate: Candidate, context: ProviderContext) -> None: ...

    def ready(self, candidate: Candidate, context: ProviderContext) -> str | None: ...

    @property
    def name(self) -> str:
        """The value of ``provider:`` it serves."""
        ...

    @property
    def settings(self) -> type[CandidateSettings]:
        """The keys of its artifacts: a ``msgspec.Struct`` subclassing ``CandidateSettings`` (which holds the
        common keys, ``template_id``, ``provider``, ``description``, ``case_timeout``) declared with
        ``kw_only=True, forbid_unknown_fields=True``; limits, patterns and defaults as ``Annotated[...,
        msgspec.Meta(...)]``, each with a description. An artifact is converted to it when it loads; any other key
        is an error naming its line."""
        ...

    def check(self, candidate: Candidate) -> None:
        """Rules the Struct cannot say (a regex that compiles, say); raise ``CandidateError`` at the line.

        Called for every artifact of an experiment when it loads, selected or not: no import of user code, no
        network.
        """
        ...

    def build(self, candidate: Candidate, context: ProviderContext) -> Provider:
        """The provider for a selected artifact, in each process that runs its cases; may raise ``CandidateError``."""
        ...

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        """Run params that make the run reproducible (model, trials, recordings hash ...), added to the record.

        Called once per run on the process that writes the records (the xdist controller), after the cases ran.
        """
        ...


class FactoryDefaults:
    """The defaults of a ``ProviderFactory``'s optional members; a factory class may subclass it."""

    deterministic = False

    def warm(self, candidate: Candidate, context: ProviderContext) -> None:
        return None

    def ready(self, candidate: Candidate, context: ProviderContext) -> str | None:
        return None


class _CompletedFactory(FactoryDefaults):
    """A plugin's factory with the optional members it left out (``complete_factory``)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.name: str = factory.name
        self.settings: Any = getattr(factory, "settings", None)  # checked by check_settings
        #: What unreleased versions read instead of ``settings``; check_settings names it when it refuses one.
        self.settings_schema: object = getattr(factory, "settings_schema", None)
        self.deterministic = bool(getattr(factory, "deterministic", False))
        for name in ("warm", "ready"):
            own = getattr(factory, name, None)
            if callable(own):
                setattr(self, name, own)

    def check(self, candidate: Candidate) -> None:
        self.factory.check(candidate)

    def build(self, candidate: Candidate, context: ProviderContext) -> Provider:
        return complete_provider(self.factory.build(candidate, context))

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        return cast(Mapping[str, str], self.factory.params(candidate, context))


def complete_factory(factory: Any) -> ProviderFactory:
    """``factory`` with every optional member (see ``ProviderFactory``), its providers completed too."""
    return _CompletedFactory(factory)


#: The built-in providers: name -> module that defines ``FACTORY``, imported when an artifact names it.
BUILTIN = {
    "evidence_policy": "evidence_policy",
    "python": "python_callable",
    "openai_chat": "openai_chat",
    "anthropic_messages": "anthropic_messages",
}


def builtin_factory(name: str) -> ProviderFactory | None:
    """The built-in factory for ``name``, or None (no SDK is imported here: only a live call does that)."""
    module = BUILTIN.get(name)
    if module is None:
        return None
    return cast(ProviderFactory, importlib.import_module(f"{__name__}.{module}").FACTORY)


MakeProvider = Callable[[str], "ProviderFactory | None"]


def check_settings(candidate: Candidate, factory: ProviderFactory) -> None:
    """Convert an artifact to its provider's settings Struct (errors name the line), then the provider's own rules."""
    settings = getattr(factory, "settings", None)
    # Told by its shape, not by issubclass: a test of a plugin run inline by pytester may hold a CandidateSettings
    # of an earlier import of this package.
    if not (isinstance(settings, type) and issubclass(settings, msgspec.Struct)
            and settings.__struct_config__.forbid_unknown_fields
            and set(CandidateSettings.__struct_fields__) <= set(settings.__struct_fields__)):
        legacy = getattr(factory, "settings_schema", None) is not None
        before = " (settings_schema, a JSON-Schema fragment, is not read)" if legacy else ""
        raise CandidateError(
            candidate.path, candidate.line_of("provider"),
            f"provider {candidate.provider!r}: its factory declares no settings Struct{before}; a provider declares "
            "settings = a subclass of pytest_llmgate.CandidateSettings with forbid_unknown_fields=True "
            "(docs/providers.md)",
        )
    convert(candidate.document, settings, CandidateError)
    factory.check(candidate)


def import_in_background(*modules: str) -> threading.Thread | None:
    """Start importing ``modules``, one after the other, in a daemon thread (None: all already imported). An
    import that fails is left to the first real import, which then says why; Python's import lock makes that one
    wait for this one."""
    wanted = [module for module in modules if module not in sys.modules]
    if not wanted:
        return None

    def run() -> None:
        for module in wanted:
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    thread = threading.Thread(target=run, name=f"llmgate-import-{wanted[0]}", daemon=True)
    thread.start()
    return thread


def unknown_provider(candidate: Candidate) -> CandidateError:
    return CandidateError(
        candidate.path, candidate.line_of("provider"),
        f"unknown provider {candidate.provider!r}: no installed plugin provides it "
        f"(built in: {', '.join(BUILTIN)}; a plugin adds one through pytest_llmgate_make_provider)",
    )


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


class Messages(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A prompt as a system and a user message."""

    system: Annotated[str, Meta(description="The system message.")] | msgspec.UnsetType = msgspec.UNSET
    user: Annotated[str, Meta(description="The user message.")]


#: The prompt key of the providers that do not render it: free text, or system/user messages, kept as written.
FreePrompt = Annotated[str | Messages, Meta(
    description="The prompt the candidate stands for: free text or system/user messages, kept as written (this "
                "provider does not send it anywhere).")]

