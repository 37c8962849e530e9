"""Count prompt and embedding tokens the way OpenAI bills them, before the request goes upstream.

Chat rules follow the OpenAI cookbook "How to count tokens with tiktoken", whose figures it checks
against the API's own `usage`: every message costs 3 framing tokens plus its role and content, a
`name` costs 1 more, and the reply is primed with 3. Tool and function definitions use the
cookbook's per-family constants (`num_tokens_for_tools`). Images use OpenAI's tile formula.

Text is encoded with `encode_ordinary`: a client that sends "<|endoftext|>" is billed for it as
plain text, and must not crash the counter (tiktoken's `encode` raises on special tokens).

Inputs are JSON-shaped, as decoded from the request body: messages and tools are mappings.

Counts of texts are remembered (`TextCounts`): a conversation resends every earlier message and a
prompt version prepends the same system message to every call, so on a typical request only the
newest message is encoded. A text's count depends on nothing but the text and the encoding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.tokens.encodings import EncodingName, encoding_name_for_model, get_encoding

__all__ = [
    "ASSUMED_IMAGE_SIZE",
    "ChatFormat",
    "TextCounts",
    "count_chat_prompt",
    "count_embedding_input",
    "count_text",
    "image_tokens",
]

Encode = Callable[[str], list[int]]
Count = Callable[[str], int]
JsonObject = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """How one model family frames chat messages and tool definitions, in tokens."""

    # Every message is framed <|start|>{role}<|message|>{content}<|end|>: 3 tokens + role.
    tokens_per_message: int
    tokens_per_name: int
    reply_priming: int  # every reply is primed with <|start|>assistant<|message|>
    # Tool definitions are rendered into the system message as a TypeScript-like namespace;
    # the cookbook fits these constants to the API's usage figures, per encoding family.
    func_init: int  # per function
    prop_init: int  # per function that has properties
    prop_key: int  # per property
    enum_init: int  # per property with an enum
    enum_item: int  # per enum value
    func_end: int  # once, if any functions are defined


_FORMATS: dict[EncodingName, ChatFormat] = {
    # gpt-4o, gpt-4o-mini (and, by shared tokenizer, the later o200k models)
    "o200k_base": ChatFormat(3, 1, 3, 7, 3, 3, -3, 3, 12),
    # gpt-4, gpt-3.5-turbo
    "cl100k_base": ChatFormat(3, 1, 3, 10, 3, 3, -3, 3, 12),
}

LOW_DETAIL_IMAGE_TOKENS = 85
IMAGE_BASE_TOKENS = 85
IMAGE_TILE_TOKENS = 170
# An image URL does not carry the image's size, and we do not fetch or decode images on the hot
# path, so a high/auto-detail image of unknown size is billed as if it were 1024x1024 (765 tokens,
# OpenAI's own worked example). Larger images cost up to 1105 tokens; smaller ones as few as 255.
ASSUMED_IMAGE_SIZE = (1024, 1024)


class TextCounts:
    """Token counts of recently seen texts under one encoding, least recently used forgotten.

    Bounded by the characters it keeps (`max_chars`), not by entries, so a few huge prompts
    cannot hold the memory of thousands. Texts shorter than `min_chars` are encoded every time:
    tiktoken is as fast as the lookup for them. Texts longer than a quarter of the bound are
    never kept.
    """

    def __init__(self, encode: Encode, *, max_chars: int = 8_000_000, min_chars: int = 64) -> None:
        self._encode = encode
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._chars = 0
        self.max_chars = max_chars
        self.min_chars = min_chars

    def __call__(self, text: str) -> int:
        size = len(text)
        if size < self.min_chars:
            return len(self._encode(text))
        counts = self._counts
        found = counts.get(text)
        if found is not None:
            try:
                counts.move_to_end(text)
            except KeyError:  # forgotten meanwhile by a caller on another thread
                pass
            return found
        found = len(self._encode(text))
        if size <= self.max_chars // 4:
            counts[text] = found
            self._chars += size
            while self._chars > self.max_chars:
                old, _ = counts.popitem(last=False)
                self._chars -= len(old)
        return found


_COUNTS: dict[EncodingName, TextCounts] = {}


def _counter(encoding_name: EncodingName) -> TextCounts:
    counts = _COUNTS.get(encoding_name)
    if counts is None:
        counts = _COUNTS[encoding_name] = TextCounts(get_encoding(encoding_name).encode_ordinary)
    return counts


def count_text(model: str, text: str) -> int:
    """Tokens in `text` under `model`'s tokenizer, with special tokens counted as plain text."""
    return _counter(encoding_name_for_model(model))(text)


def image_tokens(detail: str = "auto", width: int | None = None, height: int | None = None) -> int:
    """Tokens for one image: 85 at low detail; otherwise 85 + 170 per 512px tile after scaling.

    High detail scales the image to fit 2048x2048, then its shortest side down to 768px (images
    are never scaled up), and counts the 512px tiles covering it. "auto" is billed as high. With
    no size given, the image is assumed to be `ASSUMED_IMAGE_SIZE`.
    """
    if detail == "low":
        return LOW_DETAIL_IMAGE_TOKENS
    if width is None or height is None:
        width, height = ASSUMED_IMAGE_SIZE
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    # Integer arithmetic: float scaling can land a hair above a tile edge and add a tile.
    if max(width, height) > 2048:
        longest = max(width, height)
        width, height = width * 2048 // longest, height * 2048 // longest
    if min(width, height) > 768:
        shortest = min(width, height)
        width, height = width * 768 // shortest, height * 768 // shortest
    tiles = -(-width // 512) * -(-height // 512)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * tiles


def _content_tokens(content: Any, count: Count) -> int:
    """Tokens for a message's `content`: a string, or a list of typed parts."""
    if isinstance(content, str):
        return count(content)
    tokens = 0
    for part in content:
        kind = part.get("type")
        if kind == "text":
            tokens += count(part.get("text") or "")
        elif kind == "refusal":
            tokens += count(part.get("refusal") or "")
        elif kind == "image_url":
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            tokens += image_tokens(detail or "auto")
        # input_audio and file parts are billed from data we do not decode here; they count 0.
    return tokens


def _call_tokens(call: JsonObject, count: Count) -> int:
    """Tokens for one function call made by the assistant: its name and its JSON arguments."""
    return count(call.get("name") or "") + count(call.get("arguments") or "")


def _message_tokens(message: JsonObject, count: Count, fmt: ChatFormat) -> int:
    tokens = fmt.tokens_per_message + count(message.get("role") or "")
    content = message.get("content")
    if content:
        tokens += _content_tokens(content, count)
    name = message.get("name")
    if name:
        tokens += count(name) + fmt.tokens_per_name
    refusal = message.get("refusal")
    if refusal:
        tokens += count(refusal)
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function")
        if function:
            tokens += _call_tokens(function, count)
    function_call = message.get("function_call")  # the pre-tools spelling of tool_calls
    if function_call:
        tokens += _call_tokens(function_call, count)
    # tool_call_id is routing metadata the model does not read as text; it is not counted.
    return tokens


def _without_final_period(text: str) -> str:
    # The rendered definitions drop one trailing period; the cookbook counts them that way.
    return text.removesuffix(".")


def _schema_type(schema: JsonObject) -> str:
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return "any"


def _function_definition_tokens(function: JsonObject, count: Count, fmt: ChatFormat) -> int:
    """Tokens for one function definition, by the cookbook's method.

    Only top-level properties are counted, as in the cookbook: nested object schemas, anyOf and
    $ref contribute just their property's name, type and description, so very deep schemas are
    undercounted. Descriptions are optional here (the cookbook assumes them).
    """
    tokens = fmt.func_init
    name = function.get("name") or ""
    description = _without_final_period(function.get("description") or "")
    tokens += count(f"{name}:{description}" if description else name)
    parameters = function.get("parameters") or {}
    properties: JsonObject = parameters.get("properties") or {}
    if properties:
        tokens += fmt.prop_init
        for key, schema in properties.items():
            tokens += fmt.prop_key
            enum = schema.get("enum")
            if enum is not None:
                tokens += fmt.enum_init
                for item in enum:
                    tokens += fmt.enum_item + count(str(item))
            line = f"{key}:{_schema_type(schema)}"
            description = _without_final_period(schema.get("description") or "")
            tokens += count(f"{line}:{description}" if description else line)
    return tokens


def count_chat_prompt(
    model: str,
    messages: Sequence[JsonObject],
    tools: Sequence[JsonObject] | None = None,
    functions: Sequence[JsonObject] | None = None,
) -> int:
    """Prompt tokens OpenAI bills for a chat completion request.

    `messages`, `tools` and `functions` are the request body's fields as decoded JSON. Only
    `type: "function"` tools are counted; `functions` is the legacy list of bare definitions.
    """
    encoding_name = encoding_name_for_model(model)
    count: Count = _counter(encoding_name)
    fmt = _FORMATS[encoding_name]
    tokens = fmt.reply_priming
    for message in messages:
        tokens += _message_tokens(message, count, fmt)
    definitions = [t["function"] for t in tools or () if t.get("type") == "function"]
    definitions.extend(functions or ())
    if definitions:
        tokens += fmt.func_end
        for function in definitions:
            tokens += _function_definition_tokens(function, count, fmt)
    return tokens


def count_embedding_input(
    model: str, input: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]]
) -> int:
    """Tokens OpenAI bills for an embeddings request's `input`.

    `input` is a string, a list of strings, one pre-tokenized input (a list of token ids), or a
    list of them; pre-tokenized inputs cost exactly their length.
    """
    if isinstance(input, str):
        return count_text(model, input)
    count = _counter(encoding_name_for_model(model))
    tokens = 0
    for item in input:
        if isinstance(item, str):
            tokens += count(item)
        elif isinstance(item, int):  # one flat list of token ids: each element is a token
            tokens += 1
        elif isinstance(item, Sequence):
            tokens += len(item)
        else:
            raise TypeError(f"embedding input items must be str, int or list, not {type(item)}")
    return tokens
