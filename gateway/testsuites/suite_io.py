"""A suite as a file: JSONL (one case per line, evaluators included) or CSV (one case per row).

JSONL lines are `TestCaseSpec` objects. CSV columns: `name`, `expected_output`, `tags`
(separated by `;` or `,`), `messages` and `evaluators` (JSON arrays), `variables` (a JSON
object) and any number of `var.NAME` columns, one variable each (a value that parses as JSON
is taken as such, else as text). Parsing checks every line before anything is written, and
the error names the line. A CSV field is at most `MAX_FIELD_CHARS` long (the whole file is
bounded by SLUICE_MAX_BODY_BYTES). On export, a cell a spreadsheet would run as a formula
(starting with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, as OWASP advises for CSV;
import takes it back off.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

import msgspec

from gateway.errors import InvalidRequest, describe_validation_error
from gateway.input_bounds import check_admin_value, decode_json
from gateway.testsuites.records import TestCaseRecord
from gateway.testsuites.specs import TestCaseSpec

__all__ = ["SuiteFormat", "dump_suite", "parse_suite"]

SuiteFormat = Literal["jsonl", "csv"]
MAX_LINES = 10_000
MAX_FIELD_CHARS = 128 * 1024  # csv's own default limit, now a 400 instead of a csv.Error
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FIXED_COLUMNS = ("name", "expected_output", "tags", "messages", "evaluators", "variables")


def parse_suite(text: str, fmt: SuiteFormat) -> list[TestCaseSpec]:
    specs = _parse_jsonl(text) if fmt == "jsonl" else _parse_csv(text)
    if not specs:
        raise InvalidRequest("The file holds no test cases.", param="body")
    if len(specs) > MAX_LINES:
        raise InvalidRequest(f"A suite file holds at most {MAX_LINES} cases.", param="body")
    seen: set[str] = set()
    for number, spec in enumerate(specs, start=1):
        if spec.name in seen:
            raise InvalidRequest(
                f"Case {number}: the name '{spec.name}' appears twice.", param="name"
            )
        seen.add(spec.name)
    return specs


def _spec(value: Any, where: str) -> TestCaseSpec:
    try:
        check_admin_value(value)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}", param=exc.param) from None
    try:
        return msgspec.convert(value, TestCaseSpec)
    except msgspec.ValidationError as exc:
        message, param = describe_validation_error(exc)
        raise InvalidRequest(f"{where}: {message}.", param=param) from None


def _parse_jsonl(text: str) -> list[TestCaseSpec]:
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value = decode_json(line, what=f"Line {number}")
        specs.append(_spec(value, f"Line {number}"))
    return specs


def _json_cell(raw: str, column: str, number: int, default: Any) -> Any:
    if not raw.strip():
        return default
    try:
        return decode_json(raw, what=f"Row {number}: column '{column}'")
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, param=column) from None


def _variable(raw: str) -> Any:
    try:
        return decode_json(raw)
    except InvalidRequest:
        return raw


def _parse_csv(text: str) -> list[TestCaseSpec]:
    try:
        return _parse_csv_rows(text)
    except csv.Error as exc:
        # field_size_limit is process-wide in the csv module: checked here instead, per file.
        raise InvalidRequest(
            f"The CSV is malformed: {exc}. A field holds at most {MAX_FIELD_CHARS} characters.",
            param="body",
        ) from None


def _parse_csv_rows(text: str) -> list[TestCaseSpec]:
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "name" not in columns:
        raise InvalidRequest("The CSV needs a 'name' column.", param="body")
    unknown = [c for c in columns if c not in _FIXED_COLUMNS and not c.startswith("var.")]
    if unknown:
        raise InvalidRequest(
            f"Unknown CSV columns: {', '.join(unknown)} (known: {', '.join(_FIXED_COLUMNS)}, "
            "var.NAME).",
            param="body",
        )
    specs = []
    for number, cells in enumerate(reader, start=2):  # row 1 is the header
        row = {column: _uncell(raw) for column, raw in cells.items()}
        variables = dict(_json_cell(row.get("variables") or "", "variables", number, {}) or {})
        for column, raw in row.items():
            if column and column.startswith("var.") and raw is not None and raw != "":
                variables[column[4:]] = _variable(raw)
        tags_cell = (row.get("tags") or "").replace(";", ",")
        value = {
            "name": row.get("name") or "",
            "variables": variables,
            "messages": _json_cell(row.get("messages") or "", "messages", number, []),
            "expected_output": row.get("expected_output") or None,
            "tags": [tag.strip() for tag in tags_cell.split(",") if tag.strip()],
            "evaluators": _json_cell(row.get("evaluators") or "", "evaluators", number, []),
        }
        specs.append(_spec(value, f"Row {number}"))
    return specs


def _evaluator_specs(case: TestCaseRecord) -> list[dict[str, Any]]:
    by_id = {e.id: e.evaluator_key for e in case.evaluators}
    return [
        {
            "evaluator_key": e.evaluator_key,
            "config": e.config,
            "weight": e.weight,
            "threshold": e.threshold,
            "run_mode": e.run_mode,
            "sampling_rate": e.sampling_rate,
            # Ids do not travel between suites: dependencies are written by evaluator key.
            "depends_on": [by_id.get(d, d) for d in e.depends_on],
            "enabled": e.enabled,
        }
        for e in case.evaluators
    ]


def _exported(case: TestCaseRecord) -> dict[str, Any]:
    return {
        "name": case.name,
        "variables": case.variables,
        "messages": case.messages,
        "expected_output": case.expected_output,
        "tags": case.tags,
        "evaluators": _evaluator_specs(case),
    }


def _guarded(text: str) -> bool:
    # A cell that starts with apostrophes before a formula character is guarded too, so that
    # import can take exactly one apostrophe back off: the round trip loses nothing.
    return text.lstrip("'").startswith(_FORMULA_STARTS)


def _cell(text: str) -> str:
    return "'" + text if _guarded(text) else text


def _uncell(text: Any) -> Any:
    guarded = isinstance(text, str) and text.startswith("'") and _guarded(text[1:])
    return text[1:] if guarded else text


def dump_suite(cases: list[TestCaseRecord], fmt: SuiteFormat) -> str:
    if fmt == "jsonl":
        return "".join(msgspec.json.encode(_exported(c)).decode() + "\n" for c in cases)
    out = io.StringIO()
    # RFC 4180 line ends: with "\n" the writer would leave a field holding a bare CR unquoted.
    writer = csv.DictWriter(out, fieldnames=list(_FIXED_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for case in cases:
        item = _exported(case)
        row = {
            "name": item["name"],
            "expected_output": item["expected_output"] or "",
            "tags": ";".join(item["tags"]),
            "messages": msgspec.json.encode(item["messages"]).decode(),
            "evaluators": msgspec.json.encode(item["evaluators"]).decode(),
            "variables": msgspec.json.encode(item["variables"]).decode(),
        }
        writer.writerow({column: _cell(text) for column, text in row.items()})
    return out.getvalue()
