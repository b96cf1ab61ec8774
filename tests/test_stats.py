"""Bootstrap intervals and the paired comparison, on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.stats import bootstrap_ci, paired_comparison


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=float)  # 87.5% on 8 queries
    low, high = bootstrap_ci(values, seed=3)
    assert (low, high) == bootstrap_ci(values, seed=3)
    assert low <= values.mean() <= high
    assert low <= 0.7 and high == 1.0  # one miss in eight: the interval is wide


def test_bootstrap_ci_constant_and_empty() -> None:
    assert bootstrap_ci(np.ones(8)) == (1.0, 1.0)
    lo, hi = bootstrap_ci(np.array([np.nan]))
    assert np.isnan(lo) and np.isnan(hi)


def test_bootstrap_ci_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(0)
    small = rng.random(10) < 0.8
    large = rng.random(1000) < 0.8
    w_small = np.subtract(*bootstrap_ci(small.astype(float))[::-1])
    w_large = np.subtract(*bootstrap_ci(large.astype(float))[::-1])
    assert w_large < w_small / 3


def test_one_query_difference_on_eight_is_not_significant() -> None:
    a = np.ones(8)
    b = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=float)
    cmp = paired_comparison(a, b, "top1", "bge-m3", "qwen3-0.6b")
    assert cmp.diff == pytest.approx(0.125)
    assert (cmp.wins, cmp.ties, cmp.losses) == (1, 7, 0)
    # exact sign-flip test: only the flip of the one differing query matters -> p = 1
    assert cmp.p_value == pytest.approx(1.0)


def test_consistent_difference_is_significant() -> None:
    rng = np.random.default_rng(1)
    b = rng.random(60)
    a = b + 0.2 + rng.normal(0, 0.05, 60)
    cmp = paired_comparison(a, b)
    assert cmp.p_value < 0.001
    assert cmp.diff_low > 0.15 and cmp.diff_high < 0.25


def test_exact_permutation_p_value_small_n() -> None:
    # all 5 differences positive and equal: two-sided exact p = 2 / 2**5
    a = np.array([1, 1, 1, 1, 1], dtype=float)
    b = np.zeros(5)
    assert paired_comparison(a, b).p_value == pytest.approx(2 / 32)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        paired_comparison(np.ones(3), np.ones(4))


def test_single_query_with_a_difference_has_exact_p_one() -> None:
    # a category with one query (the seed set has several): the sign flip of the one
    # difference is as extreme as the observed one, so p = 1, and nothing raises
    cmp = paired_comparison(np.array([1.0]), np.array([0.0]))
    assert (cmp.n, cmp.diff, cmp.wins, cmp.losses) == (1, 1.0, 1, 0)
    assert cmp.p_value == 1.0
