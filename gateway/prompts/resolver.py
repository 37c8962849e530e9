"""The proxy's prompt stage: which version a call gets, rendered with the call's variables.

Order: a pinned version, else a label, else the prompt's running A/B test, else `production`,
else `latest`. Everything comes from the in-process cache.
"""

from __future__ import annotations

import re

from gateway.errors import PromptNotFound, VersionNotFound
from gateway.prompts.cache import PromptCache, PromptSnapshot
from gateway.prompts.spec import SLUG_PATTERN
from gateway.proxy.context import CallContext
from gateway.proxy.stages import ResolvedPrompt

__all__ = ["PromptResolver"]

DEFAULT_LABEL = "production"
_SLUG = re.compile(SLUG_PATTERN.strip("^$"))
MAX_SLUG = 100


class PromptResolver:
    def __init__(self, cache: PromptCache) -> None:
        self._cache = cache

    async def resolve(self, call: CallContext) -> ResolvedPrompt:
        selector = call.prompt
        slug = selector.slug or ""
        # A name no prompt can have is refused without a lookup (or a cache entry).
        valid = len(slug) <= MAX_SLUG and _SLUG.fullmatch(slug) is not None
        snapshot = await self._cache.snapshot(slug) if valid else None
        if snapshot is None:
            raise PromptNotFound(
                f"No prompt with slug '{slug[:100]}'. Create it with POST /admin/prompts.",
                param="X-Sluice-Prompt",
            )
        if snapshot.archived:
            raise PromptNotFound(f"Prompt '{slug}' is archived.", param="X-Sluice-Prompt")
        test_id = variant = None
        if selector.version is not None:
            number = selector.version
        elif selector.label is not None:
            number = _labelled(snapshot, selector.label)
        elif snapshot.test is not None:
            chosen = snapshot.test.assign(call.user)
            number, test_id, variant = chosen.version, snapshot.test.id, chosen.name
        elif DEFAULT_LABEL in snapshot.labels:
            number = snapshot.labels[DEFAULT_LABEL]
        elif snapshot.latest is not None:
            number = snapshot.latest
        else:
            raise _no_versions(slug)
        compiled = await self._cache.version(snapshot, number)
        if compiled is None:
            raise VersionNotFound(
                f"Prompt '{slug}' has no version {number}"
                f"{f' (latest is {snapshot.latest})' if snapshot.latest else ''}.",
                param="X-Sluice-Prompt-Version",
            )
        variables = selector.variables or {}
        return ResolvedPrompt(
            slug=slug,
            version=compiled.version,
            version_id=compiled.id,
            messages=compiled.render(variables),
            variables=variables,
            model=compiled.model,
            params=compiled.params,
            ab_test_id=test_id,
            ab_variant=variant,
        )


def _no_versions(slug: str) -> VersionNotFound:
    return VersionNotFound(
        f"Prompt '{slug}' has no versions yet: create one with "
        f"POST /admin/prompts/{slug}/versions.",
        param="X-Sluice-Prompt",
    )


def _labelled(snapshot: PromptSnapshot, label: str) -> int:
    if label == "latest":
        if snapshot.latest is None:
            raise _no_versions(snapshot.slug)
        return snapshot.latest
    number = snapshot.labels.get(label)
    if number is None:
        known = ", ".join(["latest", *sorted(snapshot.labels)])
        raise VersionNotFound(
            f"Prompt '{snapshot.slug}' has no label '{label}' (labels: {known}).",
            param="X-Sluice-Prompt-Label",
        )
    return number
