"""`sluice demo`: the gateway on its embedded default, in front of the fake upstream, driven
by the official openai SDK, so a newcomer sees it work with no provider key."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

import httpx
import openai

from gateway.app import create_app
from gateway.db.migrate import prepare_database
from gateway.settings import Settings
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import ServerThread

__all__ = ["run_demo"]

ADMIN_TOKEN = "demo-admin-token"  # noqa: S105 (a throwaway token for a throwaway gateway)


def run_demo(settings: Settings) -> int:
    with tempfile.TemporaryDirectory() as folder, FakeUpstreamThread() as fake:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        settings = dataclasses.replace(
            settings,
            database=dataclasses.replace(settings.database, url=database, auto_migrate=True),
            admin=dataclasses.replace(settings.admin, token=ADMIN_TOKEN),
            upstream=dataclasses.replace(
                settings.upstream, base_url=fake.base_url, api_key="sk-fake-upstream"
            ),
        )
        problem = asyncio.run(prepare_database(settings.database))
        if problem:
            raise RuntimeError(problem)
        with ServerThread(create_app(settings)) as server:
            admin = httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            key = admin.post("/admin/keys", json={"name": "demo"}).json()
            print(f"gateway  {server.base_url}/v1   (fake upstream at {fake.base_url})")
            print(f"key      {key['key']}   (created with POST /admin/keys)\n")
            client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key["key"])
            chat = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "What is Sluice?"}],
                extra_headers={"X-Sluice-User": "demo-user", "X-Sluice-Tag-Feature": "demo"},
            )
            print(f"chat      -> {chat.choices[0].message.content!r}")
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Stream this, please"}],
                stream=True,
            )
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
            )
            print(f"stream    -> {text!r}")
            vectors = client.embeddings.create(model="text-embedding-3-small", input="hello")
            print(f"embedding -> {len(vectors.data[0].embedding)} dimensions")
            models = [model.id for model in client.models.list()]
            print(f"models    -> {', '.join(models)}\n")
            rows: list[dict[str, object]] = []
            deadline = time.monotonic() + 5
            while len(rows) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
                rows = admin.get("/admin/responses").json()["data"]
            print("request log (GET /admin/responses):")
            print(f"  {'endpoint':<17} {'model':<24} {'status':>6} {'tokens':>7} {'ms':>7}  stream")
            for row in reversed(rows):
                print(
                    f"  {row['endpoint']!s:<17} {row['model_requested']!s:<24} "
                    f"{row['status_code']!s:>6} {row['total_tokens']!s:>7} "
                    f"{float(str(row['latency_ms'])):>7.1f}  {row['streamed']}"
                )
            admin.close()
    return 0
