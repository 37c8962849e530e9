"""Significance tests against closed forms and textbook values."""

from __future__ import annotations

import math

import pytest

from gateway.prompts.stats import (
    Summary,
    regularized_incomplete_beta,
    student_t_two_sided_p,
    two_proportion_z_test,
    welch_t_test,
)


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.0, 6.3138, 50.0])
def test_t_with_one_degree_of_freedom_is_cauchy(t: float) -> None:
    assert student_t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0, 3.0, 9.9])
def test_t_with_two_degrees_of_freedom_has_a_closed_form(t: float) -> None:
    assert student_t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (2.228139, 10, 0.05),  # the critical values of every t table
        (2.749996, 30, 0.01),
        (1.812461, 10, 0.10),
        (3.169273, 10, 0.01),
        (12.7062, 1, 0.05),
        (1.959964, 1e7, 0.05),  # large df: the normal distribution
    ],
)
def test_t_table_critical_values(t: float, df: float, p: float) -> None:
    assert student_t_two_sided_p(t, df) == pytest.approx(p, rel=1e-4)


def test_incomplete_beta_symmetry_and_edges() -> None:
    assert regularized_incomplete_beta(2.5, 0.5, 0.0) == 0.0
    assert regularized_incomplete_beta(2.5, 0.5, 1.0) == 1.0
    for x in (0.1, 0.5, 0.93):
        total = regularized_incomplete_beta(3.0, 4.5, x) + regularized_incomplete_beta(
            4.5, 3.0, 1 - x
        )
        assert total == pytest.approx(1.0, abs=1e-12)
    # I_x(1, 1) = x and I_x(a, 1) = x^a
    assert regularized_incomplete_beta(1, 1, 0.37) == pytest.approx(0.37)
    assert regularized_incomplete_beta(3, 1, 0.5) == pytest.approx(0.125)


def test_welch_matches_the_textbook_example() -> None:
    # Welch's t-test, Wikipedia "Examples", first pair: t = -2.46, df = 24.99, p = 0.021
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = welch_t_test(Summary.of(a1), Summary.of(a2))
    assert result is not None
    assert result.statistic == pytest.approx(-2.46, abs=0.005)
    assert result.df == pytest.approx(24.99, abs=0.01)
    assert result.p_value == pytest.approx(0.021, abs=0.0005)


def test_welch_from_database_moments_equals_from_values() -> None:
    values = [3.0, 4.5, 9.25, 1.0, 7.5]
    n = len(values)
    mean = sum(values) / n
    moments = Summary.from_moments(n, mean, sum(v * v for v in values) / n)
    direct = Summary.of(values)
    assert moments.variance == pytest.approx(direct.variance)


def test_welch_is_undefined_without_spread_or_samples() -> None:
    assert welch_t_test(Summary.of([1.0]), Summary.of([1.0, 2.0])) is None
    assert welch_t_test(Summary.of([2.0, 2.0]), Summary.of([2.0, 2.0])) is None


def test_two_proportion_z_test_textbook_values() -> None:
    # 45/100 vs 30/100: pooled p = 0.375, z = 2.19, p = 0.0285
    result = two_proportion_z_test(45, 100, 30, 100)
    assert result is not None
    assert result.statistic == pytest.approx(2.1909, abs=1e-4)
    assert result.p_value == pytest.approx(0.02846, abs=1e-4)
    same = two_proportion_z_test(10, 50, 20, 100)
    assert same is not None and same.p_value == pytest.approx(1.0)
    assert two_proportion_z_test(0, 10, 0, 12) is not None
    assert two_proportion_z_test(1, 0, 1, 10) is None
