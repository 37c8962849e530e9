"""The remembered text counts behind prompt counting: the same answer as a fresh count, always."""

from __future__ import annotations

from gateway.tokens.counting import TextCounts, count_chat_prompt, count_text
from gateway.tokens.encodings import get_encoding

ENCODE = get_encoding("o200k_base").encode_ordinary
PARAGRAPH = (
    "Sluice sits between applications and their model providers. It forwards every request, "
    "counts its tokens exactly, and settles the real cost once the answer is back. "
)


class CountingEncode:
    """o200k's encoder, recording which texts it was asked to encode."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str) -> list[int]:
        self.texts.append(text)
        return ENCODE(text)


def test_a_remembered_count_is_the_fresh_count() -> None:
    counts = TextCounts(ENCODE, min_chars=0)
    texts = [PARAGRAPH * n for n in range(1, 30)] + ["<|endoftext|> as text", "", "é" * 300]
    first = [counts(t) for t in texts]
    again = [counts(t) for t in texts]
    assert first == again == [len(ENCODE(t)) for t in texts]


def test_a_growing_conversation_encodes_only_its_new_message() -> None:
    encode = CountingEncode()
    counts = TextCounts(encode)
    turns = [f"Turn {i}: " + PARAGRAPH * (i + 1) for i in range(5)]
    for n in range(1, len(turns) + 1):
        encode.texts.clear()
        total = sum(counts(t) for t in turns[:n])
        assert total == sum(len(ENCODE(t)) for t in turns[:n])
        assert encode.texts == [turns[n - 1]]


def test_the_memory_is_bounded_by_characters_and_counts_stay_right_after_forgetting() -> None:
    counts = TextCounts(ENCODE, max_chars=2_000, min_chars=0)
    texts = [f"{i} " + PARAGRAPH * (1 + i % 3) for i in range(200)]
    for text in texts:
        assert counts(text) == len(ENCODE(text))
    assert counts._chars <= 2_000
    assert counts._chars == sum(len(t) for t in counts._counts)
    for text in texts:  # most were forgotten: counted afresh, the same
        assert counts(text) == len(ENCODE(text))


def test_a_text_too_large_to_keep_is_counted_and_not_kept() -> None:
    counts = TextCounts(ENCODE, max_chars=1_000, min_chars=0)
    big = PARAGRAPH * 10  # above a quarter of the bound
    assert counts(big) == len(ENCODE(big))
    assert counts._chars == 0


def test_short_texts_are_encoded_every_time() -> None:
    encode = CountingEncode()
    counts = TextCounts(encode, min_chars=64)
    assert counts("hello") == counts("hello") == 1
    assert encode.texts == ["hello", "hello"]


def test_chat_prompt_counts_are_the_same_on_the_first_and_the_later_calls() -> None:
    system = {"role": "system", "content": "You are a careful assistant. " + PARAGRAPH}
    user = {"role": "user", "content": PARAGRAPH * 40, "name": "bench"}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": PARAGRAPH,
                "parameters": {"properties": {"q": {"type": "string", "description": PARAGRAPH}}},
            },
        }
    ]
    fresh = TextCounts(ENCODE, max_chars=0)  # keeps nothing: every count is a fresh one
    expected = 3 + (3 + fresh("system") + fresh(system["content"]))
    expected += 3 + fresh("user") + fresh(user["content"]) + fresh("bench") + 1
    first = count_chat_prompt("gpt-4o-mini", [system, user])
    assert first == expected
    assert count_chat_prompt("gpt-4o-mini", [system, user]) == first
    with_tools = count_chat_prompt("gpt-4o", [system, user], tools)
    assert count_chat_prompt("gpt-4o", [system, user], tools) == with_tools > first
    assert count_text("gpt-4", PARAGRAPH * 3) == len(
        get_encoding("cl100k_base").encode(PARAGRAPH * 3)
    )
