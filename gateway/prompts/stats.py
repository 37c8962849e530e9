"""Significance tests for A/B results, with `math` only: Welch's t-test and a two-proportion z-test.

The Student t tail comes from the regularized incomplete beta function, evaluated by its
continued fraction (modified Lentz), which converges fast for the arguments used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Summary",
    "TestResult",
    "regularized_incomplete_beta",
    "student_t_two_sided_p",
    "two_proportion_z_test",
    "welch_t_test",
]

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 500


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float
    df: float | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """A sample reduced to what Welch's test needs."""

    n: int
    mean: float
    variance: float
    """Sample variance (n - 1 in the denominator)."""

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        n = len(values)
        mean = math.fsum(values) / n if n else 0.0
        variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, variance)

    @classmethod
    def from_moments(cls, n: int, mean: float, mean_of_squares: float) -> Summary:
        """From a database's count, avg(x) and avg(x*x)."""
        if n < 2:
            return cls(n, mean, 0.0)
        variance = max(mean_of_squares - mean * mean, 0.0) * n / (n - 1)
        return cls(n, mean, variance)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    result = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + numerator / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        result *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + numerator / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        result *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must be within [0, 1]")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges for x < (a + 1) / (a + b + 2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def welch_t_test(first: Summary, second: Summary) -> TestResult | None:
    """Do two means differ? None when either sample has fewer than two values or when
    neither varies (a t statistic is then undefined)."""
    if first.n < 2 or second.n < 2:
        return None
    a, b = first.variance / first.n, second.variance / second.n
    if a + b <= 0.0:
        return None
    t = (first.mean - second.mean) / math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (first.n - 1) + b * b / (second.n - 1))
    return TestResult(t, student_t_two_sided_p(t, df), df)


def two_proportion_z_test(
    successes_1: int, n_1: int, successes_2: int, n_2: int
) -> TestResult | None:
    """Do two rates differ? Pooled two-sided z-test; None without observations in both."""
    if n_1 == 0 or n_2 == 0:
        return None
    pooled = (successes_1 + successes_2) / (n_1 + n_2)
    if pooled in (0.0, 1.0):
        return TestResult(0.0, 1.0)  # both all-or-nothing: no evidence of a difference
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_1 + 1.0 / n_2))
    z = (successes_1 / n_1 - successes_2 / n_2) / se
    return TestResult(z, math.erfc(abs(z) / math.sqrt(2.0)))
