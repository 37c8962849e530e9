"""validate_specs: every problem in a set of specs is found and named."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators.runner import EvaluatorSpec, InvalidSpecsError, SpecProblem, validate_specs


def spec(spec_id: str, key: str = "json_valid", **fields: Any) -> EvaluatorSpec:
    return EvaluatorSpec(id=spec_id, evaluator_key=key, **fields)


def problems(specs: list[EvaluatorSpec]) -> list[str]:
    with pytest.raises(InvalidSpecsError) as caught:
        validate_specs(specs)
    return [str(problem) for problem in caught.value.problems]


def test_valid_specs_become_waves_in_dependency_order() -> None:
    plan = validate_specs(
        [
            spec("c", depends_on=["b"]),
            spec("b", depends_on=["a"]),
            spec("a"),
            spec("d"),
            spec("e", depends_on=["a", "d"]),
        ]
    )
    assert [[step.spec.id for step in wave] for wave in plan.waves] == [
        ["a", "d"],
        ["b", "e"],
        ["c"],
    ]
    assert [step.threshold for step in plan.steps] == [1.0] * 5


def test_unknown_evaluator_lists_known_keys() -> None:
    [message] = problems([spec("x", "exact")])
    assert message.startswith("evaluator 'x': evaluator_key: unknown evaluator 'exact'; known")
    assert "exact_match" in message


def test_ranges_and_weights() -> None:
    assert problems(
        [spec("t", threshold=1.5), spec("s", sampling_rate=-0.1), spec("w", weight=-1)]
    ) == [
        "evaluator 't': threshold: must be a number within [0, 1], got 1.5",
        "evaluator 's': sampling_rate: must be a number within [0, 1], got -0.1",
        "evaluator 'w': weight: must be a number ≥ 0, got -1",
    ]


def test_config_errors_name_the_config_field() -> None:
    [message] = problems([spec("re", "regex", config={"pattern": "(oops"})])
    assert message.startswith(
        "evaluator 're': config.pattern: not a valid regular expression: missing )"
    )
    [unknown] = problems([spec("ex", "exact_match", config={"valeu": "x"})])
    assert unknown == (
        "evaluator 'ex': config.valeu: unknown config field 'valeu' (did you mean 'value'?); "
        "allowed fields: case_sensitive, value"
    )


def test_missing_dependency() -> None:
    assert problems([spec("a", depends_on=["ghost"])]) == [
        "evaluator 'a': depends_on: depends on 'ghost', which is not defined"
    ]


def test_depends_on_must_not_be_a_bare_string() -> None:
    assert problems([spec("a"), spec("b", depends_on="a")]) == [
        "evaluator 'b': depends_on: must be a list of spec ids, not a string"
    ]


def test_cycles_are_named_with_their_path() -> None:
    assert problems(
        [spec("a", depends_on=["b"]), spec("b", depends_on=["c"]), spec("c", depends_on=["a"])]
    ) == ["evaluator 'a': depends_on: dependency cycle: a -> b -> c -> a"]
    assert problems([spec("self", depends_on=["self"])]) == [
        "evaluator 'self': depends_on: dependency cycle: self -> self"
    ]


def test_inline_cannot_wait_for_queued() -> None:
    assert problems([spec("q", run_mode="queued"), spec("i", depends_on=["q"])]) == [
        "evaluator 'i': depends_on: runs inline but depends on 'q', which is queued"
    ]
    validate_specs([spec("i"), spec("q", run_mode="queued", depends_on=["i"])])


def test_duplicate_ids_and_bad_run_mode() -> None:
    assert problems([spec("a"), spec("a"), spec("m", run_mode="later")]) == [
        "evaluator 'a': id: is used by more than one evaluator",
        "evaluator 'm': run_mode: must be 'inline' or 'queued', got 'later'",
    ]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidSpecsError) as caught:
        validate_specs([spec("a", "nope"), spec("b", threshold=2), spec("c", depends_on=["z"])])
    assert [p.spec_id for p in caught.value.problems] == ["a", "b", "c"]
    assert str(caught.value).startswith("invalid evaluator specs:\n- evaluator 'a': ")
    assert SpecProblem(None, "id", "x").__str__() == "evaluators: id: x"
