"""Bootstrap intervals and the paired comparison, on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.evaluation.stats import bootstrap_ci, paired_comparison


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


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(8, 8), (7, 8), (0, 8), (1, 1), (64, 112), (13, 112)])
def test_wilson_ci_matches_the_formula(k: int, n: int) -> None:
    from embedlab.evaluation.stats import wilson_ci

    low, high = wilson_ci(k, n)
    ref_low, ref_high = _wilson_by_hand(k, n)
    assert low == pytest.approx(max(ref_low, 0.0), abs=1e-12)
    assert high == pytest.approx(min(ref_high, 1.0), abs=1e-12)


def test_wilson_ci_is_never_zero_width() -> None:
    from embedlab.evaluation.stats import hit_rate_ci, wilson_ci

    low, high = wilson_ci(8, 8)
    assert high == 1.0 and low == pytest.approx(0.6756, abs=1e-4)  # 8/8 is not certainty
    assert hit_rate_ci(np.ones(8)) == (low, high)
    assert wilson_ci(0, 8)[0] == 0.0 and wilson_ci(0, 8)[1] > 0.3
    with pytest.raises(ValueError):
        hit_rate_ci(np.array([0.5, 1.0]))


def test_wilson_ci_covers_better_than_the_percentile_bootstrap_at_small_n() -> None:
    """Coverage of the true rate over many simulated 8-query runs: Wilson stays near 95%,
    the percentile bootstrap falls well short (zero-width at 8/8 and 0/8)."""
    from embedlab.evaluation.stats import wilson_ci

    rng = np.random.default_rng(1)
    true_p, n, trials = 0.9, 8, 400
    hits_w = hits_b = 0
    for _ in range(trials):
        sample = (rng.random(n) < true_p).astype(float)
        lo, hi = wilson_ci(int(sample.sum()), n)
        hits_w += lo <= true_p <= hi
        lo, hi = bootstrap_ci(sample, n_resamples=500, seed=rng)
        hits_b += lo <= true_p <= hi
    assert hits_w / trials >= 0.90
    assert hits_b / trials < hits_w / trials - 0.1


def test_holm_adjusts_step_down_and_keeps_nan() -> None:
    from embedlab.evaluation.stats import holm

    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005, np.nan]))
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    assert holm(np.array([0.9, 0.8])).max() == 1.0  # capped
    assert holm(np.array([])).size == 0
