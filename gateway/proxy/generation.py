"""What differs between the endpoints that generate text, behind one protocol.

Chat completions, the Responses API and legacy completions share the proxy's whole path
(auth, prompt, route, reserve, forward or relay, settle, log, observe); a `Generation` supplies
what is endpoint-specific: the request's shape, how a prompt version applies, the usage block's
shape, the output text, and how its stream reads. `StreamReader` is what a relay feeds events
into (gateway.proxy.sse.StreamState for chat and completions, ResponsesStream for responses).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from gateway.errors import InvalidRequest, error_body
from gateway.proxy.payloads import (
    ChatFields,
    apply_prompt,
    chat_output,
    convert_body,
    embedding_summary,
    estimated_usage,
)
from gateway.proxy.sse import StreamState
from gateway.proxy.stages import ResolvedPrompt, Usage
from gateway.proxy.usage import UsageCheck, UsageFields
from gateway.requestlog.outputs import output_text_of
from gateway.tokens.counting import count_chat_prompt, count_embedding_input, count_text

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "MODERATIONS",
    "ChatGeneration",
    "CompletionsGeneration",
    "Endpoint",
    "Generation",
    "GenerationFields",
    "Reply",
    "StreamReader",
    "read_fields",
]


class GenerationFields(msgspec.Struct):
    """The request fields every generating endpoint acts on."""

    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None


class Reply(msgspec.Struct):
    """The fields of a non-streamed answer the proxy bills and logs from."""

    id: str | None = None
    model: str | None = None
    usage: UsageFields | None = None


class StreamReader(Protocol):
    done: bool
    usage: Usage | None
    usage_problems: tuple[str, ...]
    model: str | None
    response_id: str | None
    first_event_at: float | None

    def feed(self, event: bytes) -> bytes | None:
        """The bytes to forward for one event (None: drop it); MalformedStream if garbage."""
        ...

    @property
    def text(self) -> str:
        """The text produced so far (what evaluators score)."""
        ...

    @property
    def output_text(self) -> str:
        """Everything produced so far as its output tokens are counted (text and tool calls)."""
        ...

    def as_logged(self) -> dict[str, Any]:
        """The stream folded into the one answer the request log keeps."""
        ...


class Endpoint(Protocol):
    """What the proxy needs to forward one call and bill and log its (non-streamed) answer."""

    endpoint: str
    """The request log's endpoint name, also the budget stage's."""
    path: str
    """The upstream path, below the upstream's base URL."""

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        """The answer's facts and its checked usage; msgspec.ValidationError if not one."""
        ...

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        """Usage counted here for a 200 answer without usage; None if it cannot be read."""
        ...

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        """What the log keeps of the answer, and its output text (None: not text)."""
        ...


class Generation(Endpoint, Protocol):
    """An endpoint that generates text: prompts apply, streams relay, evaluators score it."""

    stream_usage_option: bool
    """Streams carry usage only when `stream_options.include_usage` is asked for."""

    def check(self, body: dict[str, Any], fields: GenerationFields) -> None:
        """Refuse a request without what the endpoint needs (400 naming the field)."""
        ...

    def accept_prompt(self) -> None:
        """Refuse X-Sluice-Prompt (400) where the endpoint has no messages to render into."""
        ...

    def apply_prompt(self, body: dict[str, Any], resolved: ResolvedPrompt) -> None: ...

    def counted_usage(self, model: str, sent: dict[str, Any], output: str) -> Usage:
        """Usage counted here, for a stream that carried none (never bill zero)."""
        ...

    def open_stream(self, client_wants_usage: bool) -> StreamReader: ...

    def stream_error(self, message: str) -> bytes:
        """The event that tells the client its stream failed mid-way."""
        ...


def read_fields(body: dict[str, Any]) -> GenerationFields:
    return convert_body(body, GenerationFields)


def _data_error(message: str) -> bytes:
    return b"data: " + error_body(message, "api_error", "upstream_error") + b"\n\n"


def _reply_of(body: Any) -> tuple[Reply, UsageCheck | None]:
    reply = msgspec.convert(body, Reply)
    return reply, reply.usage.check() if reply.usage is not None else None


class ChatGeneration:
    endpoint = "chat.completions"
    path = "/chat/completions"
    stream_usage_option = True

    def check(self, body: dict[str, Any], fields: GenerationFields) -> None:
        # Typed once here, so a malformed message or tool is a 400 naming it (e.g. messages[0]).
        if not convert_body(body, ChatFields).messages:
            raise InvalidRequest(
                "The 'messages' field must be a non-empty list of messages.", param="messages"
            )

    def accept_prompt(self) -> None:
        pass

    def apply_prompt(self, body: dict[str, Any], resolved: ResolvedPrompt) -> None:
        apply_prompt(body, resolved)

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        return _reply_of(body)

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        return chat_output(body)

    def counted_usage(self, model: str, sent: dict[str, Any], output: str) -> Usage:
        prompt = count_chat_prompt(
            model, sent.get("messages") or [], sent.get("tools"), sent.get("functions")
        )
        return Usage(prompt, count_text(model, output), estimated=True)

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        return estimated_usage(self.endpoint, model, msgspec.json.encode(sent), answer)

    def open_stream(self, client_wants_usage: bool) -> StreamReader:
        return StreamState(client_wants_usage)

    def stream_error(self, message: str) -> bytes:
        return _data_error(message)


class CompletionsGeneration:
    """Legacy `/v1/completions`: a raw `prompt`, choices with `text`; no prompt registry."""

    endpoint = "completions"
    path = "/completions"
    stream_usage_option = True

    def check(self, body: dict[str, Any], fields: GenerationFields) -> None:
        prompt = body.get("prompt")
        if not isinstance(prompt, str | list):
            raise InvalidRequest(
                "The 'prompt' field must be a string, a list of strings, or token ids.",
                param="prompt",
            )

    def apply_prompt(self, body: dict[str, Any], resolved: ResolvedPrompt) -> None:
        self.accept_prompt()

    def accept_prompt(self) -> None:
        raise InvalidRequest(
            "Prompts from the registry apply to /v1/chat/completions and /v1/responses; "
            "/v1/completions takes a raw 'prompt'. Drop X-Sluice-Prompt or call one of those.",
            param="X-Sluice-Prompt",
        )

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        return _reply_of(body)

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        return body, output_text_of(body)

    def counted_usage(self, model: str, sent: dict[str, Any], output: str) -> Usage:
        prompt = count_embedding_input(model, sent.get("prompt") or "")
        return Usage(prompt, count_text(model, output), estimated=True)

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        try:
            texts = [choice.get("text") or "" for choice in answer.get("choices") or ()]
            return self.counted_usage(model, sent, "".join(texts))
        except (AttributeError, TypeError, ValueError):
            return None

    def open_stream(self, client_wants_usage: bool) -> StreamReader:
        return StreamState(client_wants_usage, legacy=True)

    def stream_error(self, message: str) -> bytes:
        return _data_error(message)


class EmbeddingsEndpoint:
    endpoint = "embeddings"
    path = "/embeddings"

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        return _reply_of(body)

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        return estimated_usage(self.endpoint, model, msgspec.json.encode(sent), answer)

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        return embedding_summary(body)


class ModerationsEndpoint:
    """Moderations are free upstream: no usage, no price, nothing reserved."""

    endpoint = "moderations"
    path = "/moderations"

    def read_reply(self, body: Any) -> tuple[Reply, UsageCheck | None]:
        return msgspec.convert(body, Reply), None

    def estimated_usage(self, model: str, sent: dict[str, Any], answer: Any) -> Usage | None:
        return None

    def summarize(self, body: Any) -> tuple[Any, str | None]:
        return body, None


CHAT = ChatGeneration()
COMPLETIONS = CompletionsGeneration()
EMBEDDINGS = EmbeddingsEndpoint()
MODERATIONS = ModerationsEndpoint()
