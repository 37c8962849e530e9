"""Log records are one line whatever their values hold; tracebacks stay readable, indented."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from gateway.logformat import FORMAT, SafeFormatter, escape_controls


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter(FORMAT))
    logger = logging.getLogger("sluice.test.logformat")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def test_control_characters_in_args_and_message_are_escaped(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("budget %s\r\nFORGED", "eve\r\n2026 ERROR sluice: x\x00\x1b[31m\x85\u2028")
    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        "budget eve\\r\\n2026 ERROR sluice: x\\x00\\x1b[31m\\x85\\u2028\\r\\nFORGED"
    )


def test_a_traceback_keeps_its_lines_but_none_starts_a_record(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    try:
        raise ValueError("bad\r\n2026-01-01 00:00:00,000 ERROR sluice: FORGED")
    except ValueError:
        logger.exception("failed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("failed")
    assert rest and all(line.startswith("    ") for line in rest)
    assert any("ValueError: bad\\r" in line for line in rest)


def test_plain_text_is_unchanged() -> None:
    assert escape_controls("model gpt-4o — ok") == "model gpt-4o — ok"
