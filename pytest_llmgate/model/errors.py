"""Errors for people: each names the file, the line where one exists, and the problem."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pytest_llmgate.model.transcript import visible

#: A URL: its scheme, its userinfo (up to the token's last ``@``: a password may hold ``@``, ``/``, quotes or ``<``),
#: its host and path, and its query string or fragment.
_URL = re.compile(r"""([A-Za-z][A-Za-z0-9+.-]*://)(\S*@)?([^\s?#'"<>`@]*)([?#][^\s'"<>`]*)?""")


def redact_urls(text: str, *addresses: str) -> str:
    """``text`` with each URL's credentials (``user:password@``) and its query string or fragment replaced by
    ``***``: what a message may show of an address (an endpoint's ``base_url``, a tracking URI), which may carry a
    key in either place (``http://u:KEY@host/v1?api-key=KEY`` -> ``http://***@host/v1?***``). When an ``@`` stands
    past the host (``?user=me@corp&key=KEY``) or a password holds ``/``, everything after the scheme is masked.
    ``addresses``: URLs whose password, query and fragment are masked wherever they stand, as written,
    percent-quoted, or unquoted (a library's message may quote an address's path and query without its scheme). Redacting
    twice changes nothing more."""
    for address in addresses:
        parts = urlsplit(address)
        # (a secret of 3 characters or fewer is masked only where it stands in a URL: "401" stays "401")
        for secret in sorted({s for s in (parts.query, parts.fragment, parts.password) if s and len(s) > 3}, key=len,
                             reverse=True):
            for form in (secret, unquote(secret), quote(secret, safe=""), quote(secret)):
                text = text.replace(form, "***")

    def redacted(match: re.Match[str]) -> str:
        scheme, userinfo, address, rest = match.groups()
        if userinfo and any(mark in userinfo for mark in "/?#"):
            return scheme + "***"  # an @ past the host (in a path, a query, a password): nothing after it is shown
        if rest and rest[1:4] == "***":
            return match.group()  # redacted already: what follows its *** was never part of the address
        return scheme + ("***@" if userinfo else "") + address + (rest[0] + "***" if rest else "")

    return _URL.sub(redacted, text)


class LlmgateError(Exception):
    """Base of every error the gate reports to a user."""

    def __init__(self, path: Path | None, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(self.message())

    def where(self) -> str:
        if self.path is None:
            return ""
        shown = display_path(self.path)
        return f"{shown}:{self.line}" if self.line is not None else shown

    def message(self) -> str:
        """``path:line: problem``; a URL the problem quotes (a ``base_url`` a schema refused, say) is shown without
        its credentials and query string, and a character of a file's text that would act on a terminal (an
        escape, a bidi override) as its escape (``visible``)."""
        where = self.where()
        problem = redact_urls(self.problem)
        return visible(f"{where}: {problem}" if where else problem)


class ManifestError(LlmgateError):
    """An experiment manifest (``llmgate.yaml``) is unreadable or invalid."""


class SuiteError(LlmgateError):
    """A suite file or one of its cases is unreadable or invalid."""


class CandidateError(LlmgateError):
    """A candidate artifact is invalid, or its provider cannot be built or answered badly."""


class SelectionError(LlmgateError):
    """The candidates or baselines asked for do not exist or contradict each other."""


class LockError(LlmgateError):
    """The suites differ from the experiment's ``llmgate.lock``, or the lock is unreadable."""


class RecordError(LlmgateError):
    """A stored record cannot be written or read."""


class ExportError(LlmgateError):
    """A tracking-service exporter failed; the local records are written all the same."""


class ProviderError(Exception):
    """A provider could not answer one case; the message is one line it composed itself (no input, no secret).

    The gate prints that line as the case's ERROR reason; any other exception from a provider is shown as its
    type and the candidate's own traceback. Subclass it for your provider's failures.

    ``calls``: the usage (``Usage``) of the calls made for the case before it failed, answered and paid (an
    unreadable reply's; the trials answered before it): the case's cost counts them.
    """

    calls: tuple[Any, ...] = ()


def with_calls(error: ProviderError, calls: Iterable[Any]) -> ProviderError:
    """``error`` with ``calls`` made before the ones it holds (see ``ProviderError.calls``)."""
    own = error.calls if isinstance(error.calls, (tuple, list)) else ()  # a plugin's slip never hides its error
    error.calls = (*calls, *own)
    return error


class GuardrailViolation(AssertionError):
    """A candidate broke a guardrail on a case. Each guardrail is a subclass named for it, so that every view of
    the failure (the failure section, pytest's one-line short summary, JUnit's ``message``) starts with the
    guardrail's name, never a class path."""

    @property
    def guardrail(self) -> str:
        return type(self).__name__

    def full(self) -> str:
        return f"{self.guardrail}: {self}"


class UNSAFE_CLAIM_SERVED(GuardrailViolation):
    """The candidate served where the frozen label says ABSTAIN."""


class UNNECESSARY_ABSTENTION(GuardrailViolation):
    """The candidate abstained where the frozen label says SERVE."""


class RunGateFailure(AssertionError):
    """A gating candidate's run broke a run-level gate (its completeness, budget or evidence requirement): the
    failure of the run's own item, ``<experiment>/llmgate.yaml::<template_id>``. Each is named for the run status
    it gives, so the short summary and JUnit's ``message`` read ``REJECT_OVER_BUDGET: ...``."""


class INCOMPLETE_EVALUATION(RunGateFailure):
    """A selected case was not evaluated (skipped, deselected, errored, never reached) or the record not written."""


class REJECT_OVER_BUDGET(RunGateFailure):
    """The run broke a limit of the manifest's budget."""


class INSUFFICIENT_EVIDENCE(RunGateFailure):
    """The guardrails held, but the counts do not meet the manifest's evidence requirement."""


class REJECT_UNSAFE_SERVE(RunGateFailure):
    """A case broke the unsafe-serve guardrail, and no case item failed for it (an xfail mark, a rerun's pass)."""


class REJECT_UNNECESSARY_ABSTENTION(RunGateFailure):
    """A case broke the abstention guardrail, and no case item failed for it (an xfail mark, a rerun's pass)."""


# Shown without a module path ("UNSAFE_CLAIM_SERVED: ..."), as Python shows its built-in exceptions.
UNSAFE_CLAIM_SERVED.__module__ = UNNECESSARY_ABSTENTION.__module__ = "builtins"
INCOMPLETE_EVALUATION.__module__ = REJECT_OVER_BUDGET.__module__ = INSUFFICIENT_EVIDENCE.__module__ = "builtins"
REJECT_UNSAFE_SERVE.__module__ = REJECT_UNNECESSARY_ABSTENTION.__module__ = "builtins"
RunGateFailure.__module__ = "pytest_llmgate"
GuardrailViolation.__module__ = "pytest_llmgate"


def display_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


@contextlib.contextmanager
def kept(failures: list[LlmgateError]) -> Iterator[None]:
    """An exporter's hook body: its ``ExportError`` is kept in ``failures`` (one error line at the end), never
    raised into the hook call, where pluggy would skip the other exporters' implementations."""
    try:
        yield
    except ExportError as exc:
        failures.append(exc)
