"""Provider ``anthropic_messages``: the Anthropic Messages API, through the official SDK (an optional extra)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.providers.chat import ApiKeyEnv, CallFailed, ChatFactory, ChatProvider, ChatSettings, token_count

#: The Messages API requires ``max_tokens``; an artifact without one gets this.
DEFAULT_MAX_TOKENS = 1024
#: Where the key is read from unless the artifact says ``api_key_env``.
ANTHROPIC_KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicMessagesSettings(ChatSettings, frozen=True, kw_only=True):
    """An ``anthropic_messages`` artifact: the Anthropic Messages API; ``max_tokens`` defaults to 1024,
    ``temperature`` is at most 1."""

    provider: Annotated[Literal["anthropic_messages"], Meta(description="The provider: anthropic_messages.")]
    api_key_env: ApiKeyEnv = ANTHROPIC_KEY_ENV
    temperature: Annotated[float, Meta(ge=0, le=1, description="Sampling temperature.")] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1, description="At most this many output tokens.")] = DEFAULT_MAX_TOKENS


class AnthropicMessages(ChatProvider):
    """``POST {base_url}/v1/messages``: the rendered system prompt as ``system``, the user prompt as one message."""

    name = "anthropic_messages"
    sdk = "anthropic"
    client_class = "Anthropic"
    sampling_keys = ("max_tokens", "temperature")

    def tokens(self, usage: dict[str, Any]) -> dict[str, int | None]:
        """``usage``: input_tokens counts only the uncached input, so the input is it plus
        ``cache_read_input_tokens`` (cached: the cache reads) and ``cache_creation_input_tokens`` (the cache
        writes; ``cache_creation.ephemeral_1h_input_tokens`` of them with a one-hour lifetime, priced higher). The
        Messages API reports no separate reasoning or audio count."""
        uncached = token_count(usage.get("input_tokens"))
        cached = token_count(usage.get("cache_read_input_tokens"))
        written = token_count(usage.get("cache_creation_input_tokens"))
        creation = usage.get("cache_creation")
        hour = token_count(creation.get("ephemeral_1h_input_tokens")) if isinstance(creation, dict) else None
        total = None if uncached is None else uncached + (cached or 0) + (written or 0)
        return {"input_tokens": total, "output_tokens": token_count(usage.get("output_tokens")),
                "cached_tokens": cached, "cache_write_tokens": written, "cache_write_1h_tokens": hour or None}

    def post(self, client: Any, request: Mapping[str, Any]) -> Any:
        # The SDK's low-level call (as for openai_chat): its retries, timeouts, headers and error types, without
        # building a response model.
        content = {m["role"]: m["content"] for m in request["messages"]}  # a user message, after a system one
        body = {"model": self.model, **self.sampling, "messages": [{"role": "user", "content": content["user"]}]}
        if "system" in content:
            body["system"] = content["system"]
        return client.post("/v1/messages", body=body, cast_to=object)

    def content(self, response: Any) -> str:
        try:
            blocks = response["content"]
            texts = [block["text"] for block in blocks if block.get("type") == "text"]
        except (KeyError, TypeError, AttributeError):
            raise CallFailed("malformed response from the endpoint (no content blocks)") from None
        if not all(isinstance(text, str) for text in texts):
            raise CallFailed("malformed response from the endpoint (no text content)")
        return "".join(texts)  # no text block (``content: []``, a tool use only): no text


class AnthropicMessagesFactory(ChatFactory):
    """``anthropic_messages`` settings: the common LLM ones; ``max_tokens`` defaults to 1024, ``temperature`` <= 1."""

    provider_class = AnthropicMessages
    settings = AnthropicMessagesSettings


FACTORY = AnthropicMessagesFactory()
