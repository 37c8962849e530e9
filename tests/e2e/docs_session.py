"""Run one markdown file's examples in order, as a reader pasting them into one terminal would.

Shell blocks run in one long-lived bash (`set -euo pipefail`, aliases on), so a variable, an
export, an alias or a file one block makes is there for the next. Python blocks run in one
long-lived Python process with one namespace, so a later block may use the `client` an earlier
one made; each starts with the environment the shell has at that moment (what the shell
blocks exported). Nothing flows back from Python to the shell.

Each block is written to a file padded with blank lines, so bash's `line N:` and Python's
tracebacks give the line in the markdown file.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.e2e.docs_blocks import Block

__all__ = ["BlockResult", "DocsSession"]

_KERNEL = """
import json, os, sys, traceback
# Loaded while the shell blocks before the first python block run; the blocks import it again.
import openai
mark = sys.argv[1]
namespace = {"__name__": "__main__"}
for request in sys.stdin:
    request = json.loads(request)
    with open(request["env"], "rb") as env_file:
        pairs = [item.split(b"=", 1) for item in env_file.read().split(b"\\0") if b"=" in item]
    os.environ.clear()
    os.environ.update({key.decode(): value.decode() for key, value in pairs})
    status = 0
    try:
        with open(request["code"]) as code_file:
            exec(compile(code_file.read(), request["name"], "exec"), namespace)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"\\n{mark} {status}", flush=True)
"""


@dataclass(frozen=True, slots=True)
class BlockResult:
    status: int
    """The block's exit status; -1 when it did not finish within the timeout."""
    output: str
    """stdout and stderr, interleaved as printed."""


class _Process:
    """A child whose merged stdout/stderr is read line by line by a thread, up to a marker."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: close() ends what a block left behind
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def until(self, mark: str, timeout: float) -> BlockResult:
        """Everything printed up to the line `mark STATUS`; the exit code if the child ended."""
        output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                return BlockResult(-1, "".join(output) + f"\n[no end within {timeout:g} s]")
            if line is None:
                return BlockResult(self.proc.wait() or 1, "".join(output))
            if line.startswith(mark):
                text = "".join(output)
                # The marker is printed after a newline of its own; drop that one again.
                return BlockResult(int(line.split()[1]), text[:-1] if text.endswith("\n") else text)
            output.append(line)

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.close()  # the end of input: bash and the kernel exit by themselves
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # A block may have left a process in the background (`cmd &`): end the session's group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self._reader.join(timeout=5)
        if not self._reader.is_alive():  # else a straggler holds the pipe: closing would block
            self.proc.stdout.close()


class DocsSession:
    """One shell and (on first use) one Python process for the blocks of one markdown file."""

    def __init__(
        self, workdir: Path, env: dict[str, str], *, python: bool, timeout: float = 30.0
    ) -> None:
        self.workdir = workdir
        self.env = env
        self.timeout = timeout
        self._files = workdir / ".docs-test"
        self._files.mkdir(parents=True, exist_ok=True)
        self._mark = f"__docs_test_{secrets.token_hex(8)}__"
        self._shell = _Process(["bash", "--noprofile", "--norc"], env, workdir)
        self._shell.send("set -euo pipefail\nshopt -s expand_aliases\n")
        self._python: _Process | None = None
        if python:  # started now, so its start overlaps the shell blocks before the first one
            kernel = self._files / "kernel.py"
            kernel.write_text(_KERNEL)
            argv = [sys.executable, "-u", str(kernel), self._mark]
            self._python = _Process(argv, env, workdir)
        self._count = 0

    def _write(self, block: Block, code: str, suffix: str) -> Path:
        self._count += 1
        path = self._files / f"{self._count:03d}-{block.path.name}-L{block.line}{suffix}"
        # Padding: line numbers in errors are the markdown file's (the code starts after the fence).
        path.write_text("\n" * block.line + code)
        return path

    def run(self, block: Block, code: str) -> BlockResult:
        """Run `code` (the block's text, after the harness's rewrites) and wait for its end."""
        if block.language == "shell":
            script = self._write(block, code, ".sh")
            self._shell.send(
                f"source {_quote(script)} < /dev/null\nprintf '\\n%s 0\\n' {self._mark}\n"
            )
            return self._shell.until(self._mark, self.timeout)
        env_file = self._files / f"{self._count + 1:03d}.env"
        self._shell.send(f"env -0 > {_quote(env_file)}\nprintf '\\n%s 0\\n' {self._mark}\n")
        dumped = self._shell.until(self._mark, self.timeout)
        if dumped.status != 0:
            return BlockResult(dumped.status, f"the shell session had ended:\n{dumped.output}")
        script = self._write(block, code, ".py")
        assert self._python is not None, "python blocks need DocsSession(python=True)"
        request = {"env": str(env_file), "code": str(script), "name": str(block.path)}
        self._python.send(json.dumps(request) + "\n")
        return self._python.until(self._mark, self.timeout)

    def close(self) -> None:
        self._shell.close()
        if self._python is not None:
            self._python.close()


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"
