"""BG/NBD purchase frequency and Gamma-Gamma spend: log-likelihoods with analytic gradients, maximum-likelihood
fits and the predictions predict_clv makes from them (pure numpy/scipy; Fader, Hardie & Lee 2005; Fader & Hardie
2013).

Per customer (time in weeks): x repeat purchases, t_x the week of the last purchase after the first, T the weeks
from the first purchase to the end of calibration, m (zbar) the mean value of the repeat purchases. Log-likelihoods
are vectorised over customers (optionally weighted, so identical customers can be merged) and fitted on
log-parameters. Parameters keep the papers' names: BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

# ---- BG/NBD ---------------------------------------------------------------------------------------------------

def bgnbd_ll(params, x, t_x, T, weights=None, grad: bool = False):
    """Total BG/NBD log-likelihood (and its gradient w.r.t. log r, log alpha, log a, log b)."""
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


def fit_bgnbd(x, t_x, T, weights=None) -> tuple[np.ndarray, float]:
    """Maximum-likelihood r, alpha, a, b (on log-parameters, L-BFGS with the analytic gradient)."""
    weights = np.ones_like(x, dtype=float) if weights is None else weights
    scale = weights.sum()

    def neg(theta):
        ll, g = bgnbd_ll(np.exp(theta), x, t_x, T, weights, grad=True)
        return -ll / scale, -g / scale

    start = np.log([1.0, max(float(np.average(T, weights=weights)), 1e-3), 1.0, 1.0])
    res = minimize(neg, start, jac=True, method="L-BFGS-B", bounds=[(-12, 12)] * 4,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    params = np.exp(res.x)
    return params, bgnbd_ll(params, x, t_x, T, weights)


def expected_purchases(params, t):
    """E[X(t)]: expected purchases of a randomly chosen new customer in t weeks (BG/NBD eq. 9)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _log_odds_dead(params, x, t_x, T):
    r, alpha, a, b = params
    bx1 = np.where(x > 0, b + x - 1, 1.0)
    return np.where(x > 0, np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)


def p_alive(params, x, t_x, T):
    """P(alive | x, t_x, T)."""
    return expit(-_log_odds_dead(params, np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)))


def conditional_expected_purchases(params, t, x, t_x, T):
    """E[Y(t) | x, t_x, T]: expected purchases in the next t weeks of a customer with this history (eq. 10)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    A, B, C = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_h = np.log(hyp2f1(A, B, C, z))
        alt = np.log(hyp2f1(C - A, C - B, C, z)) + (C - A - B) * np.log1p(-z)  # Euler's transformation
        log_h = np.where(np.isfinite(log_h), log_h, alt)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - np.exp(log_h + A * (np.log(alpha + T) - np.log(alpha + T + t)))
    return head * body * expit(-_log_odds_dead(params, x, t_x, T))


# ---- Gamma-Gamma ----------------------------------------------------------------------------------------------

def gamma_gamma_ll(params, x, m, grad: bool = False):
    """Gamma-Gamma log-likelihood of mean repeat spend m over x repeat purchases (and the log-parameter gradient)."""
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
