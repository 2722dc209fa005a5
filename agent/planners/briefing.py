"""What the model is told about this warehouse: the system prompt, filled here and nowhere else.

Today, the currency, every table `query_data` may read with its data range and columns (personal-data columns
marked), the names the warehouse holds (channels, campaigns, experiments, segments, audiences) and the actions
with the analyses they read, all from the registry, the schema and the warehouse itself. Names come from data,
so each is cleaned, cut short and dropped when it reads like an instruction.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from agent import guardrails
from prompts import load

TTL_S = 60.0
MAX_NAMES = 15
NAME = re.compile(r"[^\w &'./+-]+")
ROLE = re.compile(r"\b(system|assistant|developer|user)\s*:|\binstructions?\b|\bprompt\b", re.I)


@dataclass(frozen=True)
class WarehouseFacts:
    tables: tuple[str, ...]
    """One line per readable table: `orders 2024-10-01..2026-09-30: order_id, customer_id, …`."""
    campaigns: tuple[tuple[str, tuple[str, ...]], ...]
    """(channel, campaign ids)."""
    start: str | None
    end: str | None


def system_prompt(ctx, env, tools: dict) -> str:
    """The system message for this warehouse, today and these tools."""
    facts = warehouse_facts(str(ctx.warehouse_path), int(time.monotonic() // TTL_S))
    actions = [s for s in tools.values() if s.approval]
    needs = sorted({tool for s in actions for choices in s.requires.values() for tool in choices.values()})
    currency = getattr(ctx, "currency", None) or "the account currency (tool results carry no symbol)"
    return load("system").format(
        today=env.today.isoformat(), currency=currency, tables="\n".join(facts.tables) or "(no tables yet)",
        names=names_line(env.vocab, facts), actions=", ".join(s.name for s in actions),
        prerequisites=", ".join(needs) or "see each action's description", bound=f"{ctx.max_budget_change:.0%}")


def clean_name(name) -> str | None:
    """A name from the data, safe to show the model: one short line that does not read like an instruction."""
    raw = str(name)
    if guardrails.check_input(raw) or ROLE.search(raw):
        return None
    text = re.sub(r"\s+", " ", NAME.sub(" ", raw)).strip()[:40].strip()
    return text or None


def _listing(names, limit: int = MAX_NAMES) -> str:
    kept = [n for n in (clean_name(x) for x in names) if n]
    more = f" (+{len(kept) - limit} more)" if len(kept) > limit else ""
    return ", ".join(kept[:limit]) + more


def names_line(vocab: dict, facts: WarehouseFacts) -> str:
    parts = []
    if vocab.get("channel"):
        parts.append("channels: " + _listing(vocab["channel"]))
    if facts.campaigns:
        parts.append("campaigns: " + "; ".join(f"{ch} {runs(ids)}" for ch, ids in facts.campaigns))
    experiments = {v: k for k, v in (vocab.get("experiment_name") or {}).items()}
    if vocab.get("experiment_id"):
        parts.append("experiments: " + ", ".join(
            f"{eid} ({clean_name(experiments[eid]) or '?'})" if eid in experiments else eid
            for eid in vocab["experiment_id"][:MAX_NAMES]))
    for key, label in (("segment", "segments (latest run)"), ("audience", "audiences"),
                       ("user_table", "loaded tables")):
        if vocab.get(key):
            parts.append(f"{label}: " + _listing(vocab[key]))
    return ". ".join(parts) or "(none yet)"


def runs(ids: tuple[str, ...]) -> str:
    """Campaign ids with numbered series folded: EM-001, EM-002 … EM-026 → `EM-001…EM-026 (26)`."""
    out, series = [], {}
    for cid in ids:
        m = re.fullmatch(r"(.*?)(\d+)", cid)
        if m:
            series.setdefault(m.group(1), []).append(cid)
        else:
            out.append(cid)
    for group in series.values():
        out.insert(0, group[0] if len(group) == 1 else (", ".join(group) if len(group) <= 3
                                                        else f"{group[0]}…{group[-1]} ({len(group)})"))
    return ", ".join(out)


@lru_cache(maxsize=8)
def warehouse_facts(path: str, window: int) -> WarehouseFacts:
    from tools.warehouse import BY_NAME, SYSTEM_TABLES, columns_of, connect, quote, table_names

    con = connect(path, migrate_schema=False)
    try:
        lines, first, last = [], [], []
        for name in table_names(con):
            if name in SYSTEM_TABLES or name.startswith("_"):
                continue
            cols = columns_of(con, name)
            declared = BY_NAME.get(name)
            pii = {c.name for c in declared.columns if c.pii} if declared else set()
            when = next((c for c, t in cols.items() if t.upper().startswith(("DATE", "TIMESTAMP"))), None)
            span = ""
            if when:
                lo, hi = con.execute(f"SELECT min({quote(when)})::DATE, max({quote(when)})::DATE "
                                     f"FROM {quote(name)}").fetchone()
                if lo:
                    span = f" {lo}..{hi}"
                    if not declared or declared.kind == "canonical":
                        first.append(str(lo))
                        last.append(str(hi))
            elif not con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]:
                span = " (empty)"
            lines.append(f"{name}{span}: " + ", ".join(c + ("*" if c in pii else "") for c in cols))
        campaigns: dict[str, list[str]] = {}
        if "campaigns" in table_names(con):
            for cid, channel in con.execute("SELECT campaign_id, channel FROM campaigns ORDER BY 2, 1").fetchall():
                if clean := clean_name(cid):
                    campaigns.setdefault(str(channel), []).append(clean)
    finally:
        con.close()
    return WarehouseFacts(tuple(lines), tuple((k, tuple(v)) for k, v in campaigns.items()),
                          min(first) if first else None, max(last) if last else None)
