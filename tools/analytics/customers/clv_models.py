"""BG/NBD purchase frequency and Gamma-Gamma spend: log-likelihoods with analytic gradients, maximum-likelihood
fits and the predictions predict_clv makes from them (pure numpy/scipy; Fader, Hardie & Lee 2005; Fader & Hardie
2013).

Per customer (time in weeks): x repeat purchases, t_x the week of the last purchase after the first, T the weeks
from the first purchase to the end of calibration, m (zbar) the mean value of the repeat purchases. Log-likelihoods
are vectorised over customers (optionally weighted, so identical customers can be merged) and fitted on
log-parameters. Parameters keep the papers' names: BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

# scipy.optimize costs ~0.3 s to import, and every process that loads the tool registry imports this module (the
# planner ranks all tools on every `northstar ask`): scipy is imported by the functions that use it, not here.

# ---- BG/NBD ---------------------------------------------------------------------------------------------------

def bgnbd_ll(params, x, t_x, T, weights=None, grad: bool = False):
    """Total BG/NBD log-likelihood (and its gradient w.r.t. log r, log alpha, log a, log b)."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    weights = np.ones_like(x) if weights is None else weights
    rep = x > 0
    bx1 = np.where(rep, b + x - 1, 1.0)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.where(rep, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    L34 = np.logaddexp(A3, A4)
    ll = float(weights @ (A1 + A2 + L34))
    if not grad:
        return ll
    w3, w4 = np.exp(A3 - L34), np.exp(A4 - L34)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / bx1
    g = np.array([weights @ d_r, weights @ d_alpha, weights @ d_a, weights @ d_b]) * np.asarray(params)
    return ll, g


def bgnbd_ll_total(params, x, t_x, T) -> float:
    """`bgnbd_ll`'s value for whole-number x (repeat purchase counts), with the terms that depend only on x
    (three gammaln per customer) looked up in a table over 0..max(x): what scoring millions of customers in
    batches needs, at a third of the cost."""
    from scipy.special import gammaln

    r, alpha, a, b = params
    k = np.arange(int(x.max()) + 1 if x.size else 1, dtype=float)
    per_x = (gammaln(r + k) - gammaln(r) + r * np.log(alpha)
             + gammaln(a + b) + gammaln(b + k) - gammaln(b) - gammaln(a + b + k))
    log_bx1 = np.log(np.where(k > 0, b + k - 1, 1.0))
    ix = x.astype(np.int64)
    A3 = -(r + x) * np.log(alpha + T)
    rep = x > 0
    A4 = np.where(rep, np.log(a) - log_bx1[ix] - (r + x) * np.log(alpha + np.where(rep, t_x, 0.0)), -np.inf)
    return float(per_x[ix].sum() + np.logaddexp(A3, A4).sum())


@dataclass
class BgnbdData:
    """Customers arranged for a fast BG/NBD likelihood, built once per fit. The terms that depend only on x
    (gammaln and digamma of r + x, b + x, a + b + x) are computed once per distinct x and weighted by its
    customers; customers without repeat purchases contribute −r·log(α + T) only, so they are merged by T; the
    others are merged where (x, t_x, T) are identical (exact: the log-likelihood is a weighted sum over rows)."""

    ux: np.ndarray      # distinct x
    wx: np.ndarray      # weight of each distinct x
    T0: np.ndarray      # distinct T of customers with x = 0 …
    w0: np.ndarray      # … and their weight
    ix: np.ndarray      # repeat customers (merged rows): index into ux …
    x: np.ndarray       # … x, t_x, T and weight
    t_x: np.ndarray
    T: np.ndarray
    w: np.ndarray
    times: np.ndarray   # distinct values of t_x and T (weeks: a few hundred), so log(α + ·) is taken once each
    it_x: np.ndarray    # index of each repeat row's t_x and T in `times`
    iT: np.ndarray

    @classmethod
    def build(cls, x, t_x, T, weights=None, merge: bool = True) -> BgnbdData:
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        ux, inv = np.unique(x, return_inverse=True)
        zero = x == 0
        T0, inv0 = np.unique(T[zero], return_inverse=True)
        rep = np.flatnonzero(~zero)
        x1, t1, T1, w1 = x[rep], t_x[rep], T[rep], weights[rep]
        if merge and rep.size:
            order = np.lexsort((T1, t1, x1))
            x1, t1, T1, w1 = x1[order], t1[order], T1[order], w1[order]
            first = np.flatnonzero(np.r_[True, (x1[1:] != x1[:-1]) | (t1[1:] != t1[:-1]) | (T1[1:] != T1[:-1])])
            x1, t1, T1, w1 = x1[first], t1[first], T1[first], np.add.reduceat(w1, first)
        times, itimes = np.unique(np.r_[t1, T1], return_inverse=True)
        return cls(ux, np.bincount(inv, weights, minlength=ux.size), T0,
                   np.bincount(inv0, weights[zero], minlength=T0.size), np.searchsorted(ux, x1), x1, t1, T1, w1,
                   times, itimes[:t1.size], itimes[t1.size:])

    @property
    def rows(self) -> int:
        """Rows the per-customer part of the likelihood runs over."""
        return int(self.T0.size + self.x.size)


def bgnbd_ll_grouped(params, d: BgnbdData, grad: bool = False):
    """`bgnbd_ll` (value and gradient w.r.t. the log-parameters) over a `BgnbdData`: the same sums, regrouped.
    Per repeat row, log(e^A3 + e^A4) and the weights e^(A3 − L), e^(A4 − L) share one exp: with
    e = exp(−|A3 − A4|), L = max + log1p(e) and the weights are 1 / (1 + e) and e / (1 + e)."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = params
    rep = d.ux > 0
    log_bx1 = np.log(np.where(rep, b + d.ux - 1, 1.0))
    per_x = (gammaln(r + d.ux) - gammaln(r) + r * np.log(alpha)
             + gammaln(a + b) + gammaln(b + d.ux) - gammaln(b) - gammaln(a + b + d.ux))
    lT0 = np.log(alpha + d.T0)
    log_times = np.log(alpha + d.times)
    rx = r + d.x
    lT, lt = log_times[d.iT], log_times[d.it_x]
    A3 = -rx * lT
    A4 = (np.log(a) - log_bx1)[d.ix] - rx * lt
    gap = A4 - A3
    e = np.exp(-np.abs(gap))
    ll = float(d.wx @ per_x - r * (d.w0 @ lT0) + d.w @ (np.maximum(A3, A4) + np.log1p(e)))
    if not grad:
        return ll
    share = e / (1 + e)  # weight of the smaller term
    w4 = np.where(gap > 0, 1 - share, share)
    ww4 = d.w * w4
    ww3 = d.w - ww4
    by_x4 = np.bincount(d.ix, ww4, minlength=d.ux.size)
    inv_times = 1.0 / (alpha + d.times)
    d_r = (d.wx @ (digamma(r + d.ux) - digamma(r) + np.log(alpha)) - d.w0 @ lT0 - ww3 @ lT - ww4 @ lt)
    d_alpha = (r / alpha * d.wx.sum() - r * (d.w0 @ (1.0 / (alpha + d.T0)))
               - (ww3 * rx) @ inv_times[d.iT] - (ww4 * rx) @ inv_times[d.it_x])
    d_a = d.wx @ (digamma(a + b) - digamma(a + b + d.ux)) + by_x4.sum() / a
    d_b = (d.wx @ (digamma(a + b) + digamma(b + d.ux) - digamma(b) - digamma(a + b + d.ux))
           - by_x4[rep] @ np.exp(-log_bx1[rep]))
    return ll, np.array([d_r, d_alpha, d_a, d_b]) * np.asarray(params)


def fit_bgnbd(x, t_x, T, weights=None, merge: bool = True) -> tuple[np.ndarray, float]:
    """Maximum-likelihood r, alpha, a, b (on log-parameters, L-BFGS with the analytic gradient). Identical
    customers are merged first (`BgnbdData`; merge=False keeps one row per repeat customer)."""
    from scipy.optimize import minimize

    d = BgnbdData.build(x, t_x, T, weights, merge)
    scale = d.wx.sum()

    def neg(theta):
        ll, g = bgnbd_ll_grouped(np.exp(theta), d, grad=True)
        return -ll / scale, -g / scale

    mean_T = (d.w0 @ d.T0 + d.w @ d.T) / scale
    start = np.log([1.0, max(float(mean_T), 1e-3), 1.0, 1.0])
    # one BLAS thread: the dot products are short, and on a busy machine waking a second thread for each cost
    # 2-3× the whole evaluation
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(neg, start, jac=True, method="L-BFGS-B", bounds=[(-12, 12)] * 4,
                       options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    params = np.exp(res.x)
    return params, bgnbd_ll_grouped(params, d)


def expected_purchases(params, t):
    """E[X(t)]: expected purchases of a randomly chosen new customer in t weeks (BG/NBD eq. 9)."""
    from scipy.special import hyp2f1

    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _log_odds_dead(params, x, t_x, T):
    r, alpha, a, b = params
    bx1 = np.where(x > 0, b + x - 1, 1.0)
    return np.where(x > 0, np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)


def p_alive(params, x, t_x, T):
    """P(alive | x, t_x, T)."""
    from scipy.special import expit

    return expit(-_log_odds_dead(params, np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)))


def conditional_expected_purchases(params, t, x, t_x, T):
    """E[Y(t) | x, t_x, T]: expected purchases in the next t weeks of a customer with this history (eq. 10)."""
    from scipy.special import expit, hyp2f1

    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    A, B, C = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    A, B, C, z = np.broadcast_arrays(A, B, C, z)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_h = np.array(np.log(hyp2f1(A, B, C, z)), dtype=float)  # writable, also for scalars
        bad = ~np.isfinite(log_h)  # Euler's transformation where the series overflows (rare: computed there only)
        if bad.any():
            a_, b_, c_, z_ = A[bad], B[bad], C[bad], z[bad]
            log_h[bad] = np.log(hyp2f1(c_ - a_, c_ - b_, c_, z_)) + (c_ - a_ - b_) * np.log1p(-z_)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - np.exp(log_h + A * (np.log(alpha + T) - np.log(alpha + T + t)))
    return head * body * expit(-_log_odds_dead(params, x, t_x, T))


# ---- Gamma-Gamma ----------------------------------------------------------------------------------------------

def gamma_gamma_ll(params, x, m, grad: bool = False):
    """Gamma-Gamma log-likelihood of mean repeat spend m over x repeat purchases (and the log-parameter gradient)."""
    from scipy.special import digamma, gammaln

    p, q, v = params
    px = p * x
    ll_i = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x)
            - (px + q) * np.log(x * m + v))
    if not grad:
        return float(ll_i.sum())
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(x * m + v))
    d_q = digamma(px + q) - digamma(q) + np.log(v) - np.log(x * m + v)
    d_v = q / v - (px + q) / (x * m + v)
    return float(ll_i.sum()), np.array([d_p.sum(), d_q.sum(), d_v.sum()]) * np.asarray(params)


def fit_gamma_gamma(x, m) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    def neg(theta):
        ll, g = gamma_gamma_ll(np.exp(theta), x, m, grad=True)
        return -ll / x.size, -g / x.size

    res = minimize(neg, np.log([1.0, 2.0, float(np.mean(m))]), jac=True, method="L-BFGS-B", bounds=[(-12, 12)] * 3,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    params = np.exp(res.x)
    return params, gamma_gamma_ll(params, x, m)


def expected_order_value(params, x, m):
    """E[M | x, m]: the Gamma-Gamma expected value of a future order (the population mean when x = 0)."""
    p, q, v = params
    x = np.asarray(x, dtype=float)
    return p * (v + x * np.where(x > 0, m, 0.0)) / (p * x + q - 1)
