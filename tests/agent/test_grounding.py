"""Grounding v2 against honest paraphrase and invented or misattributed figures.

The evidence is recorded from the demo warehouse (`northstar init --demo --customers 20000`, seed 7) with
`northstar tool NAME --json` (campaign_report for August and September and by campaign, segment_customers,
score_churn, analyze_experiment for both experiments, attribute_conversions, detect_anomalies,
analyze_sentiment), trimmed to what the answers quote; floats at 6 significant figures, as the model sees them.
The answers are written the way chat models write: rounded, with units in words, currency signs, lists, tables.
"""

from __future__ import annotations

from datetime import date

import pytest

from agent.grounding import Evidence, check_answer, from_state
from agent.planners.context_budget import tool_content

RESULTS = {
    'report_sep': {
        'summary': ('2026-09-01 to 2026-09-30: spend 104,132, 3,278 conversions, revenue 276,963, ROAS 2.66, CPA 31.77, '
                    'CTR 1.61 %. Versus the previous 30 days: spend -34.3%, conversions -13.2%, ROAS +30.7%. Best ROAS: '
                    'email (13.00); weakest: display (1.29).'),
        'data': [
            {'channel': 'search', 'spend': 33129.8, 'conversions': 960.78, 'revenue': 93572.4, 'ctr': 0.0443946, 'cpa': 34.4822, 'roas': 2.82442},
            {'channel': 'social', 'spend': 29027.2, 'conversions': 800.27, 'revenue': 64006.4, 'ctr': 0.0117794, 'cpa': 36.2717, 'roas': 2.20505},
            {'channel': 'display', 'spend': 16252.9, 'conversions': 299.4, 'revenue': 20973.7, 'ctr': 0.00402785, 'cpa': 54.2848, 'roas': 1.29046},
            {'channel': 'video', 'spend': 12696.5, 'conversions': 280.23, 'revenue': 23556.8, 'ctr': 0.00604581, 'cpa': 45.3073, 'roas': 1.85538},
            {'channel': 'affiliate', 'spend': 9542.07, 'conversions': 326.2, 'revenue': 29551.7, 'ctr': 0.0200049, 'cpa': 29.2522, 'roas': 3.09699},
            {'channel': 'email', 'spend': 3483.52, 'conversions': 611.04, 'revenue': 45301.8, 'ctr': 0.0299147, 'cpa': 5.70097, 'roas': 13.0046},
        ],
        'metrics': {'start': '2026-09-01', 'end': '2026-09-30', 'spend': 104132.0, 'conversions': 3277.92, 'revenue':
                   276963.0, 'ctr': 0.0161404, 'cpa': 31.7677, 'roas': 2.65973, 'change_vs_previous': {'spend':
                   -0.343386, 'conversions': -0.132045, 'revenue': -0.141745, 'roas': 0.307093, 'cpa': -0.243494}},
    },
    'report_aug': {
        'summary': ('2026-08-01 to 2026-08-31: spend 163,163, 3,906 conversions, revenue 333,716, ROAS 2.05, CPA 41.77, '
                    'CTR 1.20 %. Versus the previous 31 days: spend +10.7%, conversions +0.2%, ROAS -8.8%. Best ROAS: '
                    'email (15.73); weakest: display (0.49).'),
        'data': [
            {'channel': 'search', 'spend': 50058.9, 'conversions': 1362.49, 'revenue': 130163.0, 'ctr': 0.0439433, 'cpa': 36.7407, 'roas': 2.60019},
            {'channel': 'display', 'spend': 44251.7, 'conversions': 309.75, 'revenue': 21852.9, 'ctr': 0.00399557, 'cpa': 142.863, 'roas': 0.493831},
            {'channel': 'social', 'spend': 34362.3, 'conversions': 924.84, 'revenue': 73673.6, 'ctr': 0.0118764, 'cpa': 37.1548, 'roas': 2.14403},
            {'channel': 'video', 'spend': 19332.0, 'conversions': 371.42, 'revenue': 31256.5, 'ctr': 0.00598028, 'cpa': 52.0488, 'roas': 1.61683},
            {'channel': 'affiliate', 'spend': 12562.4, 'conversions': 394.87, 'revenue': 35954.5, 'ctr': 0.020054, 'cpa': 31.814, 'roas': 2.86207},
            {'channel': 'email', 'spend': 2595.52, 'conversions': 542.43, 'revenue': 40815.4, 'ctr': 0.0299472, 'cpa': 4.78499, 'roas': 15.7253},
        ],
        'metrics': {'start': '2026-08-01', 'end': '2026-08-31', 'spend': 163163.0, 'conversions': 3905.8, 'revenue':
                   333716.0, 'ctr': 0.0119889, 'cpa': 41.7745, 'roas': 2.04529, 'change_vs_previous': {'spend':
                   0.106741, 'conversions': 0.00163871, 'revenue': 0.0094304, 'roas': -0.087925, 'cpa': 0.10493}},
    },
    'report_campaign': {
        'summary': ('2026-09-01 to 2026-09-30: spend 104,132, 3,278 conversions, revenue 276,963, ROAS 2.66, CPA 31.77, '
                    'CTR 1.61 %. Versus the previous 30 days: spend -34.3%, conversions -13.2%, ROAS +30.7%. Best ROAS: '
                    'EM-ALWAYS-ON (13.00); weakest: DIS-2 (1.29).'),
        'data': [
            {'campaign': 'SEA-1', 'spend': 19877.9, 'roas': 2.82442},
            {'campaign': 'SOC-1', 'spend': 17416.3, 'roas': 2.20505},
            {'campaign': 'SEA-2', 'spend': 13251.9, 'roas': 2.82442},
            {'campaign': 'SOC-2', 'spend': 11610.9, 'roas': 2.20505},
            {'campaign': 'DIS-1', 'spend': 9751.71, 'roas': 1.29046},
            {'campaign': 'VID-1', 'spend': 7617.88, 'roas': 1.85538},
        ],
        'metrics': {},
    },
    'segments': {
        'summary': ('20,000 customers segmented as of 2026-09-30 by RFM into 11 segments: At Risk 4,688 (23.4 %, 17.0 % '
                    'of revenue); Champions 3,237 (16.2 %, 47.7 % of revenue); Potential Loyalists 2,634 (13.2 %, 4.5 % '
                    'of revenue); Loyal 2,433 (12.2 %, 18.6 % of revenue); Lost 2,001 (10.0 %, 2.1 % of revenue); About '
                    'to Sleep 1,299 (6.5 %, 1.2 % of revenue); Promising 974 (4.9 %, 0.6 % of revenue); Need Attention '
                    '933 (4.7 %, 2.9 % of revenue); Hibernating 878 (4.4 %, 1.0 % of revenue); New 482 (2.4 %, 0.3 % of '
                    "revenue); Can't Lose Them 441 (2.2 %, 4.1 % of revenue). Largest: At Risk; most revenue: Champions "
                    '(4,236,748). Membership saved as run seg-72d2321a9081.'),
        'data': [
            {'segment_name': 'At Risk', 'customers': 4688, 'share': 0.2344, 'revenue': 1512130.0, 'revenue_share': 0.170282, 'mean_recency_days': 455.628, 'segment_id': 'at_risk'},
            {'segment_name': 'Champions', 'customers': 3237, 'share': 0.16185, 'revenue': 4236750.0, 'revenue_share': 0.477104, 'mean_recency_days': 34.1347, 'segment_id': 'champions'},
            {'segment_name': 'Potential Loyalists', 'customers': 2634, 'share': 0.1317, 'revenue': 397551.0, 'revenue_share': 0.0447686, 'mean_recency_days': 47.273, 'segment_id': 'potential_loyalists'},
            {'segment_name': 'Loyal', 'customers': 2433, 'share': 0.12165, 'revenue': 1647640.0, 'revenue_share': 0.185542, 'mean_recency_days': 176.046, 'segment_id': 'loyal'},
            {'segment_name': 'Lost', 'customers': 2001, 'share': 0.10005, 'revenue': 182780.0, 'revenue_share': 0.0205831, 'mean_recency_days': 582.245, 'segment_id': 'lost'},
            {'segment_name': 'About to Sleep', 'customers': 1299, 'share': 0.06495, 'revenue': 108126.0, 'revenue_share': 0.0121761, 'mean_recency_days': 189.046, 'segment_id': 'about_to_sleep'},
            {'segment_name': 'Promising', 'customers': 974, 'share': 0.0487, 'revenue': 54136.9, 'revenue_share': 0.00609641, 'mean_recency_days': 73.539, 'segment_id': 'promising'},
            {'segment_name': 'Need Attention', 'customers': 933, 'share': 0.04665, 'revenue': 260134.0, 'revenue_share': 0.029294, 'mean_recency_days': 205.477, 'segment_id': 'need_attention'},
            {'segment_name': 'Hibernating', 'customers': 878, 'share': 0.0439, 'revenue': 86921.0, 'revenue_share': 0.00978824, 'mean_recency_days': 392.659, 'segment_id': 'hibernating'},
            {'segment_name': 'New', 'customers': 482, 'share': 0.0241, 'revenue': 27235.1, 'revenue_share': 0.00306697, 'mean_recency_days': 26.5809, 'segment_id': 'new'},
            {'segment_name': "Can't Lose Them", 'customers': 441, 'share': 0.02205, 'revenue': 366737.0, 'revenue_share': 0.0412986, 'mean_recency_days': 392.22, 'segment_id': 'cant_lose_them'},
        ],
        'metrics': {'run_id': 'seg-72d2321a9081', 'as_of': '2026-09-30', 'method': 'rfm', 'customers': 20000,
                   'segments': 11},
    },
    'churn': {
        'summary': ('Churn risk for 13,462 customers as of 2026-09-30: 7,302 high risk (probability ≥ 50 %), 4,050 '
                    'medium; mean probability 58.9 %, value at risk 2,219,158 (trailing-year revenue × probability). '
                    'Model: gradient boosting, CV AUC 0.874, holdout AUC 0.867 on customers active on 2026-07-02, '
                    'predicted out of time by a model fitted at 2026-04-03, top-decile lift 1.54; reliable enough to act '
                    'on. Top drivers: web/app activity, recency, order value.'),
        'data': [
            {'customer_id': 2643, 'probability': 0.9623, 'risk_band': 'high', 'revenue_365d': 2097.82, 'value_at_risk': 2018.63, 'top_reasons': 'web/app activity, recency, support tickets'},
            {'customer_id': 17846, 'probability': 0.8229, 'risk_band': 'high', 'revenue_365d': 2330.34, 'value_at_risk': 1917.7, 'top_reasons': 'web/app activity, spend, tenure'},
            {'customer_id': 1689, 'probability': 0.6917, 'risk_band': 'high', 'revenue_365d': 2636.63, 'value_at_risk': 1823.71, 'top_reasons': 'order value'},
            {'customer_id': 12582, 'probability': 0.9917, 'risk_band': 'high', 'revenue_365d': 1822.29, 'value_at_risk': 1807.11, 'top_reasons': 'web/app activity, recency, support tickets'},
            {'customer_id': 5901, 'probability': 0.9068, 'risk_band': 'high', 'revenue_365d': 1869.12, 'value_at_risk': 1694.83, 'top_reasons': 'web/app activity, purchase frequency, support tickets'},
        ],
        'metrics': {'run_id': 'churn-9423b896877c', 'as_of': '2026-09-30', 'cv_auc': 0.874018, 'holdout_auc': 0.867411,
                   'top_decile_lift': 1.53606, 'reliable': True, 'scored': 13462, 'high_risk': 7302, 'medium_risk':
                   4050, 'mean_probability': 0.5889},
    },
    'freeship': {
        'summary': ('EXP-FREESHIP "Free shipping banner": 7,052 participants (control 3,485, free_shipping 3,567). '
                    'converted in control: 4.02 %. free_shipping: 5.16 % (+1.14 pp, +28.4%; 95.0% CI +0.17 pp to +2.12 '
                    'pp; p = 0.022: significant). Verdict: free_shipping beats control on converted. revenue: '
                    'free_shipping +0.8085 (p = 0.041, significant).'),
        'data': [
            {'metric': 'converted', 'type': 'rate', 'arm': 'control', 'is_control': True, 'n': 3485, 'mean': 0.0401722},
            {'metric': 'converted', 'type': 'rate', 'arm': 'free_shipping', 'is_control': False, 'n': 3567, 'mean': 0.051584, 'lift': 0.0114118, 'lift_relative': 0.284072, 'ci_low': 0.00165528, 'ci_high': 0.0211683, 'ci_relative_low': 0.0358689, 'ci_relative_high': 0.591747, 'p_value': 0.0221094, 'p_adjusted': 0.0221094, 'significant': True},
            {'metric': 'revenue', 'type': 'mean', 'arm': 'control', 'is_control': True, 'n': 3485, 'mean': 2.66729},
            {'metric': 'revenue', 'type': 'mean', 'arm': 'free_shipping', 'is_control': False, 'n': 3567, 'mean': 3.47576, 'lift': 0.808467, 'lift_relative': 0.303105, 'ci_low': 0.0389147, 'ci_high': 1.58637, 'ci_relative_low': 0.0131624, 'ci_relative_high': 0.666379, 'p_value': 0.0414813, 'p_adjusted': 0.0414813, 'significant': True},
        ],
        'metrics': {'arms': {'control': 3485, 'free_shipping': 3567}, 'verdict': 'winner', 'winner': 'free_shipping',
                   'srm_p_value': 0.328833, 'confidence_level': 0.95},
    },
    'subject': {
        'summary': ('EXP-SUBJECT "Subject line style": 12,000 participants (control 4,049, emoji 3,987, question 3,964). '
                    'converted in control: 5.93 %. emoji: 6.14 % (+0.22 pp, +3.7%; 97.5% CI -0.97 pp to +1.41 pp; p = '
                    '1.000 after Holm: not significant). question: 5.83 % (-0.10 pp, -1.7%; 97.5% CI -1.28 pp to +1.08 '
                    'pp; p = 1.000 after Holm: not significant). Verdict: no arm beats control on converted: the '
                    'differences are within noise, so do not call a winner (this test could reliably detect lifts of '
                    'about +1.64 pp or more). revenue: emoji +0.05875 (p = 1.000, not significant); question -0.1899 (p ='
                    ' 1.000, not significant).'),
        'data': [
            {'metric': 'converted', 'type': 'rate', 'arm': 'control', 'is_control': True, 'n': 4049, 'mean': 0.0592739},
            {'metric': 'converted', 'type': 'rate', 'arm': 'emoji', 'is_control': False, 'n': 3987, 'mean': 0.0614497, 'lift': 0.00217582, 'lift_relative': 0.0367078, 'ci_low': -0.00973463, 'ci_high': 0.0140863, 'ci_relative_low': -0.148943, 'ci_relative_high': 0.262857, 'p_value': 0.682164, 'p_adjusted': 1.0, 'significant': False},
            {'metric': 'converted', 'type': 'rate', 'arm': 'question', 'is_control': False, 'n': 3964, 'mean': 0.0582745, 'lift': -0.000999425, 'lift_relative': -0.0168611, 'ci_low': -0.0127781, 'ci_high': 0.0107793, 'ci_relative_low': -0.195422, 'ci_relative_high': 0.201328, 'p_value': 0.849178, 'p_adjusted': 1.0, 'significant': False},
            {'metric': 'revenue', 'type': 'mean', 'arm': 'control', 'is_control': True, 'n': 4049, 'mean': 3.74707},
            {'metric': 'revenue', 'type': 'mean', 'arm': 'emoji', 'is_control': False, 'n': 3987, 'mean': 3.80582, 'lift': 0.058753, 'lift_relative': 0.0156797, 'ci_low': -0.780343, 'ci_high': 0.919558, 'ci_relative_low': -0.184836, 'ci_relative_high': 0.27737, 'p_value': 0.878717, 'p_adjusted': 1.0, 'significant': False},
            {'metric': 'revenue', 'type': 'mean', 'arm': 'question', 'is_control': False, 'n': 3964, 'mean': 3.55713, 'lift': -0.189932, 'lift_relative': -0.0506881, 'ci_low': -1.04414, 'ci_high': 0.631181, 'ci_relative_low': -0.248468, 'ci_relative_high': 0.187958, 'p_value': 0.613273, 'p_adjusted': 1.0, 'significant': False},
        ],
        'metrics': {'arms': {'control': 4049, 'emoji': 3987, 'question': 3964}, 'verdict': 'no_significant_difference',
                   'winner': None, 'srm_p_value': 0.616776, 'confidence_level': 0.975},
    },
    'attribution': {
        'summary': ('10,530 journeys from 2026-07-03 to 2026-09-30 (2,347 converting paths, 2,347 conversions, value '
                    '190,457). Markov (order 1) credits search 25.7 %, social 22.8 %, display 17.8 %. Removing search '
                    'would lose 49.9 % of conversions (removal effect). Versus last touch, search moves -5.4 pp (31.1 % →'
                    ' 25.7 %). Shapley, which compares conversion rates with and without each channel, gives display only'
                    ' -0.1 %: it is often on converting paths but adds little to their conversion rate. Attribution shows'
                    ' association along journeys, not incrementality; test causality with an experiment.'),
        'data': [
            {'channel': 'search', 'model': 'last_touch', 'conversions': 730.0, 'value': 59578.8, 'share': 0.311035},
            {'channel': 'social', 'model': 'last_touch', 'conversions': 543.0, 'value': 44625.8, 'share': 0.231359},
            {'channel': 'email', 'model': 'last_touch', 'conversions': 393.0, 'value': 32131.5, 'share': 0.167448},
            {'channel': 'display', 'model': 'last_touch', 'conversions': 343.0, 'value': 27259.9, 'share': 0.146144},
            {'channel': 'affiliate', 'model': 'last_touch', 'conversions': 194.0, 'value': 15529.8, 'share': 0.0826587},
            {'channel': 'video', 'model': 'last_touch', 'conversions': 144.0, 'value': 11331.3, 'share': 0.0613549},
            {'channel': 'search', 'model': 'markov', 'conversions': 603.89, 'value': 49145.3, 'share': 0.257303, 'removal_effect': 0.499054},
            {'channel': 'social', 'model': 'markov', 'conversions': 534.209, 'value': 43571.6, 'share': 0.227614, 'removal_effect': 0.44147},
            {'channel': 'display', 'model': 'markov', 'conversions': 417.958, 'value': 33697.3, 'share': 0.178082, 'removal_effect': 0.3454},
            {'channel': 'email', 'model': 'markov', 'conversions': 377.619, 'value': 30753.7, 'share': 0.160894, 'removal_effect': 0.312064},
            {'channel': 'affiliate', 'model': 'markov', 'conversions': 218.758, 'value': 17659.5, 'share': 0.0932076, 'removal_effect': 0.180781},
            {'channel': 'video', 'model': 'markov', 'conversions': 194.565, 'value': 15629.7, 'share': 0.0828994, 'removal_effect': 0.160788},
        ],
        'metrics': {'journeys': 10530, 'converting_paths': 2347, 'conversions': 2347.0, 'value': 190457.0,
                   'removal_effects': {'affiliate': 0.180781, 'display': 0.3454, 'email': 0.312064, 'search': 0.499054,
                   'social': 0.44147, 'video': 0.160788}},
    },
    'anomalies': {
        'summary': ('conversions, 2026-04-04 to 2026-09-30 (180 days): 1 unusual day (|robust z| ≥ 4). 2026-06-17: 91.71 '
                    'vs expected 116 (range 96.96–138), a 21% drop. Check tracking, budgets and campaign changes on those'
                    ' dates before acting.'),
        'data': [
            {'day': '2026-06-17', 'value': 91.71, 'expected': 115.873, 'expected_low': 96.9588, 'expected_high': 138.476, 'change': -0.208527, 'score': -5.24922, 'direction': 'drop'},
        ],
        'metrics': {'start': '2026-04-04', 'end': '2026-09-30', 'points': 180, 'anomalies': 1, 'threshold': 4.0},
    },
    'sentiment': {
        'summary': ('4,116 texts from reviews: 75.6 % positive, 1.7 % neutral, 22.7 % negative (mean compound +0.403). '
                    'Worst aspect: delivery (mean +0.234, 31.9 % negative, 871 mentions). Spike: week of 2025-06-02: 34.6'
                    ' % negative vs 18.1 % baseline (26 texts), worst aspect quality. Spike: week of 2025-11-10: 47.4 % '
                    'negative vs 24.5 % baseline (38 texts), worst aspect app. Spike: week of 2026-08-03: 54.5 % negative'
                    ' vs 20.3 % baseline (200 texts), worst aspect delivery. Frequent in negative texts: "app keeps '
                    'crashing", "overpriced and poor", "quality is poor", "answered my emails", "lost and shipping".'),
        'data': [
        ],
        'metrics': {'texts': 4116, 'mean_compound': 0.4034, 'distribution': {'positive': 3111, 'neutral': 72,
                   'negative': 933}, 'negative_share': 0.226676, 'aspects': [{'aspect': 'delivery', 'mentions': 871,
                   'mean_compound': 0.234024, 'negative_share': 0.319173}, {'aspect': 'app', 'mentions': 822,
                   'mean_compound': 0.267685, 'negative_share': 0.244526}, {'aspect': 'quality', 'mentions': 891,
                   'mean_compound': 0.288339, 'negative_share': 0.283951}, {'aspect': 'support', 'mentions': 785,
                   'mean_compound': 0.4354, 'negative_share': 0.243312}, {'aspect': 'price', 'mentions': 873,
                   'mean_compound': 0.441997, 'negative_share': 0.216495}]},
    },
}

CHANNELS = ["affiliate", "display", "email", "push", "search", "sms", "social", "video"]


def evidence(*names: str, turn: int | None = None, **extra) -> Evidence:
    """The thread's evidence: one recorded result per turn, in order."""
    results = [(n + 1, RESULTS[name]) for n, name in enumerate(names)]
    return Evidence(results=results, questions=extra.pop("questions", []), data_range=(date(2024, 10, 1),
                    date(2026, 9, 30)), today=date(2026, 9, 30), names=CHANNELS, turn=turn or len(names), **extra)


HONEST = [  # (results of the thread, an answer a model could honestly give from them)
    (("report_sep",), "September spend came to about $104K, down 34.3 percent on the previous 30 days."),
    (("report_sep",), "Revenue was roughly $0.28 million in September 2026, for a ROAS of 2.66."),
    (("report_sep",), "We had nearly 3,300 conversions at a CPA of $31.77."),
    (("report_sep",), "CPA fell 24 per cent against the previous period."),
    (("report_sep",), "Click-through rate was 1.6 %."),
    (("report_sep",), "Email had the best ROAS at 13.0; display was the weakest at 1.29."),
    (("report_sep",), "Email's CPA was just $5.70, against $54.28 for display."),
    (("report_sep",), "Search spent $33.1K and returned a ROAS of 2.82."),
    (("report_sep",), "Affiliate ROAS was about 3.1."),
    (("report_sep",), "ROAS improved 30.7 % while conversions fell 13.2 %."),
    (("report_sep",), "| Channel | Spend | ROAS |\n|---|---|---|\n| search | 33,130 | 2.82 |\n"
                      "| email | 3,484 | 13.00 |\n| display | 16,253 | 1.29 |"),
    (("report_sep",), "1. Search: 960 conversions\n2. Social: 800 conversions\n3. Email: 611 conversions"),
    (("report_sep",), "Email revenue was $45.3 thousand on $3.5K of spend."),
    (("report_sep",), "Display's ROAS of 1.29 is less than half of search's 2.82."),
    (("report_sep",), "Video CPA was $45.31 and social CTR 1.18 %."),
    (("report_sep",), "### 1. Overview\nSpend was 104,132 in September.\n\n### 2. Next step\n"
                      "Move budget toward email, whose ROAS was 13.00."),
    (("report_sep",), "Q3 2026 ended with September ROAS at 2.66."),
    (("report_sep",), "Display cost 5,428 cents per conversion."),
    (("report_campaign",), "EM-ALWAYS-ON led on ROAS (13.00) while DIS-2 trailed at 1.29."),
    (("report_aug", "report_sep"), "In August 2026 spend was $163K with a ROAS of 2.05; in September ROAS rose "
                                   "to 2.66."),
    (("report_aug", "report_sep"), "Email's ROAS slipped from 15.73 in August to 13.00 in September."),
    (("report_aug", "report_sep"), "Display ROAS recovered from 0.49 to 1.29."),
    (("report_aug", "report_sep"), "August revenue was 333,716 versus 276,963 in September."),
    (("segments",), "About a quarter of customers (23.4 %) are At Risk, 4,688 people."),
    (("segments",), "Champions are 16.2 % of customers but bring 47.7 % of revenue, about $4.24 million."),
    (("segments",), "The model found 11 segments across 20,000 customers as of September 30, 2026."),
    (("segments",), "Nearly half of revenue comes from Champions (47.7 %)."),
    (("segments",), "Lost customers number 2,001, a tenth of the base."),
    (("segments",), "New customers are the smallest group but one: 482, or 2.4 %."),
    (("churn",), "Churn risk covers 13,462 active customers; 7,302 are high risk and 4,050 medium."),
    (("churn",), "Mean churn probability is 59 %, with about $2.2 million of revenue at risk."),
    (("churn",), "The model is reliable: holdout AUC 0.87, top-decile lift 1.5."),
    (("churn",), "Over 7,000 customers are at high risk."),
    (("freeship",), "The free shipping banner won: 5.16 % converted versus 4.02 % in control, a lift of 1.14 "
                    "percentage points (p = 0.022)."),
    (("freeship",), "Revenue per participant rose by about 0.81 with the banner (p = 0.041)."),
    (("freeship",), "Conversion was up 28 % relative to control across 7,052 participants."),
    (("subject",), "In the subject line test, emoji converted at 6.14 % against 5.93 % for control, which is not "
                   "significant (p = 1.000)."),
    (("subject",), "The test could only detect lifts of about 1.6 pp or more, so neither arm is a winner."),
    (("subject",), "12,000 people took part: 4,049 in control, 3,987 emoji and 3,964 question."),
    (("attribution",), "Markov credits search with 25.7 % of conversions, social 22.8 % and display 17.8 %."),
    (("attribution",), "Removing search would lose about half of conversions (49.9 %)."),
    (("attribution",), "Last touch gives search 31.1 %, which falls to 25.7 % under Markov, a 5.4-point drop."),
    (("attribution",), "10,530 journeys between July 3 and September 30, 2026 produced 2,347 conversions worth "
                       "about 190K."),
    (("anomalies",), "Conversions dropped 21 % on June 17, 2026: 91.7 against an expected 116."),
    (("anomalies",), "Over the 180 days to September 30 there was just one unusual day."),
    (("sentiment",), "Of 4,116 reviews, 75.6 % were positive and 22.7 % negative."),
    (("sentiment",), "Delivery is the worst aspect: 31.9 % of its 871 mentions are negative."),
    (("sentiment",), "Negative reviews spiked to 54.5 % in the week of August 3, 2026, against a 20.3 % baseline."),
    (("sentiment",), "Roughly three quarters of reviews are positive, and mean sentiment is +0.40."),
    (("attribution",), "Email's share of last-touch conversions was 16.7 %."),
    (("report_sep", "segments"), "Champions hold 47.7 % of revenue, and in September email returned 13.00 per "
                                 "unit of spend."),
]

INVENTED = [  # (results of the thread, an answer with a figure no result supports or one given to the wrong entity)
    (("report_sep",), "Display had the best ROAS at 13.00."),
    (("report_sep",), "Search ROAS was 2.66."),
    (("report_sep",), "CTR was about 3 %."),
    (("report_sep",), "Conversions grew 4 %."),
    (("report_sep",), "Next month revenue will be about 300,000."),
    (("report_sep",), "ROAS was about 3."),
    (("report_sep",), "Social had the best ROAS at 3.10."),
    (("report_sep",), "Email's CPA was $7.50."),
    (("report_sep",), "September revenue was $390K."),
    (("report_sep",), "Spend fell 43 % on the previous 30 days."),
    (("report_sep",), "Search spend was $50.1K in September."),
    (("report_sep",), "Video ROAS was about 2.2."),
    (("report_sep",), "Email's ROAS was twice search's."),
    (("segments",), "Champions bring 17.0 % of revenue."),
    (("segments",), "At Risk is 16.2 % of customers."),
    (("segments",), "About 5 % of customers are New."),
    (("segments",), "Lost customers are a fifth of the base."),
    (("churn",), "The churn model's holdout AUC was 0.91."),
    (("churn",), "About 9,000 customers are high risk."),
    (("freeship",), "Free shipping lifted conversion by 2.5 percentage points."),
    (("freeship",), "Control converted at 5.16 %."),
    (("subject",), "The emoji arm converted at 5.93 %."),
    (("attribution",), "Markov gives social 25.7 % of conversions."),
    (("attribution",), "Removing display would lose 49.9 % of conversions."),
    (("sentiment",), "Negative reviews spiked to 64.5 % in early August."),
    (("sentiment",), "Delivery mentions totalled 1,871."),
    (("anomalies",), "Conversions dropped 31 % on June 17, 2026."),
    (("report_sep",), "In 2019 spend was 104,132."),
]


def _accepted(names, answer) -> bool:
    return check_answer(answer, evidence(*names)).grounded


def test_at_least_95_percent_of_honest_paraphrases_are_accepted():
    rejected = [(a, [(r.reason, r.figures) for r in check_answer(a, evidence(*n)).removed])
                for n, a in HONEST if not _accepted(n, a)]
    assert len(HONEST) >= 40
    assert 1 - len(rejected) / len(HONEST) >= 0.95, rejected


def test_at_least_90_percent_of_invented_or_misattributed_figures_are_caught():
    missed = [a for n, a in INVENTED if _accepted(n, a)]
    assert len(INVENTED) >= 20
    assert 1 - len(missed) / len(INVENTED) >= 0.90, missed


@pytest.mark.parametrize("answer, why", [
    ("Display had the best ROAS at 13.00.", "misattributed"),
    ("Search and social drove ROAS of 2.21 and 2.82.", "misattributed"),
    ("Search and social drove ROAS of 2.82 and 2.21.", None),
    ("CTR was about 3 %.", "misattributed"),
    ("Conversions grew 4 %.", "unsupported"),
])
def test_a_figure_must_belong_to_the_entity_it_is_said_of(answer, why):
    verdict = check_answer(answer, evidence("report_sep"))
    assert (verdict.removed[0].reason if verdict.removed else None) == why


def test_an_unsupported_sentence_is_removed_and_the_rest_kept():
    answer = ("September spend was 104,132 with a ROAS of 2.66. Next month revenue will be 987,654. "
              "Email had the best ROAS at 13.00.")
    verdict = check_answer(answer, evidence("report_sep"))
    assert not verdict.grounded and len(verdict.removed) == 1
    assert "987,654" not in verdict.text
    assert "104,132" in verdict.text and "13.00" in verdict.text
    assert "I removed 1 statement with figures no tool returned" in verdict.text


def test_the_summaries_replace_the_answer_only_when_nothing_grounded_is_left():
    ev = evidence("report_sep", replacement="**campaign report**: spend 104,132.")
    verdict = check_answer("Here is the picture:\n- Revenue will double to 550,000 next month.", ev)
    assert verdict.text.startswith("**campaign report**: spend 104,132.")
    assert "550,000" not in verdict.text


def test_a_list_item_with_an_invented_figure_goes_and_the_numbering_stays_accepted():
    answer = "1. Search ROAS 2.82\n2. Email ROAS 13.00\n6. Display ROAS 4.10\n7. Video ROAS 1.86"
    verdict = check_answer(answer, evidence("report_sep"))
    assert [r.figures for r in verdict.removed] == [["4.10"]]
    assert "7. Video ROAS 1.86" in verdict.text


def test_years_and_dates_come_from_the_question_the_data_range_or_the_results():
    ev = evidence("report_sep", questions=["How did we do in 2025 compared with 2026?"])
    assert check_answer("In 2025 and in September 2026 ROAS was 2.66 overall.", ev).grounded
    assert not check_answer("Back in 2017 ROAS was 2.66.", ev).grounded
    assert check_answer("From September 1 to 30, 2026 spend was 104,132.", ev).grounded
    assert not check_answer("On 2027-03-01 spend will be 104,132.", ev).grounded


def test_a_claim_that_an_action_ran_must_match_an_executed_action():
    one = [{"turn": 1, "name": "create_audience", "args": {"name": "Winback October"}, "ok": True}]
    ev = evidence("segments", actions=one)
    assert check_answer("The audience 'Winback October' has been created.", ev).grounded
    both = check_answer("Both audiences are created.", ev)
    assert not both.grounded and both.removed[0].reason == "action"
    assert not check_answer("The audience 'Champions VIP' was created.", ev).grounded
    assert not check_answer("The budget has been updated.", ev).grounded
    assert check_answer("I drafted the budget change; it is waiting for an approver.", ev).grounded
    assert not check_answer("The campaign was scheduled.", evidence("segments")).grounded


def test_follow_ups_are_grounded_in_earlier_turns_of_the_thread():
    """Turn 1 ran campaign_report; turn 2 ('which channel had the best ROAS?') calls no tool."""
    call = {"id": "call_1", "type": "function", "function": {"name": "campaign_report", "arguments": "{}"}}
    state = {"turn": 2, "question": "Which channel had the best ROAS?", "calls": [], "messages": [
        {"role": "user", "content": "How did September go?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": tool_content(RESULTS["report_sep"])},
        {"role": "assistant", "content": "Spend was 104,132."},
        {"role": "user", "content": "Which channel had the best ROAS?"}]}
    ev = from_state(state, action_names={"create_audience"}, data_range=(date(2024, 10, 1), date(2026, 9, 30)))
    assert [t for t, _ in ev.results] == [1]
    assert check_answer("Email had the best ROAS in September, at about 13.0.", ev).grounded
    assert not check_answer("Display had the best ROAS in September, at about 13.0.", ev).grounded
    assert not check_answer("Email had the best ROAS in September, at about 15.0.", ev).grounded


def test_a_total_in_a_results_prose_is_not_owned_by_the_entity_named_before_it():
    """plan_experiment beside a readout: "… 25,580 in control and … : 51,160 in total" is the plan's total, although
    "control" (an arm of the readout) is the entity written nearest before it."""
    plan = {"summary": "You need 25,580 participants in control and 25,580 in each of 1 treatment arm(s): "
                       "51,160 in total."}
    readout = {"summary": "Readout.", "data": [{"arm": "control", "n": 4049},
                                               {"arm": "emoji", "n": 3987, "total_sample_size": 8036}]}
    verdict = check_answer(plan["summary"], Evidence(results=[(1, readout), (1, plan)], turn=1, questions=["q"]))
    assert verdict.grounded and not verdict.removed
