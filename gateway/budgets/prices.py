"""The prices Sluice ships with: OpenAI's standard-tier list prices, USD per million tokens.

Columns: input, cached input (None: the model has no cached-input discount, so cached tokens
cost the input price), output, and the most output tokens the model can produce (None: unknown,
so only the configured default cap bounds a request). Override any row, or add models, in
SLUICE_CONFIG `[pricing."model"]` or with `PUT /admin/pricing`; those always win over this table.

Dated snapshots (`gpt-4o-2024-08-06`, `gpt-3.5-turbo-0125`) are priced as their base model
unless listed here: snapshots that cost something else are listed explicitly.
"""

from __future__ import annotations

__all__ = ["SHIPPED_PRICES"]

# model: (input, cached_input, output, max_output_tokens)
SHIPPED_PRICES: dict[str, tuple[str, str | None, str, int | None]] = {
    # GPT-5 family
    "gpt-5.1": ("1.25", "0.125", "10.00", 128_000),
    "gpt-5.1-chat-latest": ("1.25", "0.125", "10.00", 16_384),
    "gpt-5": ("1.25", "0.125", "10.00", 128_000),
    "gpt-5-mini": ("0.25", "0.025", "2.00", 128_000),
    "gpt-5-nano": ("0.05", "0.005", "0.40", 128_000),
    "gpt-5-chat-latest": ("1.25", "0.125", "10.00", 16_384),
    # GPT-4.1 family
    "gpt-4.1": ("2.00", "0.50", "8.00", 32_768),
    "gpt-4.1-mini": ("0.40", "0.10", "1.60", 32_768),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40", 32_768),
    # GPT-4o family
    "gpt-4o": ("2.50", "1.25", "10.00", 16_384),
    "gpt-4o-2024-05-13": ("5.00", None, "15.00", 4_096),
    "gpt-4o-mini": ("0.15", "0.075", "0.60", 16_384),
    "chatgpt-4o-latest": ("5.00", None, "15.00", 16_384),
    # reasoning models (reasoning tokens are billed as output)
    "o1": ("15.00", "7.50", "60.00", 100_000),
    "o1-mini": ("1.10", "0.55", "4.40", 65_536),
    "o1-pro": ("150.00", None, "600.00", 100_000),
    "o3": ("2.00", "0.50", "8.00", 100_000),
    "o3-mini": ("1.10", "0.55", "4.40", 100_000),
    "o3-pro": ("20.00", None, "80.00", 100_000),
    "o4-mini": ("1.10", "0.275", "4.40", 100_000),
    # older chat models still served
    "gpt-4-turbo": ("10.00", None, "30.00", 4_096),
    "gpt-4": ("30.00", None, "60.00", 8_192),
    "gpt-3.5-turbo": ("0.50", None, "1.50", 4_096),
    # embeddings (no output tokens)
    "text-embedding-3-small": ("0.02", None, "0", None),
    "text-embedding-3-large": ("0.13", None, "0", None),
    "text-embedding-ada-002": ("0.10", None, "0", None),
}
