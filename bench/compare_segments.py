"""segment_customers' clustering vs scikit-learn's MiniBatchKMeans on the same features, in one bench.worker child.

Both sides get the standardised behaviour features the tool clusters on (`segmentation._behaviour`, computed once,
untimed) and return a label for every customer:

* ours: `segmentation._cluster` as the tool calls it (seeded samples, k-means, the Gaussian mixture, every
  customer labelled);
* theirs: `MiniBatchKMeans(n_clusters=k, random_state=0).fit_predict(X)` on every customer, scikit-learn's
  defaults otherwise (what a data scientist would run on a million rows);

twice: with k given (ours' choice, so both solve the same problem) and with k chosen by both (theirs: the same
silhouette-on-a-sample loop over 3..8 that ours runs). Both sides run on one thread. Quality: the silhouette of each labelling on one seeded
sample of 10,000 customers (the same rows for both sides). Scikit-learn is in the product's own environment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.measure import summary, timed

QUALITY_SAMPLE = 10_000


def _silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    pick = np.sort(np.random.default_rng(123).choice(len(X), min(len(X), QUALITY_SAMPLE), replace=False))
    return float(silhouette_score(X[pick], labels[pick])) if len(set(labels[pick].tolist())) > 1 else -1.0


def _minibatch(X: np.ndarray, k: int | None, sample: np.ndarray) -> np.ndarray:
    """MiniBatchKMeans on every row; without k, k in 3..8 by the silhouette on `sample` (as ours chooses). On one
    OpenMP/BLAS thread, as ours runs (`single_thread`): on a busy machine spinning OpenMP workers slow it by
    an order of magnitude, which would measure the neighbours."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _minibatch_fits(X, k, sample, MiniBatchKMeans, silhouette_score)


def _minibatch_fits(X, k, sample, MiniBatchKMeans, silhouette_score):
    if k:
        return MiniBatchKMeans(n_clusters=k, random_state=0).fit_predict(X)
    best, labels = -2.0, None
    for kk in range(3, 9):
        got = MiniBatchKMeans(n_clusters=kk, random_state=0).fit_predict(X)
        score = float(silhouette_score(X[sample], got[sample]))
        if score > best:
            best, labels = score, got
    return labels


def job_segments(job: dict) -> dict:
    from tools.analytics.customers.runs import resolve_as_of
    from tools.analytics.customers.segmentation import (
        CLUSTER_ON,
        SILHOUETTE_SAMPLE,
        SegmentParams,
        _behaviour,
        _cluster,
    )
    from tools.warehouse import connect

    con = connect(Path(job["home"]) / "warehouse.duckdb")
    behaviour = _behaviour(con, resolve_as_of(con, None))
    con.close()
    use = [j for j, c in enumerate(behaviour.names) if c in CLUSTER_ON and behaviour.spread[j] > 1e-9]
    X = np.ascontiguousarray(behaviour.Z[:, use])
    repeat, budget = min(job.get("repeat", 3), 2), job.get("budget_s")
    params = SegmentParams(method="behavioral", seed=0)
    _cluster(X[:5000], params)  # warm-up (imports, first calls) for both sides, not timed
    _minibatch(X[:5000], 4, np.arange(2000))
    out: dict = {"rows": int(len(X)), "features": [behaviour.names[j] for j in use]}
    times, (labels, _) = timed(lambda: _cluster(X, params), repeat, budget)
    k = int(len(set(labels.tolist())))
    sample = np.sort(np.random.default_rng(0).choice(len(X), min(len(X), SILHOUETTE_SAMPLE), replace=False))
    theirs_times, theirs = timed(lambda: _minibatch(X, None, sample), repeat, budget)
    out["k_chosen"] = {"ours": {**summary(times), "k": k, "silhouette": _silhouette(X, labels)},
                       "theirs": {**summary(theirs_times), "k": int(len(set(theirs.tolist()))),
                                  "silhouette": _silhouette(X, theirs)}}
    given = SegmentParams(method="behavioral", seed=0, k=k)
    times, (labels, _) = timed(lambda: _cluster(X, given), repeat, budget)
    theirs_times, theirs = timed(lambda: _minibatch(X, k, sample), repeat, budget)
    out["k_given"] = {"ours": {**summary(times), "k": k, "silhouette": _silhouette(X, labels)},
                      "theirs": {**summary(theirs_times), "k": k, "silhouette": _silhouette(X, theirs)}}
    km = SegmentParams(method="behavioral", seed=0, k=k, algorithm="kmeans")  # the tool's k-means option
    times, (labels, _) = timed(lambda: _cluster(X, km), repeat, budget)
    out["k_given_kmeans"] = {"ours": {**summary(times), "k": k, "silhouette": _silhouette(X, labels)},
                             "theirs": out["k_given"]["theirs"]}
    import sklearn

    out["library"] = f"scikit-learn {sklearn.__version__}"
    return out
