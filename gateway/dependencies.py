"""How one plugin hands what it builds at startup to the plugins and routes after it.

A plugin is constructed in `create_app()` with the plugins it depends on as typed arguments,
but what they build (a database engine, a budget service) exists only once their lifespans
have run. Each plugin therefore exposes a `Started[T]` per thing it builds: filled for the
length of its lifespan, read by the plugins listed after it and by its `Provide`rs. Reading one
that is not filled is a `MissingDependency` naming the plugin to add, at startup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["MissingDependency", "Started"]

T = TypeVar("T")


class MissingDependency(RuntimeError):
    """A plugin needs something that no plugin started before it provides."""


class Started(Generic[T]):
    """What `provider` builds in its lifespan (`what`, in words), while that lifespan runs."""

    __slots__ = ("_fix", "_value", "provider", "what")

    def __init__(self, provider: str, what: str, *, fix: str | None = None) -> None:
        """`fix` says how to wire it when listing `provider` first is not the answer."""
        self.provider = provider
        self.what = what
        self._fix = fix
        self._value: T | None = None

    def require(self, needed_by: str) -> T:
        if self._value is None:
            fix = self._fix or f"list {self.provider} before {needed_by}"
            raise MissingDependency(
                f"{needed_by} needs {self.what}, but {self.provider} has not provided it: "
                f"{fix} in create_app() (gateway/app.py)."
            )
        return self._value

    @property
    def value(self) -> T:
        """The value, for routes and tests (the app has started)."""
        return self.require("this caller")

    @contextmanager
    def serving(self, value: T) -> Iterator[T]:
        """Provide `value` until the block ends (the provider's lifespan)."""
        self._value = value
        try:
            yield value
        finally:
            self._value = None
