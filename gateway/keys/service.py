"""Gateway keys: issue, list, revoke, and authenticate on the request path from a cache.

Authentication costs one SHA-256 and one dict lookup in the steady state. Entries live for
`ttl` seconds; revocation and creation publish a change notice so every replica drops the entry
at once, and while notices cannot travel (Redis subscription down) entries live one second.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.changes import FORGET_ALL, ChangeFeed
from gateway.db.base import utcnow
from gateway.db.models import ApiKey
from gateway.errors import InvalidApiKey, NotFound
from gateway.ids import KEY_PREFIX, new_id, new_key_secret

__all__ = ["IssuedKey", "KeyInfo", "KeyService"]

TOPIC = "keys"
UNHEALTHY_TTL = 1.0


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    info: KeyInfo
    secret: str


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits: a plain SHA-256 is not guessable and keeps lookups O(1).
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, row.created_at, row.revoked_at)


class KeyService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], changes: ChangeFeed, ttl: float = 30.0
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._ttl = ttl
        self._cache: dict[str, tuple[KeyInfo | None, float]] = {}
        changes.subscribe(TOPIC, self._forget)

    def _forget(self, secret_hash: str) -> None:
        if secret_hash == FORGET_ALL:
            self._cache.clear()
        else:
            self._cache.pop(secret_hash, None)

    async def authenticate(self, authorization: str | None) -> KeyInfo:
        if not authorization:
            raise InvalidApiKey(
                "Missing API key: send 'Authorization: Bearer sk-sluice-...' with a key "
                "created through POST /admin/keys."
            )
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise InvalidApiKey("Malformed Authorization header: expected 'Bearer <key>'.")
        secret_hash = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(secret_hash)
        ttl = self._ttl if self._changes.healthy else UNHEALTHY_TTL
        if cached is not None and now - cached[1] < ttl:
            info = cached[0]
        else:
            info = await self._load(secret_hash)
            if len(self._cache) > 100_000:  # unknown keys must not grow the cache forever
                self._cache.clear()
            self._cache[secret_hash] = (info, now)
        if info is None:
            hint = "" if secret.startswith(KEY_PREFIX) else " Gateway keys start with 'sk-sluice-'."
            raise InvalidApiKey(f"Incorrect API key provided.{hint}")
        if info.revoked_at is not None:
            raise InvalidApiKey("This API key has been revoked.")
        return info

    async def _load(self, secret_hash: str) -> KeyInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
        return None if row is None else _info(row)

    async def create(self, name: str) -> IssuedKey:
        secret = new_key_secret()
        row = ApiKey(
            id=new_id(),
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 4],
            secret_hash=hash_secret(secret),
            created_at=utcnow(),
        )
        async with self._sessions.begin() as session:
            session.add(row)
        await self._changes.publish(TOPIC, row.secret_hash)  # drops cached "unknown key"
        return IssuedKey(_info(row), secret)

    async def list(self, *, limit: int, after: str | None) -> list[KeyInfo]:
        query = select(ApiKey).order_by(ApiKey.id.desc()).limit(limit)
        if after:
            query = query.where(ApiKey.id < after)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_info(row) for row in rows]

    async def get(self, key_id: str) -> KeyInfo | None:
        async with self._sessions() as session:
            row = await session.get(ApiKey, key_id)
        return None if row is None else _info(row)

    async def revoke(self, key_id: str) -> KeyInfo:
        async with self._sessions.begin() as session:
            row = await session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"No key with id '{key_id}'.", param="id")
            if row.revoked_at is None:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow())
                )
                await session.refresh(row)
            secret_hash = row.secret_hash
            info = _info(row)
        await self._changes.publish(TOPIC, secret_hash)
        return info
