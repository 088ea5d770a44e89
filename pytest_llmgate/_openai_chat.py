"""Provider ``openai_chat``: any OpenAI-compatible chat endpoint, through the official SDK (an optional extra)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._candidate import Candidate
from ._errors import CandidateError
from ._recordings import Recordings
from ._vocab import RecordMode
from ._render import MissingField, placeholders, render
from ._vocab import Route

SAMPLING = ("temperature", "seed", "max_tokens")


class CallFailed(Exception):
    """The endpoint did not give a usable reply; the message is one line and holds no secret."""


class OpenAIChat:
    """Renders the artifact's prompt from a case, asks the endpoint (or the recording), reads the route."""

    concurrent = True

    def __init__(self, candidate: Candidate, recordings: Recordings, trials: int | None) -> None:
        settings = candidate.settings
        self.template_id = candidate.template_id
        self.model: str = settings["model"]
        self.base_url: str | None = settings.get("base_url")
        self.api_key_env: str = settings.get("api_key_env", "OPENAI_API_KEY")
        self.sampling = {key: settings[key] for key in SAMPLING if key in settings}
        self.timeout = float(settings.get("timeout", 60))
        self.max_retries = int(settings.get("max_retries", 2))
        self.http_transport: str = settings.get("http_transport", "auto")
        self.messages: Mapping[str, str] = settings["prompt"]
        self.route_rule: Mapping[str, str] = settings.get("route", {"json_key": "route"})
        self.trials = trials if trials is not None else int(settings.get("trials", 1))
        self.recordings = recordings
        self._pattern = re.compile(self.route_rule["regex"]) if "regex" in self.route_rule else None
        self._client: Any = None
        self._lock = threading.Lock()
        self._down: str | None = None

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
        return {"provider": "openai_chat", "model": self.model, **self.sampling, "messages": messages, "trial": trial}

    def route(self, case: Mapping[str, Any], trial: int = 0) -> Route:
        request = self.request(case, trial)
        reply = self.recordings.reply(request, lambda: self._call(request))
        return self.read_route(reply)

    def read_route(self, reply: str) -> Route:
        if self._pattern is not None:
            match = self._pattern.search(reply)
            value: Any = match.group(1) if match and match.groups() else (match.group(0) if match else None)
            if value is None:
                raise CallFailed(f"unreadable reply: no match for {self._pattern.pattern!r}")
        else:
            key = self.route_rule.get("json_key", "route")
            try:
                parsed = json.loads(_unfenced(reply))
            except ValueError:
                raise CallFailed("unreadable reply: not a JSON object") from None
            if not isinstance(parsed, dict) or key not in parsed:
                raise CallFailed(f"unreadable reply: no {key!r} in the JSON object")
            value = parsed[key]
        try:
            return Route(value.strip().upper() if isinstance(value, str) else value)
        except ValueError:
            raise CallFailed(f"unreadable reply: route {value!r} is not SERVE or ABSTAIN") from None

    def _client_or_new(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError:
                    raise CallFailed(
                        "provider openai_chat needs the openai SDK: pip install 'pytest-llmgate[openai]'"
                    ) from None
                api_key = os.environ.get(self.api_key_env)
                if not api_key:
                    raise CallFailed(f"environment variable {self.api_key_env} (api_key_env) is not set")
                from ._transport import stdlib_http_client, uses_stdlib

                # The SDK's documented hook for a transport; its requests, retries and errors stay its own.
                http_client = stdlib_http_client(openai) if uses_stdlib(self.http_transport, self.base_url) else None
                self._client = openai.OpenAI(
                    api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries,
                    http_client=http_client,
                )
            return self._client

    def _call(self, request: Mapping[str, Any]) -> str:
        if self._down is not None:
            raise CallFailed(f"endpoint unreachable (not called again this session): {self._down}")
        client = self._client_or_new()
        import openai

        try:
            # The SDK's documented low-level call: the same retries, timeouts and error types as
            # ``chat.completions.create``, without its per-call transformation of the parameters and the
            # construction of a response model (together about half of the SDK's CPU per call).
            response = client.post(
                "/chat/completions", body={"model": self.model, "messages": request["messages"], **self.sampling},
                cast_to=object,
            )
        except openai.APITimeoutError:
            raise CallFailed(f"timed out after {self.timeout:g}s and {self.max_retries} retries") from None
        except openai.APIConnectionError as exc:
            self._down = f"cannot connect to {self.base_url or 'the default endpoint'} ({_cause(exc)})"
            raise CallFailed(self._down) from None
        except openai.APIStatusError as exc:
            raise CallFailed(f"HTTP {exc.status_code} from the endpoint after {self.max_retries} retries") from None
        except (openai.APIError, ValueError) as exc:
            raise CallFailed(f"malformed response from the endpoint ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001 - a transport error the SDK let through unwrapped
            if "timeout" in type(exc).__name__.lower():
                raise CallFailed(f"timed out after {self.timeout:g}s and {self.max_retries} retries") from None
            raise CallFailed(f"request failed ({type(exc).__name__})") from None
        try:
            content = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise CallFailed("malformed response from the endpoint (no choices[0].message)") from None
        if not isinstance(content, str):
            raise CallFailed("malformed response from the endpoint (no message content)")
        return content


def _unfenced(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped[4:] if stripped.lower().startswith("json") else stripped
    return stripped


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else type(exc).__name__


def build_openai_chat(candidate: Candidate, experiment_dir: Path, mode: RecordMode, trials: int | None) -> OpenAIChat:
    """The provider for an ``openai_chat`` artifact; a prompt without messages is an error naming the artifact."""
    prompt = candidate.settings.get("prompt")
    if not isinstance(prompt, Mapping) or "user" not in prompt:
        raise CandidateError(candidate.path, candidate.line_of("prompt"),
                             "provider openai_chat needs prompt.user (and optionally prompt.system)")
    for role, text in prompt.items():
        for field in placeholders(text):
            root = field.split(".")[0]
            if root not in ("case_id", "slice_name", "evidence_state", "source", "input"):
                raise CandidateError(candidate.path, candidate.line_of("prompt"),
                                     f"prompt.{role}: {{{{ {field} }}}} is not a case field (case_id, slice_name, "
                                     "evidence_state, source, input.*)")
    base_url = candidate.settings.get("base_url")
    if candidate.settings.get("http_transport") == "stdlib" and not str(base_url or "").lower().startswith("http://"):
        raise CandidateError(candidate.path, candidate.line_of("http_transport"),
                             "http_transport: stdlib speaks plain http only; it needs an http:// base_url "
                             f"(got {base_url or 'none: the SDK default, https'})")
    recordings = Recordings(experiment_dir / "recordings" / f"{candidate.template_id}.jsonl", mode)
    return OpenAIChat(candidate, recordings, trials)
