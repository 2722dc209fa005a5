"""segment_customers' clustering vs scikit-learn's MiniBatchKMeans on the same features, in one bench.worker child.

Both sides get the standardised behaviour features the tool clusters on (`segmentation._behaviour`, computed once,
untimed) and return a label for every customer:

* ours: `segmentation._cluster` as the tool calls it (seeded samples, k-means, the Gaussian mixture's centres,
  every customer labelled by the nearest centre);
* theirs: `MiniBatchKMeans(n_clusters=k, random_state=0).fit_predict(X)` on every customer, scikit-learn's
  defaults otherwise (what a data scientist would run on a million rows);

twice: with k given (ours' choice, so both solve the same problem) and with k chosen by both (theirs: the same
loop over 3..8 that ours runs, by the mean silhouette on seeded samples of 4,000). Both sides run on one thread.
Quality: the silhouette of each labelling on one seeded sample of 10,000 customers (the same rows for both
sides); on a demo warehouse also the adjusted Rand index against the planted segments (`demo_truth`, every
customer), which silhouette alone does not show: the mixture's own most probable segments recover the planted
ones best and are the least compact (the `k_given_posterior` row). Scikit-learn is in the product's own
environment.
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


def _planted(con, ids: np.ndarray) -> np.ndarray | None:
    """The planted segment of each customer in `ids` (sorted), or None without a complete `demo_truth`."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'demo_truth'").fetchone()[0]:
        return None
    truth = con.execute("SELECT customer_id, planted_segment FROM demo_truth ORDER BY customer_id").fetchnumpy()
    known = np.asarray(truth["customer_id"])
    where = np.searchsorted(known, ids)
    if len(known) == 0 or (where >= len(known)).any() or (known[np.minimum(where, len(known) - 1)] != ids).any():
        return None
    return np.asarray(truth["planted_segment"]).astype(str)[where]


def _quality(X: np.ndarray, labels: np.ndarray, planted: np.ndarray | None) -> dict:
    from sklearn.metrics import adjusted_rand_score

    out = {"k": int(len(set(labels.tolist()))), "silhouette": _silhouette(X, labels)}
    if planted is not None:
        out["ari_planted"] = float(adjusted_rand_score(planted, labels))
    return out


def _minibatch(X: np.ndarray, k: int | None, samples: list[np.ndarray]) -> np.ndarray:
    """MiniBatchKMeans on every row; without k, k in 3..8 by the mean silhouette on `samples`, as ours chooses
    (`segmentation.sample_silhouettes`). On one OpenMP/BLAS thread, as ours runs (`single_thread`): on a busy
    machine spinning OpenMP workers slow it by an order of magnitude, which would measure the neighbours."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    from tools.analytics.customers.clustering import sample_silhouettes

    with threadpool_limits(limits=1):
        if k:
            return MiniBatchKMeans(n_clusters=k, random_state=0).fit_predict(X)
        fits = {kk: MiniBatchKMeans(n_clusters=kk, random_state=0).fit_predict(X) for kk in range(3, 9)}
        scores = sample_silhouettes(X, samples, {kk: lambda rows, got=got: got[rows] for kk, got in fits.items()})
        return fits[max(scores, key=lambda kk: (scores[kk], -kk))]


def job_segments(job: dict) -> dict:
    from tools.analytics.customers.clustering import silhouette_samples
    from tools.analytics.customers.runs import resolve_as_of
    from tools.analytics.customers.segmentation import (
        CLUSTER_ON,
        SegmentParams,
        _behaviour,
        _cluster,
    )
    from tools.warehouse import connect

    con = connect(Path(job["home"]) / "warehouse.duckdb", read_only=True)
    behaviour = _behaviour(con, resolve_as_of(con, None))
    planted = _planted(con, behaviour.ids)
    con.close()
    use = [j for j, c in enumerate(behaviour.names) if c in CLUSTER_ON and behaviour.spread[j] > 1e-9]
    X = np.ascontiguousarray(behaviour.Z[:, use])
    repeat, budget, seed = min(job.get("repeat", 3), 2), job.get("budget_s"), job.get("seed", 0)
    params = SegmentParams(method="behavioral", seed=seed)
    _cluster(X[:5000], params)  # warm-up (imports, first calls) for both sides, not timed
    _minibatch(X[:5000], 4, [np.arange(2000)])
    out: dict = {"rows": int(len(X)), "features": [behaviour.names[j] for j in use], "seed": seed}
    times, (labels, _) = timed(lambda: _cluster(X, params), repeat, budget)
    k = int(len(set(labels.tolist())))
    sample = silhouette_samples(len(X), np.random.default_rng(0))
    theirs_times, theirs = timed(lambda: _minibatch(X, None, sample), repeat, budget)
    out["k_chosen"] = {"ours": {**summary(times), **_quality(X, labels, planted)},
                       "theirs": {**summary(theirs_times), **_quality(X, theirs, planted)}}
    given = SegmentParams(method="behavioral", seed=seed, k=k)
    times, (labels, _) = timed(lambda: _cluster(X, given), repeat, budget)
    theirs_times, theirs = timed(lambda: _minibatch(X, k, sample), repeat, budget)
    out["k_given"] = {"ours": {**summary(times), **_quality(X, labels, planted)},
                      "theirs": {**summary(theirs_times), **_quality(X, theirs, planted)}}
    for algorithm in ("gmm_posterior", "kmeans"):  # the tool's other options, against the same MiniBatchKMeans
        other = SegmentParams(method="behavioral", seed=seed, k=k, algorithm=algorithm)
        times, (labels, _) = timed(lambda other=other: _cluster(X, other), repeat, budget)
        out[f"k_given_{algorithm.removeprefix('gmm_')}"] = {"ours": {**summary(times), **_quality(X, labels, planted)},
                                                            "theirs": out["k_given"]["theirs"]}
    import sklearn

    out["library"] = f"scikit-learn {sklearn.__version__}"
    return out
