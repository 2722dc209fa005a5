"""analytics_reference checks: published results on real data, and the demo warehouse's planted truths."""

from __future__ import annotations

from datetime import timedelta

from evals.checks.base import check, close, demo_home, fresh_con, run_tool, shared
from evals.reference import (
    channel_attribution_heuristics,
    compare_attribution,
    compare_credit,
    dense_removal_effects,
    read_paths,
)


def _loaded(table: str, relative: str, **load_opts):
    from tools.warehouse.loader import load_file

    con, home = fresh_con()
    load_file(con, table, shared(relative), **load_opts)
    return con, home


def _demo(name: str, args: dict):
    from tools.warehouse import connect

    con = connect(demo_home() / "warehouse.duckdb")
    try:
        return run_tool(name, args, con, demo_home())
    finally:
        con.close()


@check
def attribution_heuristics(case: dict) -> list[str]:
    con, home = _loaded("paths", "datasets/attribution/paths.csv")
    res = run_tool("attribute_conversions", {"paths_table": "paths"}, con, home)
    reference = channel_attribution_heuristics(
        shared("datasets/attribution/reference_heuristic_ChannelAttribution-2.2.5.csv"))
    return compare_attribution(res.metrics, reference, tol=1e-6)


@check
def attribution_markov_exact(case: dict) -> list[str]:
    order = case.get("order", 1)
    con, home = _loaded("paths", "datasets/attribution/paths.csv")
    res = run_tool("attribute_conversions", {"paths_table": "paths", "model": "markov", "markov_order": order},
                   con, home)
    expected = dense_removal_effects(read_paths(shared("datasets/attribution/paths.csv")), order)
    return compare_credit(res.metrics["removal_effects"], expected, 1e-6, label="removal")


@check
def hillstrom(case: dict) -> list[str]:
    con, home = _loaded("hillstrom", "datasets/experiments/hillstrom.csv")
    res = run_tool("analyze_experiment", {"table": "hillstrom", "variant_column": "segment", "control": "No E-Mail",
                                          "metrics": ["visit", "conversion", "spend"]}, con, home)
    rows = {(r["metric"], r["arm"]): r for r in res.data}
    why = []
    for metric, values in case["expect"]["means"].items():
        digits = 4 if metric == "spend" else 6
        for arm, expected in values.items():
            got = round(rows[(metric, arm)]["mean"], digits)
            if got != expected:
                why.append(f"{metric} {arm}: {got} vs {expected}")
    mens = rows[("visit", "Mens E-Mail")]
    if round(100 * mens["lift"], 2) != case["expect"]["mens_visit_lift_pp"] or not mens["significant"]:
        why.append(f"Mens visit lift {100 * mens['lift']:.2f} pp significant={mens['significant']}")
    return why


@check
def mmm_shares(case: dict) -> list[str]:
    con, home = _loaded("mmm", "datasets/mmm/mmm_example.csv")
    res = run_tool("allocate_budget", {"table": "mmm", "date_column": "date_week", "outcome_column": "y",
                                       "spend_columns": ["x1", "x2"],
                                       "control_columns": ["event_1", "event_2", "t"]}, con, home)
    rows = {r["channel"]: r for r in res.data}
    why = [] if res.data[0]["channel"] == "x1" else [f"ranked {res.data[0]['channel']} first"]
    return why + close(rows["x1"]["share_of_media"], case["expect"]["x1_share"], abs_=0.10, label="x1 share")


@check
def vader_corpus(case: dict) -> list[str]:
    con, home = _loaded("corpus", f"datasets/sentiment/{case['file']}", header=False, columns=["id", "rating", "text"])
    res = run_tool("analyze_sentiment", {"table": "corpus", "id_column": "id", "rating_column": "rating"}, con, home)
    agree = res.metrics["agreement"]
    return (close(agree["pearson_r"], case["expect"]["r"], abs_=0.005, label="pearson r")
            + close(agree["weighted_f1"], case["expect"]["f1"], abs_=0.005, label="weighted F1"))


@check
def demo_experiments(case: dict) -> list[str]:
    from tools.warehouse.demo import EXPERIMENT_LIFT, EXPERIMENT_NULL

    lift = _demo("analyze_experiment", {"experiment_id": EXPERIMENT_LIFT[0]})
    null = _demo("analyze_experiment", {"experiment_id": EXPERIMENT_NULL[0]})
    why = []
    if lift.metrics["verdict"] != "winner" or lift.metrics["winner"] != EXPERIMENT_LIFT[2]:
        why.append(f"planted lift not found: {lift.metrics['verdict']}")
    if null.metrics["verdict"] != "no_significant_difference" or null.metrics["winner"] is not None:
        why.append(f"null experiment called: {null.metrics['verdict']}")
    return why


@check
def demo_saturation(case: dict) -> list[str]:
    from tools.warehouse.demo import SATURATED_CHANNEL

    res = _demo("allocate_budget", {"outcome": "conversions", "bootstrap": 30})
    return [] if res.metrics["saturated"] == [SATURATED_CHANNEL] else [f"saturated: {res.metrics['saturated']}"]


@check
def demo_anomaly(case: dict) -> list[str]:
    from tools.warehouse.demo import ANOMALY_CHANNEL, ANOMALY_DAY, END, START

    res = _demo("detect_anomalies", {"metric": "conversions", "channel": ANOMALY_CHANNEL,
                                     "start": START.isoformat(), "end": END.isoformat()})
    days = [r["day"] for r in res.data]
    why = [] if ANOMALY_DAY.isoformat() in days else [f"{ANOMALY_DAY} not flagged (flagged {days[:5]})"]
    return why + ([f"{len(days) - 1} false alarms"] if len(days) - 1 > case.get("max_false_alarms", 3) else [])


@check
def demo_sentiment_spike(case: dict) -> list[str]:
    from tools.warehouse.demo import SPIKE_WEEK

    res = _demo("analyze_sentiment", {"date_column": "review_date", "id_column": "review_id"})
    spikes = res.metrics.get("spikes") or []
    weeks = [str(s["week"])[:10] for s in spikes]
    hit = next((s for s in spikes if str(s["week"])[:10] == SPIKE_WEEK.isoformat()), None)
    if not hit:
        return [f"spike week {SPIKE_WEEK} not found (found {weeks})"]
    worst = (hit.get("worst_aspect") or {}).get("aspect")
    return [] if worst == "delivery" else [f"worst aspect that week: {worst}"]


@check
def demo_attribution_ranking(case: dict) -> list[str]:
    from tools.warehouse.demo import END

    res = _demo("attribute_conversions", {"model": "markov", "start": (END - timedelta(days=365)).isoformat(),
                                          "end": END.isoformat(), "markov_order": case.get("order", 1)})
    re = res.metrics["removal_effects"]
    return [f"{a} ({re[a]:.3f}) not above {b} ({re[b]:.3f})" for a, b in case["above"] if not re[a] > re[b]]


@check
def cdnow_clv(case: dict) -> list[str]:
    from tools.analytics.customers.clv_models import conditional_expected_purchases, expected_purchases

    con, home = _loaded("cdnow", "datasets/clv/CDNOW_sample.txt", header=False,
                        columns=["customer_id", "sample_id", "order_date", "cds", "dollars"])
    res = run_tool("predict_clv", {"table": "cdnow", "customer_column": "customer_id", "date_column": "order_date",
                                   "value_column": "dollars", "date_format": "%Y%m%d", "as_of": "1997-09-30",
                                   "horizon_days": 273}, con, home)
    m, e = res.metrics, case["expect"]
    why = [w for k, v in e["bgnbd"].items() for w in close(m["bgnbd"][k], v, rel=0.005, label=f"BG/NBD {k}")]
    why += [w for k, v in e["gamma_gamma"].items() for w in close(m["gamma_gamma"][k], v, rel=0.01, label=f"GG {k}")]
    why += close(m["log_likelihood"], e["log_likelihood"], abs_=0.1, label="log-likelihood")
    params = [m["bgnbd"][k] for k in ("r", "alpha", "a", "b")]
    for t, v in zip((1, 3, 32, 78), expected_purchases(params, [1, 3, 32, 78]), strict=True):
        why += close(float(v), e["expected_x"][str(t)], abs_=6e-4, label=f"E[X({t})]")
    cond = float(conditional_expected_purchases(params, 39, 2, 30.43, 38.86))
    return why + close(cond, e["conditional"], abs_=1e-3, label="conditional expectation")


@check
def telco_churn(case: dict) -> list[str]:
    con, home = _loaded("telco", "datasets/churn/telco_customer_churn.csv")
    res = run_tool("score_churn", {"table": "telco", "id_column": "customerid", "label_column": "churn"}, con, home)
    m = res.metrics
    why = [] if m["cv_auc"] >= case["expect"]["min_cv_auc"] else [f"CV AUC {m['cv_auc']:.3f}"]
    return why + ([] if m["reliable"] else ["marked unreliable"])


@check
def demo_churn(case: dict) -> list[str]:
    res = _demo("score_churn", {})
    m = res.metrics
    drivers = [d["driver"] for d in m["drivers"]][:6]
    why = [] if m["cv_auc"] >= 0.75 and m["holdout_auc"] >= 0.75 else [f"AUC {m['cv_auc']}/{m['holdout_auc']}"]
    return why + [f"planted driver {d!r} not in the top 6 {drivers}" for d in case["drivers"] if d not in drivers]


@check
def demo_segments(case: dict) -> list[str]:
    from sklearn.metrics import adjusted_rand_score

    from tools.warehouse import connect

    res = _demo("segment_customers", {"method": "behavioral"})
    con = connect(demo_home() / "warehouse.duckdb")
    pairs = con.execute("""SELECT t.planted_segment, s.segment_id FROM demo_truth t JOIN customer_segments s
        ON s.customer_id = t.customer_id AND s.run_id = ?""", [res.metrics["run_id"]]).fetchall()
    con.close()
    ari = adjusted_rand_score([p[0] for p in pairs], [p[1] for p in pairs])
    return [] if ari >= 0.8 else [f"adjusted Rand index {ari:.3f}"]


@check
def demo_leads(case: dict) -> list[str]:
    res = _demo("score_leads", {})
    auc = res.metrics.get("cv_auc")
    return [] if auc is not None and auc >= 0.75 else [f"lead CV AUC {auc}"]


@check
def demo_campaign_lift(case: dict) -> list[str]:
    """measure_campaign on the demo's past campaigns against an independent computation from the raw rows (pandas:
    each member converted or not in the 30 days after the send; the Wald interval of the difference in proportions)
    and against the planted truth: the truth inside the 95 % interval, the null campaign not called significant."""
    from datetime import timedelta

    from scipy.stats import norm

    from tools.warehouse import connect

    why = []
    con = connect(demo_home() / "warehouse.duckdb")
    try:
        truth = dict(con.execute("SELECT campaign_id, true_lift FROM demo_campaign_truth").fetchall())
        for campaign, true_lift in truth.items():
            m = run_tool("measure_campaign", {"campaign_id": campaign}, con, demo_home()).metrics
            send, window = con.execute("SELECT send_at::DATE, window_days FROM campaign_launches WHERE campaign_id = ?",
                                       [campaign]).fetchone()
            members = con.execute("SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?",
                                  [campaign]).df()
            buyers = set(con.execute("SELECT DISTINCT customer_id FROM orders WHERE order_date >= ? AND "
                                     "order_date < ?", [send, send + timedelta(days=window)]).df()["customer_id"])
            members["converted"] = members["customer_id"].isin(buyers)
            rates = members.groupby("arm")["converted"].agg(["mean", "size"])
            (p1, n1), (p0, n0) = rates.loc["treated"], rates.loc["holdout"]
            half = norm.ppf(0.975) * ((p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0) ** 0.5)
            why += close(m["lift"], p1 - p0, abs_=1e-9, label=f"{campaign} lift")
            why += close(m["ci_low"], p1 - p0 - half, abs_=1e-9, label=f"{campaign} ci_low")
            why += close(m["ci_high"], p1 - p0 + half, abs_=1e-9, label=f"{campaign} ci_high")
            if not m["ci_low"] <= true_lift <= m["ci_high"]:
                why.append(f"{campaign}: planted lift {true_lift} outside [{m['ci_low']:.4f}, {m['ci_high']:.4f}]")
            if true_lift == 0 and m["ci_low"] > 0:
                why.append(f"{campaign}: the null campaign was called significant")
    finally:
        con.close()
    return why
