"""Docs as tests: every bash/sh and python block of README.md and docs/*.md runs, in order.

Each markdown file gets a fresh gateway (SQLite, embedded mode, the fake upstream as provider)
and one shell session (see tests/e2e/docs_session.py). The blocks see the environment the docs
assume: `SLUICE_URL=http://127.0.0.1:8080`, `SLUICE_ADMIN_TOKEN=change-me` (the token the
README exports), the test venv's `sluice` on PATH and `EDITOR=true` (an editor that changes
nothing). The gateway listens on 127.0.0.1:8080, where the docs say. Only two rewrites are made
to a block's text, both of a location and nothing else:

- when port 8080 is taken on this machine, `localhost:8080` and `127.0.0.1:8080` become the
  address of the gateway the test could get (and `SLUICE_URL` says the same);
- `.venv/bin/` becomes the directory of the Python running the tests (the test venv).

A block passes when it exits 0 (bash with `set -euo pipefail`), printed no OpenAI-shaped error
(`"error": {...}`: `curl -s` exits 0 on a 404), and, for a python block that uses the openai
SDK, made at least one call the gateway served. Output shown in comments need not match.
Between blocks the harness waits until the gateway has written its request log (rows are
written behind the response), as it would have by the time a person pastes the next block.

A block that cannot run (a server in the foreground, `pip install`, Docker) is marked in the
markdown: `<!-- docs-test: skip (the reason) -->` on the line before its fence.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from sluice_devtools.fake_upstream import FakeUpstreamThread
from sluice_devtools.server_thread import ServerThread, free_port
from tests.conftest import _migrate as migrate
from tests.conftest import make_settings
from tests.e2e.docs_blocks import Block, documentation_files, parse_blocks
from tests.e2e.docs_session import BlockResult, DocsSession

DOCS_PORT = 8080
DOCS_ADMIN_TOKEN = "change-me"
_DOCS_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):8080\b")
_VENV_BIN = re.compile(r"(?<![\w/.-])\.venv/bin/")
_OPENAI_ERROR = re.compile(r'"error"\s*:\s*\{')
_SETTLE_TIMEOUT_S = 10.0


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def rewrite(code: str, port: int) -> str:
    """The block as the harness runs it: only the gateway's port and the venv's path change."""
    if port != DOCS_PORT:
        code = _DOCS_ADDRESS.sub(f"127.0.0.1:{port}", code)
    return _VENV_BIN.sub(f"{Path(sys.executable).parent}/", code)


class DocsGateway:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=10)

    def metrics(self) -> dict[str, float]:
        """Sample name with labels -> value, from the gateway's own /metrics."""
        samples: dict[str, float] = {}
        for line in self.http.get("/metrics").text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def api_calls(self) -> float:
        """Requests the gateway served on /v1 (the request log counts each one it logs)."""
        return sum(v for k, v in self.metrics().items() if k.startswith("sluice_requests_total{"))

    def settle(self) -> None:
        """Wait until the request log holds every request served so far.

        Evaluations are not waited for (their queue depth in /metrics is refreshed only now and
        then): an example may show scores, but none may depend on them being there yet.
        """
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while (rows := self.metrics().get("sluice_log_buffer_rows", 0)) > 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the request log still holds {rows:g} unwritten rows")
            time.sleep(0.02)

    def close(self) -> None:
        self.http.close()
        self.server.stop()


def _serve(database_url: str, upstream: FakeUpstreamThread, port: int) -> DocsGateway:
    settings = make_settings(database_url, upstream.base_url, SLUICE_ADMIN_TOKEN=DOCS_ADMIN_TOKEN)
    return DocsGateway(ServerThread(create_app(settings), port=port).start())


@pytest.fixture
def docs_gateway(fake_upstream: FakeUpstreamThread, sqlite_url: str) -> Iterator[DocsGateway]:
    """A fresh gateway and database for each markdown file: every guide stands on its own."""
    port = DOCS_PORT if _port_is_free(DOCS_PORT) else free_port()
    gateway = _serve(sqlite_url, fake_upstream, port)
    yield gateway
    gateway.close()


@pytest.fixture(scope="module")
def scratch_gateway(
    fake_upstream: FakeUpstreamThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DocsGateway]:
    """One gateway for the harness's own tests, which need no fresh database.

    Never on 8080: the docs' own gateways get that port, and these tests see the rewrite of
    `localhost:8080` to wherever the gateway is.
    """
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('docs') / 'sluice.db'}"
    migrate(url)
    gateway = _serve(url, fake_upstream, free_port())
    yield gateway
    gateway.close()


def _environment(gateway: DocsGateway) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "OPENAI_"))}
    env.update(
        SLUICE_URL=gateway.server.base_url,
        SLUICE_ADMIN_TOKEN=DOCS_ADMIN_TOKEN,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        EDITOR="true",
        NO_COLOR="1",
        TERM="dumb",
    )
    return env


def _failure(block: Block, index: int, total: int, code: str, result: BlockResult, why: str) -> str:
    output = result.output.strip() or "(nothing)"
    return (
        f"{block.where}: {block.language} block {index} of {total} {why}\n"
        f"--- the block, as run ---\n{code.rstrip()}\n"
        f"--- what it printed ---\n{output}\n"
        "Fix the example (the docs are the product), or, if it cannot run by its nature, put "
        "<!-- docs-test: skip (why) --> on the line before its fence."
    )


def _judge(
    block: Block, result: BlockResult, calls_before: float, calls_after: float
) -> str | None:
    if result.status == -1:
        return "did not finish"
    if result.status != 0:
        return f"exited with status {result.status}"
    if _OPENAI_ERROR.search(result.output):
        return "printed an error from the gateway"
    if block.language == "python" and "openai" in block.code and calls_after <= calls_before:
        return "uses the openai SDK but made no call the gateway served"
    return None


def run_examples(
    path: Path, gateway: DocsGateway, workdir: Path, block_timeout: float = 30.0
) -> str | None:
    """Run the file's blocks in order; None when all passed, else why the first one failed."""
    blocks = parse_blocks(path)
    runnable = [b for b in blocks if b.skip_reason is None]
    if not runnable:
        return f"{path.name}: no runnable example found; is the parser broken?"
    python = any(b.language == "python" for b in runnable)
    session = DocsSession(workdir, _environment(gateway), python=python, timeout=block_timeout)
    ran = 0
    try:
        for index, block in enumerate(runnable, start=1):
            code = rewrite(block.code, gateway.server.port)
            before, started = gateway.api_calls(), time.monotonic()
            result = session.run(block, code)
            took = time.monotonic() - started
            gateway.settle()
            why = _judge(block, result, before, gateway.api_calls())
            if why is not None:
                return _failure(block, index, len(runnable), code, result, why)
            ran += 1
            print(f"--- {block.where}: {block.language} block {index}, ok in {took:.1f} s ---")
            print(result.output)
    finally:
        session.close()
    skipped = len(blocks) - ran
    print(f"{path.name}: {ran} blocks ran, {skipped} marked skip")
    assert ran == len(runnable), "every block not marked skip must have run"
    return None


@pytest.mark.parametrize("path", documentation_files(), ids=lambda p: p.name)
def test_every_example_runs(path: Path, docs_gateway: DocsGateway, tmp_path: Path) -> None:
    failure = run_examples(path, docs_gateway, tmp_path / "work")
    if failure is not None:
        pytest.fail(failure, pytrace=False)


# The harness's own behaviour, on small markdown files of its own (~~~ fences: readable here).


def _markdown(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guide.md"
    path.write_text(textwrap.dedent(text).replace("~~~", "```"))
    return path


def test_blocks_share_one_shell_and_one_python_namespace(
    scratch_gateway: DocsGateway, tmp_path: Path
) -> None:
    path = _markdown(
        tmp_path,
        """\
        ~~~bash
        export GREETING=hello
        alias shout='tr a-z A-Z'
        COUNT=2
        echo made > made.txt
        ~~~
        ~~~sh
        echo "$GREETING $COUNT $(cat made.txt)" | shout
        ~~~
        ~~~python
        import os
        seen = os.environ["GREETING"]
        ~~~
        ~~~python
        assert seen == "hello", seen
        ~~~
        """,
    )
    assert run_examples(path, scratch_gateway, tmp_path / "work") is None


def test_a_failing_block_is_named_with_its_line_and_output(
    scratch_gateway: DocsGateway, tmp_path: Path
) -> None:
    path = _markdown(
        tmp_path,
        """\
        # Guide

        ~~~bash
        echo fine
        ~~~

        ~~~bash
        echo about to fail
        false
        echo never
        ~~~
        ~~~bash
        echo not reached
        ~~~
        """,
    )
    failure = run_examples(path, scratch_gateway, tmp_path / "work")
    assert failure is not None
    assert f"{path}:7: shell block 2 of 3 exited with status 1" in failure
    printed = failure.split("--- what it printed ---")[1]
    assert "about to fail" in printed and "never" not in printed


def test_an_unset_variable_fails_the_block(scratch_gateway: DocsGateway, tmp_path: Path) -> None:
    path = _markdown(tmp_path, "~~~bash\ncurl -s $SLUICE_URL/admin/ab-tests/$TEST_ID\n~~~\n")
    failure = run_examples(path, scratch_gateway, tmp_path / "work")
    assert failure is not None and "TEST_ID: unbound variable" in failure


def test_only_the_gateway_address_and_the_venv_are_rewritten() -> None:
    code = "curl localhost:8080/x http://127.0.0.1:8080/v1 h:80800 .venv/bin/sluice x/.venv/bin/y"
    venv = Path(sys.executable).parent
    assert rewrite(code, 5555) == (
        f"curl 127.0.0.1:5555/x http://127.0.0.1:5555/v1 h:80800 {venv}/sluice x/.venv/bin/y"
    )
    assert rewrite(code, DOCS_PORT) == code.replace(".venv/bin/sluice", f"{venv}/sluice")
    assert rewrite("localhost:80800 localhost:8080", 5555) == "localhost:80800 127.0.0.1:5555"


def test_an_error_from_the_gateway_fails_the_block(
    scratch_gateway: DocsGateway, tmp_path: Path
) -> None:
    path = _markdown(
        tmp_path,
        """\
        ~~~bash
        curl -s localhost:8080/admin/prompts/nope -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN"
        ~~~
        """,
    )
    failure = run_examples(path, scratch_gateway, tmp_path / "work")
    assert failure is not None and "printed an error from the gateway" in failure
    assert "prompt_not_found" in failure


def test_an_sdk_block_must_reach_the_gateway(scratch_gateway: DocsGateway, tmp_path: Path) -> None:
    path = _markdown(tmp_path, "~~~python\nfrom openai import OpenAI\nOpenAI(api_key='x')\n~~~\n")
    failure = run_examples(path, scratch_gateway, tmp_path / "work")
    assert failure is not None and "made no call the gateway served" in failure


def test_a_python_traceback_points_into_the_markdown(
    scratch_gateway: DocsGateway, tmp_path: Path
) -> None:
    path = _markdown(
        tmp_path, "text\n\n~~~python\nx = 1\nraise ValueError('broken example')\n~~~\n"
    )
    failure = run_examples(path, scratch_gateway, tmp_path / "work")
    assert failure is not None and f'File "{path}", line 5' in failure
    assert "ValueError: broken example" in failure


def test_a_block_that_never_ends_fails_and_leaves_nothing_running(
    scratch_gateway: DocsGateway, tmp_path: Path
) -> None:
    path = _markdown(
        tmp_path,
        """\
        ~~~bash
        sleep 300 &
        echo $! > server.pid
        ~~~
        ~~~bash
        sleep 300  # as a server in the foreground would
        ~~~
        """,
    )
    failure = run_examples(path, scratch_gateway, tmp_path / "work", block_timeout=2.0)
    assert failure is not None and "shell block 2 of 2 did not finish" in failure
    assert "docs-test: skip (why)" in failure
    left = Path(f"/proc/{(tmp_path / 'work' / 'server.pid').read_text().strip()}")
    deadline = time.monotonic() + 10
    while left.exists() and "zombie" not in _state(left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left.exists() or "zombie" in _state(left), "a background process was left running"


def _state(proc: Path) -> str:
    try:
        return (proc / "status").read_text().split("State:")[1].splitlines()[0]
    except (OSError, IndexError):
        return "zombie"  # gone between the two looks
