"""How client commands print: rich tables on a terminal, plain tab-separated lines otherwise.

A pipe or a file gets no escape codes and no box drawing: one header line, then one line per
row, cells separated by tabs (whitespace inside a cell collapsed), so `cut -f` and `awk -F'\t'`
read it. `--json` on the list and show verbs prints the API's own JSON instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

__all__ = ["cell", "is_terminal", "print_fields", "print_json", "print_table", "when"]


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def cell(value: Any, spec: str = "") -> str:
    """A value as a table cell: `-` for missing, formatted with `spec` otherwise."""
    if value is None:
        return "-"
    return format(value, spec)


def _plain(text: str) -> str:
    return " ".join(text.split()) or "-"


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO | None = None
) -> None:
    out = out or sys.stdout
    rows = list(rows)
    if is_terminal(out):
        table = Table(header_style="bold", box=None, pad_edge=False)
        for index, name in enumerate(columns):
            # Nothing is cut to fit the terminal: a narrow column wraps, and the first (an id
            # or a name, what people copy) keeps its full width.
            widest = max((len(row[index]) for row in rows), default=0) if index == 0 else None
            table.add_column(name, overflow="fold", min_width=widest)
        for row in rows:
            table.add_row(*row)
        Console(file=out, highlight=False).print(table, crop=False)
        return
    out.write("\t".join(columns) + "\n")
    for row in rows:
        out.write("\t".join(_plain(c) for c in row) + "\n")


def print_fields(fields: Iterable[tuple[str, str]], out: TextIO | None = None) -> None:
    """One record as `name value` lines (a two-column table on a terminal)."""
    out = out or sys.stdout
    if is_terminal(out):
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for name, value in fields:
            table.add_row(name, value)
        Console(file=out, highlight=False).print(table)
        return
    for name, value in fields:
        out.write(f"{name}\t{_plain(value)}\n")


def print_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def when(value: str | None) -> str:
    """An API timestamp to the second, in UTC, for a table cell."""
    if not value:
        return "-"
    return value[:19].replace("T", " ") + "Z"
