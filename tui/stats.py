"""Small exact statistics for the Poisson block-arrival model (pure, no dependencies).

Block arrivals at an unknown rate are a Poisson process.  After observing ``n`` arrivals in
``T`` seconds, the rate's posterior (under the scale-invariant prior) is Gamma(n, T), and the
time ``S`` until ``k`` more blocks has the predictive distribution

    S / T  ~  (k / n) * F(2k, 2n)

which is what :func:`predictive_wait_quantile` inverts.  With the rate known (``n`` = 0 here
means "no observation, take the nominal rate as known") ``S`` is Gamma(k, 1/rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable

_EPS = 1e-14
_MAX_ITER = 10_000


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its series (x < a + 1)."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(_MAX_ITER):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_cf(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def gamma_cdf(x: float, shape: float, scale: float = 1.0) -> float:
    """P(X <= x) for X ~ Gamma(shape, scale)."""
    if shape <= 0 or scale <= 0:
        raise ValueError("shape and scale must be positive")
    if x <= 0:
        return 0.0
    z = x / scale
    if z < shape + 1.0:
        return _gamma_series(shape, z)
    return 1.0 - _gamma_cf(shape, z)


def _beta_cf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be positive")
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def _bisect(cdf: Callable[[float], float], p: float, lo: float, hi: float) -> float:
    while cdf(hi) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def gamma_quantile(p: float, shape: float, scale: float = 1.0) -> float:
    """Inverse of :func:`gamma_cdf`."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    return scale * _bisect(lambda z: gamma_cdf(z, shape), p, 0.0, shape + 10.0 * math.sqrt(shape))


def predictive_wait_quantile(p: float, k: int, observed_blocks: float, observed_s: float,
                             nominal_interval_s: float = 600.0) -> float:
    """Quantile ``p`` of the time (s) until ``k`` more blocks.

    ``observed_blocks`` arrivals seen in ``observed_s`` seconds estimate the rate, and its
    uncertainty widens the range; with no observation the nominal interval is taken as the
    known mean.  ``k`` = 0 gives 0.
    """
    if k <= 0:
        return 0.0
    if observed_blocks <= 0 or observed_s <= 0:
        return gamma_quantile(p, k, nominal_interval_s)
    n = float(observed_blocks)
    # S / T * n / k ~ F(2k, 2n); F's cdf via the incomplete beta: y = d1 x / (d1 x + d2).
    y = _bisect(lambda v: beta_cdf(v, float(k), n), p, 0.0, 1.0)
    y = min(y, 1.0 - 1e-15)
    f_quantile = (n * y) / (k * (1.0 - y))
    return observed_s * (k / n) * f_quantile
