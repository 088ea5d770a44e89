"""What the LLM providers share: settings, prompt rendering, route reading, record/replay and fault handling.

A subclass names its SDK and says how a rendered request becomes the SDK's low-level call and how the reply's
text is found. Calls go through the SDK's own client (its transport, connection pool, retries and timeouts);
the SDK is imported at the first live call, never for a replay.
"""

from __future__ import annotations

import email.utils
import functools
import importlib
import importlib.util
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from types import ModuleType
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.costs import Price, Usage, impossible_usage
from pytest_llmgate.model.defaults import MAX_TRIALS
from pytest_llmgate.model.errors import (
    CandidateError,
    ProviderError,
    RecordError,
    display_path,
    redact_urls,
    with_calls,
)
from pytest_llmgate.model.transcript import TrialTranscript
from pytest_llmgate.model.vocab import RecordMode, Route
from pytest_llmgate.providers import FactoryDefaults, Messages, ProviderContext, ProviderDefaults, import_in_background
from pytest_llmgate.providers.calls import Throttles, Window, slot
from pytest_llmgate.providers.recordings import Recordings, checked_recordings_path, recordings_path, recordings_sha256
from pytest_llmgate.providers.render import PLACEHOLDER, MissingField, render
from pytest_llmgate.records.candidate import MAX_CASE_TIMEOUT, Candidate, CandidateSettings
from pytest_llmgate.records.evaluator import JSON_ROUTE, JUDGE_KIND, ReplyRule, route_in_reply

#: The case fields a prompt may name (never ``expected_route``).
CASE_FIELDS = ("case_id", "slice_name", "evidence_state", "source", "input")


#: A reply larger than this many megabytes (MiB) is an error unless the artifact says ``max_response_mb``.
DEFAULT_MAX_RESPONSE_MB = 4.0

#: After this many calls in a row ended refused with HTTP 429 (each after its own retries), a candidate stops
#: calling its endpoint for the rest of the session, as it does an endpoint it cannot connect to.
REFUSED_IN_A_ROW = 5


class CallFailed(ProviderError):
    """The endpoint did not give a usable reply; the message is one line and holds no secret."""


class ReplyTooLarge(Exception):
    """A reply grew past the artifact's ``max_response_mb``; its reading stopped there."""


_Seconds = Annotated[float, Meta(gt=0, le=MAX_CASE_TIMEOUT)]
#: The ``api_key_env`` key; each provider gives its own default.
ApiKeyEnv = Annotated[str, Meta(
    pattern="^[A-Za-z_][A-Za-z0-9_]*$",
    description="the name of the environment variable holding the key (letters, digits and _); the key itself never "
                "appears in a file")]


class ChatSettings(CandidateSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The settings every LLM provider has; a subclass adds its own (``seed``, a ``max_tokens`` default ...)."""

    model: Annotated[str, Meta(min_length=1, description="The model asked.")]
    base_url: Annotated[str, Meta(
        pattern="^https?://", description="an endpoint URL starts with http:// or https://; default: the SDK's "
                                          "endpoint")] | UnsetType = UNSET
    api_key_env: ApiKeyEnv  # each provider's Struct gives its default
    temperature: Annotated[float, Meta(ge=0, description="Sampling temperature.")] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1, description="At most this many output tokens.")] | UnsetType = UNSET
    timeout: Annotated[_Seconds, Meta(description="Seconds per request: each attempt's reply must be complete by "
                                                  "then (at most a day).")] = 60.0
    max_retries: Annotated[int, Meta(ge=0, description="The SDK's retries of timeouts, dropped connections, 408, "
                                                       "409, 429 and 5xx, with backoff.")] = 2
    max_response_mb: Annotated[float, Meta(gt=0, description="A reply larger than this many megabytes is an "
                                                             "error.")] = DEFAULT_MAX_RESPONSE_MB
    trials: Annotated[int, Meta(ge=1, le=MAX_TRIALS, description="How often each case is asked (--llmgate-trials overrides "
                                                  "it).")] = 1
    max_requests_per_minute: Annotated[float, Meta(
        gt=0, description="At most this many calls a minute from this artifact in the whole session, evenly "
                          "spaced (under pytest-xdist each worker takes its share).")] | UnsetType = UNSET
    price: Annotated[Price, Meta(
        description="USD per million input and output tokens, for a model the price list does not know (a private "
                    "or local model); overrides the list.")] | UnsetType = UNSET
    route: Annotated[ReplyRule, Meta(
        description="How to read the route: a key of a JSON reply (default 'route') or a regular expression whose "
                    "first group (else its whole match) is the route.",
        extra_json_schema={"minProperties": 1, "maxProperties": 1})] = JSON_ROUTE
    prompt: Annotated[Messages, Meta(
        description="Messages rendered from the case with {{ field }} / {{ input.name }} placeholders.")]


class ChatProvider(ProviderDefaults):
    """Renders the artifact's prompt from a case, asks the endpoint (or the recording), reads the route."""

    name: ClassVar[str]
    sdk: ClassVar[str]  # the SDK's import name, also the name of the pyproject extra
    client_class: ClassVar[str]  # the SDK's synchronous client (thread-safe, shared by the session's call pool)
    sampling_keys: ClassVar[tuple[str, ...]]
    concurrent = True

    def __init__(self, candidate: Candidate, typed: ChatSettings, recordings: Recordings, trials: int | None,
                 throttles: Throttles | None = None) -> None:
        """``typed``: the artifact as its settings Struct (its defaults); the sampling settings are sent as written
        (``0``, not the Struct's ``0.0``: they are the recording key's material)."""
        settings = candidate.settings
        self.model: str = settings["model"]
        self.base_url: str | None = settings.get("base_url")
        self.api_key_env = typed.api_key_env
        self.sampling = {key: settings[key] if key in settings else getattr(typed, key) for key in self.sampling_keys
                         if key in settings or getattr(typed, key) is not UNSET}
        self.timeout = typed.timeout
        self.max_retries = typed.max_retries
        self.max_response_mb = typed.max_response_mb
        self.max_response_bytes = int(self.max_response_mb * 1024 * 1024)
        self.messages: Mapping[str, str] = settings["prompt"]
        self.route_rule = typed.route
        self.trials = trials if trials is not None else typed.trials
        self.recordings = recordings
        self._pattern = re.compile(typed.route.regex) if isinstance(typed.route.regex, str) else None
        self._client: Any = None
        self._sdk: ModuleType | None = None
        self._lock = threading.Lock()
        self._stopped: str | None = None  # why this candidate no longer calls its endpoint (said once, then this)
        self._refusals = 0  # calls in a row that ended refused with HTTP 429
        throttles = throttles or Throttles()
        self.window: Window = throttles.window(self.base_url or f"{self.name} default endpoint")
        self.pace = (throttles.pace(typed.max_requests_per_minute) if isinstance(typed.max_requests_per_minute, float)
                     else None)
        self._local = threading.local()  # the call in this thread: its attempts, their deadline, its 429s

    # -- what a subclass says -------------------------------------------------------------------
    def tokens(self, usage: dict[str, Any]) -> dict[str, int | None]:
        """The token counts of the reply's ``usage`` object as ``Usage`` fields (input_tokens, output_tokens,
        cached_tokens, reasoning_tokens ...); those the endpoint does not report are left out."""
        return {}

    def post(self, client: Any, request: Mapping[str, Any]) -> Any:
        """The SDK's low-level call for a rendered ``request``; returns the decoded JSON reply."""
        raise NotImplementedError

    def content(self, response: Any) -> str:
        """The reply's text ("" when a well-formed reply holds none: a refusal, say; read as an unreadable
        reply, recorded and counted); a ``CallFailed`` when the JSON is not a reply's."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------
    def request(self, case: Mapping[str, Any], trial: int) -> dict[str, Any]:
        """Everything that determines the reply: the recording key's material."""
        messages = []
        for role in ("system", "user"):
            if role not in self.messages:
                continue
            try:
                messages.append({"role": role, "content": render(self.messages[role], case)})
            except MissingField as missing:
                raise CallFailed(
                    f"prompt.{role} needs {{{{ {missing.field} }}}}, which case {case.get('case_id')} does not have"
                ) from None
        return {"provider": self.name, "model": self.model, **self.sampling, "messages": messages, "trial": trial}

    def answer(self, case: Mapping[str, Any], trial: int = 0) -> tuple[Route, Usage]:
        """The route and what the call used (a replay: what the recorded call used)."""
        reply, usage = self.reply(case, trial)
        try:
            return self.read_route(reply), usage
        except CallFailed as error:  # answered and paid: the case's cost counts the call
            with_calls(error, (usage,))
            raise

    def reply(self, case: Mapping[str, Any], trial: int = 0) -> tuple[str, Usage]:
        """The reply's text and what the call used: what an evaluator reads the route from."""
        request = self.request(case, trial)
        reply, usage = self.recordings.reply(request, lambda: self._call(request), _case_id(case))
        usage = usage or Usage()
        if (impossible := impossible_usage(usage)) is not None:  # a bad figure from the endpoint is this case's error, never the session's
            raise CallFailed(f"{impossible}; the call's usage cannot be priced or budgeted")
        if usage.input_tokens is None or usage.output_tokens is None:
            usage = msgspec.structs.replace(usage, usage_missing=1)
        return reply, usage

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        return self.answer(case, trial)[0]

    def transcript(self, case: Mapping[str, Any], trial: int) -> TrialTranscript:
        """What was sent and answered for ``case`` in ``trial``, for the failure output (never for a record)."""
        try:
            request = self.request(case, trial)
        except CallFailed as exc:
            return TrialTranscript(trial=trial, messages=(), reply=None, source="no reply", note=str(exc))
        messages = tuple((m["role"], m["content"]) for m in request["messages"])
        reply, live = self.recordings.seen(request, _case_id(case))
        if reply is None:
            return TrialTranscript(trial=trial, messages=messages, reply=None, source="no reply", note=self._stopped)
        return TrialTranscript(trial=trial, messages=messages, reply=reply, source="live" if live else "replayed")

    def read_route(self, reply: str) -> Route:
        try:
            return route_in_reply(reply, self.route_rule, self._pattern)
        except ValueError as exc:
            raise CallFailed(str(exc)) from None

    def _client_or_new(self) -> tuple[Any, Any]:
        with self._lock:
            if self._client is None:
                try:
                    self._sdk = importlib.import_module(self.sdk)
                except ImportError:
                    raise CallFailed(
                        f"provider {self.name} needs the {self.sdk} SDK: pip install 'pytest-llmgate[{self.sdk}]'"
                    ) from None
                api_key = os.environ.get(self.api_key_env)
                if not api_key:
                    raise CallFailed(f"environment variable {self.api_key_env} (api_key_env) is not set")
                # They log each request's URL: httpx, or its successor httpx2, and the SDK.
                for name in ("httpx", "httpx2", f"{self.sdk}._base_client"):
                    logging.getLogger(name).addFilter(_redacted_log)  # (added once: a filter is kept once)
                http_client = _closing(self._sdk.DefaultHttpxClient)(
                    event_hooks={"request": [self._on_request], "response": [self._on_response]}
                )
                self._client = getattr(self._sdk, self.client_class)(
                    api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries,
                    http_client=http_client)
            return self._sdk, self._client

    # -- observing the SDK's attempts (its own retry loop honours Retry-After) --------------------
    def _on_request(self, request: Any) -> None:
        local = self._local
        if local.too_large:  # an SDK that retries any transport error (anthropic) is not answered again
            raise ReplyTooLarge()
        local.attempts += 1
        local.started = time.perf_counter()  # each attempt: the latency is the last one's
        local.deadline = local.started + self.timeout

    def _on_response(self, response: Any) -> None:
        """Before the reply's body is read: count a 429, refuse a reply that says it is too large, and bound the
        reading of the rest by the attempt's deadline and the size limit (the SDK's own timeout is per read: a
        reply dripping a byte at a time would never end)."""
        local = self._local
        if response.has_redirect_location:
            local.attempts -= 1  # the next request follows this one: the same attempt
        if response.status_code == 429:
            local.met += 1
            self.window.limited(local.round)
            wait = retry_after_wait(response.headers)
            if wait is not None and wait > self.timeout:
                local.too_long = wait
                response.headers["x-should-retry"] = "false"  # both SDKs obey it: no wait beyond the timeout
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_response_bytes:
            local.too_large = True
            raise ReplyTooLarge()
        http = sys.modules[type(response).__module__.partition(".")[0]]  # httpx or httpx2: the SDK's own
        response.stream = _bounded_stream(http)(response.stream, response.request, local, self.max_response_bytes)

    def _call(self, request: Mapping[str, Any]) -> tuple[str, Usage]:
        if self._stopped is not None:
            raise CallFailed(self._stopped)
        sdk, client = self._client_or_new()
        local = self._local
        local.met, local.too_long, local.attempts, local.too_large = 0, None, 0, False
        with slot(self.window, self.pace, lambda: local.met > 0) as started_round:
            local.round = started_round
            local.started = time.perf_counter()
            try:
                response = self.post(client, request)
            except Exception as exc:
                raise self._failure(sdk, exc) from None
            latency_ms = round((time.perf_counter() - local.started) * 1000, 3)
        with self._lock:
            self._refusals = 0  # answered: the refusals are no longer in a row
        usage = response.get("usage") if isinstance(response, dict) else None
        counts: dict[str, Any] = self.tokens(usage) if isinstance(usage, dict) else {}
        spent = Usage(**counts, latency_ms=latency_ms, rate_limited=local.met)
        try:
            return self.content(response), spent
        except CallFailed as error:  # answered and paid, in a shape that has no reply: the case's cost counts it
            with_calls(error, (spent,))
            raise

    def _failure(self, sdk: Any, exc: Exception) -> CallFailed:
        """The one line that says why a call failed (never the SDK's own message, which may quote the request)."""
        local = self._local
        retries = max(0, local.attempts - 1)
        after = "(not retried)" if retries == 0 else f"after {_retries(retries)}"
        if local.too_large:
            return CallFailed(f"reply larger than {self.max_response_mb:g} MB (max_response_mb); not read further")
        if isinstance(exc, sdk.APITimeoutError) or (
                not isinstance(exc, sdk.APIError) and "timeout" in type(exc).__name__.lower()):
            return CallFailed(f"timed out after {self.timeout:g}s" + (
                " (not retried)" if retries == 0 else f" and {_retries(retries)}"))
        if isinstance(exc, sdk.APIConnectionError) and _cause(exc) != "ConnectError":
            # connected, then the endpoint hung up or broke the reply off: this call's fault, not a dead endpoint
            return CallFailed(f"connection dropped by the endpoint ({_cause(exc)}) {after}")
        if isinstance(exc, sdk.APIConnectionError):
            return self._unreachable(exc)
        if isinstance(exc, sdk.APIStatusError):
            if exc.status_code == 429 and local.too_long is not None:
                return self._refused(f"HTTP 429 from the endpoint: Retry-After {local.too_long:g}s is longer than "
                                     f"the timeout ({self.timeout:g}s)")
            said = f"HTTP {exc.status_code} from the endpoint {after}"
            return self._refused(said) if exc.status_code == 429 else CallFailed(said)
        if isinstance(exc, (sdk.APIError, ValueError)):
            return CallFailed(f"malformed response from the endpoint ({type(exc).__name__})")
        return CallFailed(f"request failed ({type(exc).__name__})")  # a transport error the SDK let through

    def _unreachable(self, exc: Exception) -> CallFailed:
        """Calls in flight together fail together: the first one says why, the others (and every later call,
        which is not made) point to it."""
        with self._lock:
            if self._stopped is not None:
                return CallFailed(self._stopped)
            where = redact_urls(self.base_url) if self.base_url else "the default endpoint"
            reason = f"cannot connect to {where} ({_cause(exc)})"
            self._stopped = f"endpoint unreachable (not called again this session): {reason}"
        return CallFailed(reason)

    def _refused(self, said: str) -> CallFailed:
        """A call that ended refused with HTTP 429; the ``REFUSED_IN_A_ROW``-th in a row stops the calls."""
        with self._lock:
            self._refusals += 1
            stop = self._refusals >= REFUSED_IN_A_ROW and self._stopped is None
            if stop:
                self._stopped = (f"endpoint refusing calls (not called again this session): {REFUSED_IN_A_ROW} calls "
                                 "in a row got HTTP 429 after their retries")
        if stop:
            return CallFailed(f"{said}; {REFUSED_IN_A_ROW} calls in a row were refused: the endpoint is not called "
                              "again this session")
        return CallFailed(said)


class ChatFactory(FactoryDefaults):
    """Settings, checks and run params of an LLM provider; ``build`` gives one ``provider_class`` per artifact."""

    provider_class: ClassVar[type[ChatProvider]]
    settings: ClassVar[type[ChatSettings]]

    @property
    def name(self) -> str:
        return self.provider_class.name

    def typed(self, candidate: Candidate) -> ChatSettings:
        """The artifact as its settings Struct (it was checked when it loaded): where its defaults are read from."""
        return msgspec.convert(candidate.document.data, self.settings)

    def check(self, candidate: Candidate) -> None:
        """Placeholders name case fields only, and a route regex compiles."""
        # A judge (an evaluator of kind judge, docs/evaluators.md) may also name the candidate's reply.
        fields = (*CASE_FIELDS, "reply") if candidate.settings.get("kind") == JUDGE_KIND else CASE_FIELDS
        for role, text in candidate.settings["prompt"].items():
            for field in PLACEHOLDER.findall(text):
                if field.split(".")[0] not in fields:
                    raise CandidateError(candidate.path, candidate.document.line_of(["prompt", role]),
                                         f"prompt.{role}: {{{{ {field} }}}} is not a case field (case_id, slice_name, "
                                         "evidence_state, source, input.*)")
        rule = candidate.settings.get("route", {})
        if "regex" in rule:
            try:
                re.compile(rule["regex"])
            except re.error as exc:
                raise CandidateError(candidate.path, candidate.document.line_of(["route", "regex"]),
                                     f"route.regex {rule['regex']!r} is not a regular expression: {exc}") from None

    def warm(self, candidate: Candidate, context: ProviderContext) -> None:
        """When a call may go live (a record mode other than ``none``), start importing the SDK while pytest
        collects: a live one-case session then pays for the import and the collection side by side. (``once`` with
        a recordings file replays only.) Then, for a model without a ``price:`` override, the price list
        (``genai_prices``, when installed), which the record needs at the end: it is read while the calls are in
        flight, not after them."""
        mode = context.record_mode
        if mode is RecordMode.NONE or (
                mode is RecordMode.ONCE and recordings_path(context.experiment_dir, candidate.template_id).exists()):
            return
        priced = "price" in candidate.settings or importlib.util.find_spec("genai_prices") is None
        import_in_background(self.provider_class.sdk, *(() if priced else ("genai_prices",)))

    def ready(self, candidate: Candidate, context: ProviderContext) -> str | None:
        """Why no case of this artifact can be answered, said once before any runs (None: it may answer): nothing
        recorded to replay in record mode ``none`` (a first run: record with ``--llmgate-record=once``), or no API
        key when every call goes live (mode ``all``, or ``once``/``new_episodes`` with nothing recorded yet). A
        replay needs no key. A judge is named as one (``judge claim-judge-v1 (...)``), and the record option as the
        command has it (``context.record_option``)."""
        path = recordings_path(context.experiment_dir, candidate.template_id)
        recorded = path.exists()
        mode = context.record_mode
        option = context.record_option
        key_env = self.typed(candidate).api_key_env
        judge = "judge " if candidate.settings.get("kind") == JUDGE_KIND else ""
        where = f"{judge}{candidate.template_id} ({display_path(candidate.path)})"
        if mode is RecordMode.NONE and not recorded:
            return (f"{where} has no recordings to replay ({display_path(path)} does not exist) and "
                    f"{option}=none only replays: record them once with {option}=once "
                    f"(a live run; needs {key_env})")
        live = mode is RecordMode.ALL or (mode in (RecordMode.ONCE, RecordMode.NEW_EPISODES) and not recorded)
        if live and not os.environ.get(key_env):
            return (f"{key_env} is not set; {where} calls its endpoint live ({option}={mode.value}"
                    + (")" if recorded else ", nothing recorded yet)")
                    + f": set {key_env}, or replay recordings with {option}=none")
        return None

    def build(self, candidate: Candidate, context: ProviderContext) -> ChatProvider:
        path = checked_recordings_path(context.experiment_dir, candidate.template_id)
        return self.provider_class(candidate, self.typed(candidate), Recordings(path, context.record_mode), context.trials,
                                   context.throttles)

    def params(self, candidate: Candidate, context: ProviderContext) -> Mapping[str, str]:
        """Model, trials, record mode and the recordings file's hash: what makes an LLM run reproducible."""
        trials = context.trials if context.trials is not None else self.typed(candidate).trials
        try:
            sha = recordings_sha256(checked_recordings_path(context.experiment_dir, candidate.template_id))
        except CandidateError as exc:  # linked out of the experiment since the cases ran: no record claims it
            raise RecordError(exc.path, exc.line, exc.problem) from None
        return {
            "model": candidate.settings["model"],
            "trials": str(trials),
            "record_mode": context.record_mode.value,
            "recordings_sha256": sha or "none",
        }


def _closing(base: type[Any]) -> type[Any]:
    """The SDK's ``DefaultHttpxClient``, closed when it is collected, as the SDK's own client is: a client handed
    to the SDK is the caller's to close, and a session's provider lives until the process ends."""

    class ClosingClient(base):  # type: ignore[misc]
        def __del__(self) -> None:
            try:
                if not self.is_closed:
                    self.close()
            except Exception:
                pass

    return ClosingClient


def _retries(count: int) -> str:
    return "1 retry" if count == 1 else f"{count} retries"


@functools.cache
def _bounded_stream(http: ModuleType) -> type[Any]:
    """A reply's byte stream for ``http`` (httpx or httpx2, whichever the SDK uses) that stops the reading past the
    attempt's deadline (``http.ReadTimeout``: the SDK retries it as a timeout) or over the size limit
    (``ReplyTooLarge``)."""

    class Bounded(http.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, request: Any, local: Any, limit: int) -> None:
            self._inner, self._request, self._local, self._limit = inner, request, local, limit

        def __iter__(self) -> Any:
            size = 0
            for chunk in self._inner:
                size += len(chunk)
                if size > self._limit:
                    self._local.too_large = True
                    raise ReplyTooLarge()
                if time.perf_counter() > self._local.deadline:
                    raise http.ReadTimeout("the reply was not complete within the timeout", request=self._request)
                yield chunk

        def close(self) -> None:
            self._inner.close()

    return Bounded


def retry_after_wait(headers: Any) -> float | None:
    """The wait a 429 asks for in seconds, read as the SDKs read it: ``retry-after-ms`` when it is a number, else
    ``retry-after`` in seconds or as an HTTP date (RFC 9110); None when there is none, or it cannot be read."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return float(headers.get(name)) / divisor
        except (TypeError, ValueError):
            pass
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds()) if when.tzinfo else None


def token_count(value: Any) -> int | None:
    """A token count from a reply's JSON (None: absent or not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else type(exc).__name__


def _redacted_log(record: logging.LogRecord) -> bool:
    """A log filter: a log line of httpx or an SDK with each URL's credentials and query masked (``redact_urls``):
    under ``--log-level=DEBUG`` they print the URL of each request, and a ``base_url`` may carry a key."""
    message = record.getMessage()
    redacted = redact_urls(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    return True


def _case_id(case: Mapping[str, Any]) -> str | None:
    """The case a request is sent for, as its recording line names it (None: a mapping without one)."""
    case_id = case.get("case_id")
    return case_id if isinstance(case_id, str) else None
