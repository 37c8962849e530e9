"""Checking a set of evaluator specs and ordering them by dependency, before anything runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from evaluators.base import Evaluator, EvaluatorConfigError
from evaluators.registry import EvaluatorRegistry, UnknownEvaluatorError

RunMode = Literal["inline", "queued"]
RUN_MODES: tuple[RunMode, ...] = ("inline", "queued")


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluatorSpec:
    """One evaluator attached to a prompt, as stored.

    ``depends_on`` lists spec ids (not evaluator keys: a prompt may use one evaluator
    twice); the spec runs only when all of them passed, and is recorded as skipped
    otherwise. ``run_mode`` says whether it runs on the request path ("inline") or in
    the evaluation worker ("queued"). ``threshold`` overrides the evaluator's default.
    """

    id: str
    evaluator_key: str
    config: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    threshold: float | None = None
    run_mode: RunMode = "inline"
    sampling_rate: float = 1.0
    depends_on: Sequence[str] = ()
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SpecProblem:
    """One reason a set of specs cannot run; ``field`` is e.g. ``config.pattern``."""

    spec_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"evaluator {self.spec_id!r}" if self.spec_id is not None else "evaluators"
        return f"{where}: {self.field}: {self.message}"


class InvalidSpecsError(ValueError):
    """Every problem found in a set of specs, not just the first."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid evaluator specs:\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class PlannedStep:
    spec: EvaluatorSpec
    evaluator: Evaluator[Any]
    config: Any  # what evaluator.validate_config returned for spec.config
    threshold: float


def _unit_interval_problem(value: float | None, spec_id: str, name: str) -> SpecProblem | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        return SpecProblem(spec_id, name, f"must be a number within [0, 1], got {value!r}")
    return None


def _spec_problems(
    spec: EvaluatorSpec, registry: EvaluatorRegistry
) -> tuple[list[SpecProblem], PlannedStep | None]:
    problems: list[SpecProblem] = []
    for name, value in (("threshold", spec.threshold), ("sampling_rate", spec.sampling_rate)):
        problem = _unit_interval_problem(value, spec.id, name)
        if problem is not None:
            problems.append(problem)
    weight = spec.weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
        problems.append(SpecProblem(spec.id, "weight", f"must be a number ≥ 0, got {weight!r}"))
    elif not math.isfinite(weight):
        problems.append(SpecProblem(spec.id, "weight", "must be finite"))
    if spec.run_mode not in RUN_MODES:
        problems.append(
            SpecProblem(spec.id, "run_mode", f"must be 'inline' or 'queued', got {spec.run_mode!r}")
        )
    try:
        evaluator = registry.get(spec.evaluator_key)
    except UnknownEvaluatorError as exc:
        problems.append(SpecProblem(spec.id, "evaluator_key", str(exc)))
        return problems, None
    try:
        config = evaluator.validate_config(spec.config)
    except EvaluatorConfigError as exc:
        where = f"config.{exc.field}" if exc.field and exc.field != "config" else "config"
        problems.append(SpecProblem(spec.id, where, exc.message))
        return problems, None
    threshold = spec.threshold if spec.threshold is not None else evaluator.default_threshold
    return problems, PlannedStep(spec, evaluator, config, threshold)


def _find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each dependency cycle once, as the path that closes it (``a -> b -> a``)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: fully explored
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for successor in graph.get(node, ()):
            if state.get(successor) == 1:
                cycles.append([*path[path.index(successor) :], successor])
            elif successor not in state:
                visit(successor, path)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    return cycles


Waves = tuple[tuple[PlannedStep, ...], ...]


def plan_specs(specs: Sequence[EvaluatorSpec], registry: EvaluatorRegistry) -> Waves:
    """Check ``specs`` and group them into dependency waves; InvalidSpecsError lists every problem.

    Checked: duplicate ids, unknown evaluator keys, invalid configs, threshold and
    sampling_rate outside [0, 1], negative weights, unknown run modes, dependencies on ids
    that do not exist, inline specs depending on queued ones (which have no result
    yet on the request path), and dependency cycles.
    """
    problems: list[SpecProblem] = []
    by_id: dict[str, EvaluatorSpec] = {}
    steps: dict[str, PlannedStep] = {}
    for spec in specs:
        if not isinstance(spec.id, str) or not spec.id:
            problems.append(SpecProblem(None, "id", f"must be a non-empty string, got {spec.id!r}"))
            continue
        if spec.id in by_id:
            problems.append(SpecProblem(spec.id, "id", "is used by more than one evaluator"))
            continue
        by_id[spec.id] = spec
        spec_problems, step = _spec_problems(spec, registry)
        problems.extend(spec_problems)
        if step is not None:
            steps[spec.id] = step
    graph: dict[str, list[str]] = {}
    for spec in by_id.values():
        graph[spec.id] = []
        if isinstance(spec.depends_on, str):
            # A bare string is a sequence too; iterating "json" would depend on "j", "s", ...
            problems.append(
                SpecProblem(spec.id, "depends_on", "must be a list of spec ids, not a string")
            )
            continue
        for dependency in spec.depends_on:
            target = by_id.get(dependency)
            if target is None:
                problems.append(
                    SpecProblem(
                        spec.id, "depends_on", f"depends on {dependency!r}, which is not defined"
                    )
                )
                continue
            graph[spec.id].append(dependency)
            if spec.run_mode == "inline" and target.run_mode == "queued":
                problems.append(
                    SpecProblem(
                        spec.id,
                        "depends_on",
                        f"runs inline but depends on {dependency!r}, which is queued",
                    )
                )
    for cycle in _find_cycles(graph):
        problems.append(
            SpecProblem(cycle[0], "depends_on", "dependency cycle: " + " -> ".join(cycle))
        )
    if problems:
        raise InvalidSpecsError(problems)
    return _waves(list(steps.values()))


def _waves(steps: list[PlannedStep]) -> Waves:
    """Group steps by dependency depth, keeping the given order within a wave."""
    depth: dict[str, int] = {}
    by_id = {step.spec.id: step for step in steps}

    def depth_of(spec_id: str) -> int:
        if spec_id not in depth:
            dependencies = by_id[spec_id].spec.depends_on
            depth[spec_id] = 1 + max((depth_of(d) for d in dependencies), default=-1)
        return depth[spec_id]

    waves: dict[int, list[PlannedStep]] = {}
    for step in steps:
        waves.setdefault(depth_of(step.spec.id), []).append(step)
    return tuple(tuple(waves[level]) for level in sorted(waves))
