"""generate_content_variants: compliant copy drafts for a channel and goal, ranked by a subject-line open model.

Offline, a deterministic composer fills the templates of knowledge/phrases.yaml; with an LLM provider the
planner writes drafts and passes them as `candidates`. Either way every text goes through the compliance
checks (tools/compliance.py, rules from the brand guide): repairable problems are fixed, the rest dropped
with the reasons shown. Nothing is sent.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from tools import compliance
from tools.common import pct
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import table_exists

PHRASES = Path(__file__).resolve().parents[2] / "knowledge" / "phrases.yaml"
Channel = Literal["email_subject", "email_body", "push", "sms", "ad_headline", "ad_description", "social"]
Tone = Literal["friendly", "urgent", "premium", "playful", "reassuring"]
SLOT = re.compile(r"\{(\w+)\}")
MERGE_TAGS = {"first_name", "shop_link", "unsubscribe_link"}
FEATURES = ("personalised", "question", "number", "urgency", "emoji", "long")
URGENCY = re.compile(r"\b(tonight|today|last chance|ends?|ending|hurry|only|now|final|48 hours|24 hours|"
                     r"deadline|expires?)\b", re.I)


class ContentParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    channel: Channel = "email_subject"
    """Where the copy goes."""
    goal: str = Field("win back lapsed customers", min_length=2, max_length=300)
    """What the message should achieve (win-back, onboarding, cross-sell, upsell, promotion, new arrivals …)."""
    audience: str | None = Field(None, max_length=200)
    """Audience or segment (e.g. a segment name from segment_customers); shapes tone and is reported."""
    offer: str | None = Field(None, max_length=120)
    """The offer, e.g. "20% off outdoor gear" (default: the goal's usual offer, if any)."""
    product: str | None = Field(None, max_length=80)
    """Product or category to feature (default: the goal's usual wording)."""
    tone: Tone | None = None
    """Tone (default: premium for loyal or VIP audiences, friendly otherwise)."""
    n: int = Field(5, ge=1, le=20)
    """How many variants to return."""
    candidates: list[str] | None = Field(None, max_length=50)
    """Drafts written elsewhere (e.g. by an LLM): checked and ranked like the composer's own."""


class ContentResult(ToolResult):
    refused: bool = False
    """True when the request itself asks for something the brand guide bans (see summary for the rule)."""


@lru_cache(maxsize=2)
def _bank(mtime: int) -> dict:
    return yaml.safe_load(PHRASES.read_text(encoding="utf-8"))


def bank() -> dict:
    return _bank(PHRASES.stat().st_mtime_ns)


def resolve_goal(goal: str) -> str:
    """The phrase-bank goal whose aliases the text mentions (first match), else "general"."""
    text = goal.lower()
    for key, spec in bank()["goals"].items():
        if key.replace("_", " ") in text or any(a in text for a in spec.get("aliases", [])):
            return key
    return "general"


def _fill(template: str, slots: dict) -> str:
    for _ in range(3):  # phrases may contain {product} / {offer}
        template = SLOT.sub(lambda m: slots.get(m.group(1), m.group(0)) if m.group(1) not in MERGE_TAGS
                            else m.group(0), template)
    text = re.sub(r"(^|[.?!]\s+|\n\n)([a-z])", lambda m: m.group(1) + m.group(2).upper(), template)
    return re.sub(r"[ \t]+", " ", text).replace(" .", ".").replace(" ,", ",").strip()


def _lc(s: str) -> str:
    return s if s.startswith(("I ", bank()["brand"])) else s[:1].lower() + s[1:]


def compose(goal_key: str, channel: str, offer: str | None, product: str | None, tone: str) -> list[str]:
    """Every fluent text the templates allow, interleaved across templates so the first ones differ most."""
    b = bank()
    g = b["goals"][goal_key]
    offer = offer if offer is not None else g.get("default_offer")
    base = {"product": product or g["default_product"], "hashtag": b["hashtag"]}
    streams = []
    for tpl in b["templates"][channel]:
        needs = set(SLOT.findall(tpl))
        if ({"offer", "offer_cap"} & needs) and not offer:
            continue
        choices = {"hook": g["hooks"], "question": g["questions"], "benefit": g["benefits"], "cta": g["ctas"],
                   "headline": g["headlines"], "urgency": b["urgency"][tone]}
        keys = [k for k in choices if k in needs or f"{k}_lc" in needs or (k == "urgency" and
                                                                             "offer_sentence" in needs)]
        combos = []
        for values in itertools.product(*(choices[k] for k in keys)):
            slots = dict(base, **dict(zip(keys, values, strict=True)))
            slots.update({f"{k}_lc": _lc(_fill(v, slots)) for k, v in zip(keys, values, strict=True)})
            if offer:
                slots["offer"] = offer
                slots["offer_cap"] = offer[:1].upper() + offer[1:]
                slots["offer_sentence"] = f"{slots['offer_cap']}, {slots.get('urgency', '')}."
            else:
                slots["offer_sentence"] = ""
            combos.append(_fill(tpl, slots))
        streams.append(combos)
    seen, out = set(), []
    for text in (t for group in itertools.zip_longest(*streams) for t in group if t):
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def features(texts: list[str]) -> np.ndarray:
    """Subject-line features: personalised, question, number, urgency, emoji, longer than 60 characters."""
    rows = []
    for t in texts:
        first = t.split("\n", 1)[0]
        rows.append([bool(re.match(r"^(\{first_name\}|[A-Z][a-zà-ÿ]+),", first) or "{first_name}" in first),
                     "?" in first, bool(re.search(r"\d", first)), bool(URGENCY.search(first)),
                     bool(compliance.EMOJI.search(first)), len(first) > 60])
    return np.array(rows, dtype=float).reshape(len(texts), len(FEATURES))


class OpenModel:
    """Weighted logistic regression (Newton steps, L2 on the coefficients) fitted on grouped sends."""

    def __init__(self, x: np.ndarray, opens: np.ndarray, sends: np.ndarray, l2: float = 0.1):
        xx = np.c_[np.ones(len(x)), x]
        beta = np.zeros(xx.shape[1])
        penalty = np.r_[0.0, np.full(x.shape[1], l2)]
        for _ in range(50):
            p = 1 / (1 + np.exp(-xx @ beta))
            grad = xx.T @ (opens - sends * p) - penalty * beta
            hess = (xx * (sends * p * (1 - p))[:, None]).T @ xx + np.diag(penalty) + 1e-9 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta += step
            if np.abs(step).max() < 1e-8:
                break
        self.intercept, self.coef = beta[0], beta[1:]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.intercept + x @ self.coef)))


def weighted_auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of grouped data: P(an opener's score > a non-opener's), ties counted half."""
    order = np.argsort(score)
    score, pos, neg = score[order], pos[order], neg[order]
    uniq, inv = np.unique(score, return_inverse=True)
    neg_at = np.bincount(inv, weights=neg, minlength=len(uniq))
    below = np.cumsum(neg_at) - neg_at
    return float(np.sum(pos * (below[inv] + 0.5 * neg_at[inv])) / (pos.sum() * neg.sum()))


def open_model(con: duckdb.DuckDBPyConnection) -> tuple[OpenModel | None, dict]:
    """Logistic regression of opens on subject-line features from email_sends; quality on the latest 25 % of
    campaigns held out (AUC per send, open-rate MAE and pairwise ranking accuracy per subject line), then
    refitted on all sends for ranking."""
    if not table_exists(con, "email_sends"):
        return None, {"note": "no email_sends table: variants are not ranked"}
    rows = con.execute("""WITH c AS (SELECT campaign_id, min(sent_at) AS t FROM email_sends GROUP BY 1),
        r AS (SELECT campaign_id, dense_rank() OVER (ORDER BY t) AS rk, count(*) OVER () AS n FROM c)
        SELECT subject_line, rk > 0.75 * n AS test, count(*) AS sends, count_if(opened) AS opens
        FROM email_sends JOIN r USING (campaign_id) WHERE subject_line IS NOT NULL GROUP BY 1, 2
        ORDER BY 1, 2""").fetchall()
    if sum(r[2] for r in rows) < 1000:
        return None, {"note": "fewer than 1,000 e-mail sends: too little history to rank variants"}
    subj = np.array([r[0] for r in rows], dtype=object)
    x = features(list(subj))
    test = np.array([r[1] for r in rows], dtype=bool)
    sends, opens = np.array([r[2] for r in rows], float), np.array([r[3] for r in rows], float)
    quality: dict = {"train_sends": int(sends[~test].sum()), "test_sends": int(sends[test].sum())}
    if test.any() and (~test).any():
        p = OpenModel(x[~test], opens[~test], sends[~test]).predict(x[test])
        quality["auc_holdout"] = round(weighted_auc(p, opens[test], sends[test] - opens[test]), 4)
        template = np.array([re.sub(r"^[A-Z][a-zà-ÿ]+,", "{first_name},", s) for s in subj[test]])
        lines = []
        for t in sorted(set(template)):
            m = template == t
            if sends[test][m].sum() >= 300:
                lines.append((opens[test][m].sum() / sends[test][m].sum(), float(np.average(p[m],
                                                                                        weights=sends[test][m]))))
        pairs = [(a, b) for a, b in itertools.combinations(lines, 2) if a[0] != b[0]]
        if pairs:
            quality["pairwise_accuracy"] = round(float(np.mean([(a[0] > b[0]) == (a[1] > b[1]) for a, b in pairs])),
                                                 4)
            quality["mae_open_rate"] = round(float(np.mean([abs(a - q) for a, q in lines])), 4)
            quality["subject_lines_compared"] = len(lines)
    model = OpenModel(x, opens, sends)
    quality["base_open_rate"] = round(float(opens.sum() / sends.sum()), 4)
    quality["coefficients"] = {f: round(float(c), 3) for f, c in zip(FEATURES, model.coef, strict=True)}
    return model, quality


def diverse(rows: list[dict], n: int, max_overlap: float = 0.4) -> list[dict]:
    """Best-first, skipping texts whose words overlap a chosen one by more than max_overlap (Jaccard);
    the skipped ones fill up only if too few distinct texts remain."""
    words = [set(re.findall(r"[\w{}%]+", r["text"].lower())) for r in rows]
    common = {w for w in set().union(*words) if sum(w in ws for ws in words) >= 0.8 * len(words)} if rows else set()
    words = [(ws - common) or ws for ws in words]  # disclaimers and the brand name say nothing about variety
    pick: list[int] = []
    for i, w in enumerate(words):
        if len(pick) < n and all(len(w & words[j]) / len(w | words[j]) <= max_overlap for j in pick):
            pick.append(i)
    pick += [i for i in range(len(rows)) if i not in pick][: n - len(pick)]
    return [rows[i] for i in pick]


def _check(texts: list[str], channel: str, source: str) -> tuple[list[dict], list[dict]]:
    kept, dropped = [], []
    for text in texts:
        fixed, remaining = compliance.fix(text, channel)
        if remaining:
            dropped.append({"text": text, "source": source, "reasons": [str(v) for v in remaining]})
        else:
            repaired = [v.rule for v in compliance.check(text, channel)]
            kept.append({"text": fixed, "source": source, "fixed": repaired, "chars": len(fixed)})
    return kept, dropped


@register(example=ContentParams(channel="email_subject", goal="win back lapsed customers", offer="15% off", n=5),
          concepts={"copy": ["copy", "copywriting", "wording", "come up with", "ideas for", "creative", "creatives",
                             "tagline", "slogan", "cta", "call to action"],
                    "generate": [f"{verb} * {thing}" for verb in ("write", "draft", "compose", "come up with")
                                 for thing in ("subject line", "subject lines", "post", "posts", "sms", "texts",
                                               "headline", "headlines", "push", "copy", "email", "tagline")],
                    "posts": ["social posts", "captions", "replies to post", "reply templates",
                              "draft posts", "write posts", "texts for", "sms texts", "messages for"]},
          synonyms={"email_subject": ["subject line", "subject lines", "email subject", "subject"],
                    "email_body": ["email body", "email copy", "body copy", "newsletter copy"],
                    "push": ["push notification", "push notifications", "push message", "push"],
                    "sms": ["sms", "text message", "text messages", "texts"],
                    "ad_headline": ["headline", "headlines", "ad headline", "ad headlines"],
                    "ad_description": ["ad description", "ad descriptions", "ad copy", "ad text"],
                    "social": ["social post", "social posts", "instagram", "insta", "ig", "tiktok", "facebook post",
                               "linkedin post", "tweet", "caption", "captions"],
                    "premium": ["premium", "luxury", "upmarket", "upscale", "classy", "elegant"],
                    "playful": ["playful", "fun", "cheeky", "witty"],
                    "urgent": ["urgent", "urgency", "fomo"],
                    "friendly": ["friendly", "warm", "casual"],
                    "reassuring": ["reassuring", "calm", "soothing"]},
          requests=["Write subject lines to win back lapsed customers", "Draft an SMS for our 20% off weekend sale",
                    "Give me 5 push notifications for new arrivals", "ad headlines for the autumn collection",
                    "Suggest email copy to welcome new sign-ups", "write a cross-sell email for recent buyers",
                    "Create social posts announcing free shipping", "Check these subject lines against the brand guide",
                    "What subject line should we use for the VIP early access email?",
                    "draft ad descriptions for our upsell campaign", "write a subject line saying our product is great",
                    "copy for a promotional text message",
                    "come up with a few push messages to bring back app users",
                    "three texts announcing a members-only discount"])
def generate_content_variants(con: duckdb.DuckDBPyConnection, p: ContentParams) -> ContentResult:
    """Draft subject lines, ad copy, push or SMS text for a goal, checked against brand rules and ranked by opens."""
    for field, value in (("goal", p.goal), ("offer", p.offer), ("product", p.product)):
        refusal = compliance.check_request(value or "")
        if refusal:
            return ContentResult(refused=True, summary=f"Refused: the {field} asks for {refusal.message}. Rephrase "
                                 "it without the claim (e.g. 'free returns within 60 days' instead of 'risk-free').",
                                 metrics={"refused": True, "rule": refusal.rule, "field": field})
    goal = resolve_goal(p.goal)
    tone = p.tone or ("premium" if re.search(r"loyal|vip|high.?spend|premium", p.audience or "", re.I) else "friendly")
    kept, dropped = _check(list(dict.fromkeys(p.candidates or [])), p.channel, "candidate")
    pool = compose(goal, p.channel, p.offer, p.product, tone)
    own, own_dropped = _check(pool[: max(6 * p.n, 30)], p.channel, "composer")
    dropped += own_dropped
    seen = {k["text"] for k in kept}
    own = [k for k in own if k["text"] not in seen and not seen.add(k["text"])]
    model, quality = open_model(con)
    candidates_n = len(kept)
    if model is not None:
        for row, prob in zip(kept + own, model.predict(features([r["text"] for r in kept + own])), strict=True):
            row["predicted_open_rate"] = round(float(prob), 4)
    def rank(r):
        return -r.get("predicted_open_rate", 0)

    chosen = sorted(kept, key=rank)[: p.n] if p.candidates else []
    chosen = sorted(chosen + diverse(sorted(own, key=rank), p.n - len(chosen)), key=rank)
    for i, row in enumerate(chosen, 1):
        row["rank"] = i
    if not chosen:
        raise ToolError("No variant passed the compliance checks: " + "; ".join(
            f"{d['text'][:40]!r}: {', '.join(d['reasons'])}" for d in dropped[:3]))
    ch_rules = compliance.rules().channels[p.channel]
    metrics = {"channel": p.channel, "goal": goal, "tone": tone, "audience": p.audience, "variants": len(chosen),
               "candidates_checked": len(p.candidates or []), "candidates_passed": candidates_n,
               "dropped": dropped[:20], "max_chars": ch_rules.get("max_chars"), "model": quality}
    best = chosen[0]
    summary = f"{len(chosen)} compliant {p.channel} variant(s) for goal {goal} ({tone} tone). Best: {best['text']!r}"
    warnings = []
    if "predicted_open_rate" in best:
        summary += f" (predicted open rate {pct(best['predicted_open_rate'])})"
        q = quality
        summary += (f". Open model: held-out AUC {q.get('auc_holdout', float('nan')):.3f}, subject-line ranking "
                    f"accuracy {pct(q.get('pairwise_accuracy'))} on the latest campaigns"
                    f" (base open rate {pct(q['base_open_rate'])}).")
        if p.channel != "email_subject":
            warnings.append("Ranking uses a model of e-mail subject-line opens; for other channels it is a proxy.")
    else:
        summary += ". " + quality.get("note", "")
        warnings.append(quality.get("note", "Variants are not ranked."))
    if dropped:
        summary += f" {len(dropped)} draft(s) dropped for breaking brand rules (see metrics.dropped)."
    if any(r["fixed"] for r in chosen):
        summary += " Some variants were repaired (see the fixed column)."
    return ContentResult(summary=summary, data=chosen, metrics=metrics, warnings=warnings)
