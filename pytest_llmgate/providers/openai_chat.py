"""Provider ``openai_chat``: any OpenAI-compatible chat endpoint, through the official SDK (an optional extra)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.providers.chat import ApiKeyEnv, CallFailed, ChatFactory, ChatProvider, ChatSettings, token_count

#: Where the key is read from unless the artifact says ``api_key_env``.
OPENAI_KEY_ENV = "OPENAI_API_KEY"


class OpenAIChatSettings(ChatSettings, frozen=True, kw_only=True):
    """An ``openai_chat`` artifact: any OpenAI-compatible chat endpoint; the LLM settings plus ``seed``."""

    provider: Annotated[Literal["openai_chat"], Meta(description="The provider: openai_chat.")]
    api_key_env: ApiKeyEnv = OPENAI_KEY_ENV
    seed: Annotated[int, Meta(description="The sampling seed, for endpoints that honour one.")] | UnsetType = UNSET


class OpenAIChat(ChatProvider):
    """The Chat Completions API: ``POST {base_url}/chat/completions`` with the rendered system and user messages."""

    name = "openai_chat"
    sdk = "openai"
    client_class = "OpenAI"
    sampling_keys = ("temperature", "seed", "max_tokens")

    def tokens(self, usage: dict[str, Any]) -> dict[str, int | None]:
        """``usage``: prompt_tokens (cached ones included), completion_tokens (reasoning ones included), and the
        ``prompt_tokens_details.cached_tokens`` and ``.audio_tokens``, ``completion_tokens_details.reasoning_tokens``
        and ``.audio_tokens`` when present."""
        prompt, completion = (details if isinstance(details := usage.get(key), dict) else {}
                              for key in ("prompt_tokens_details", "completion_tokens_details"))
        return {
            "input_tokens": token_count(usage.get("prompt_tokens")),
            "output_tokens": token_count(usage.get("completion_tokens")),
            "cached_tokens": token_count(prompt.get("cached_tokens")),
            "reasoning_tokens": token_count(completion.get("reasoning_tokens")),
            "input_audio_tokens": token_count(prompt.get("audio_tokens")) or None,
            "output_audio_tokens": token_count(completion.get("audio_tokens")) or None,
        }

    def post(self, client: Any, request: Mapping[str, Any]) -> Any:
        # The SDK's documented low-level call: the same retries, timeouts and error types as
        # ``chat.completions.create``, without its per-call transformation of the parameters and the
        # construction of a response model (together about half of the SDK's CPU per call).
        return client.post(
            "/chat/completions", body={"model": self.model, "messages": request["messages"], **self.sampling},
            cast_to=object,
        )

    def content(self, response: Any) -> str:
        try:
            content = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise CallFailed("malformed response from the endpoint (no choices[0].message)") from None
        if content is None:  # a refusal (its ``refusal`` field) or a tool call: no text
            return ""
        if not isinstance(content, str):
            raise CallFailed("malformed response from the endpoint (no message content)")
        return content


class OpenAIChatFactory(ChatFactory):
    """``openai_chat`` settings: the common LLM ones plus ``seed``; ``api_key_env`` defaults to OPENAI_API_KEY."""

    provider_class = OpenAIChat
    settings = OpenAIChatSettings


FACTORY = OpenAIChatFactory()
