"""How the process logs: one record per line, whatever the values in it contain.

Messages carry values from clients and from the admin API (a budget's scope_value, a model
name, an upstream's error text). A CR or LF in one of them would start what looks like a new
record in the log, so the formatter escapes every control character of the rendered record,
once, here, rather than at each call site. A traceback keeps its lines, each indented, so that
only a record's first line starts in column 0.
"""

from __future__ import annotations

import logging
import re
import sys

__all__ = ["FORMAT", "SafeFormatter", "configure_logging", "escape_controls"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with each control character written as its escape (`\\n`, `\\x00`, `\\u2028`)."""
    return _CONTROLS.sub(_escape, text)


def _indented(block: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in block.rstrip("\n").split("\n"))


class SafeFormatter(logging.Formatter):
    """A `logging.Formatter` whose records are one line, plus indented traceback lines."""

    def format(self, record: logging.LogRecord) -> str:
        # As logging.Formatter.format, but the traceback is neither taken from nor left in
        # `record.exc_text`, which other handlers' formatters share.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = escape_controls(self.formatMessage(record))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + _indented(record.exc_text)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def configure_logging(level: str = "INFO", stream: object = None) -> None:
    """The process's logging: warnings from libraries, `level` from Sluice, on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(SafeFormatter(FORMAT))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("sluice").setLevel(level)
