"""What the model is told about this warehouse: the system prompt, filled here and nowhere else.

Today, the currency, every table `query_data` may read with its data range and columns (personal-data columns
marked), the names the warehouse holds (channels, campaigns, experiments, segments, audiences) and the actions
with the analyses they read, all from the registry, the schema and the warehouse itself. Names come from data,
so each is cleaned, cut short and dropped when it reads like an instruction.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

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


_FACTS: dict[str, tuple[tuple, WarehouseFacts, dict]] = {}
_FACTS_LOCK = threading.Lock()


def warehouse_facts(path: str, window: int) -> WarehouseFacts:
    """Every readable table's line and data range, and the campaigns, cached per process. Read again once per
    `window` and after this process changed tables (`agent.vocab.generation`), table by table: a table's line is
    rebuilt (its columns, min/max of its date) only when its row count or definition changed, so the step after a
    segment run or an audience scans no big table. What a row count cannot see is re-read after vocab.FULL_S.
    A refresh of the vocabulary refreshes these too, on its own connection (`refresh`)."""
    from agent import vocab

    key = (window, vocab.generation(), int(vocab._clock() // vocab.FULL_S))
    with _FACTS_LOCK:
        cached = _FACTS.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
    from tools.warehouse import connect

    con = connect(path, migrate_schema=False)
    try:
        return _store(path, con, key)
    finally:
        con.close()


def refresh(path: str, con, tables_generation: int) -> None:
    """Read the facts again on a connection the caller holds (agent.vocab's refresh): cheap when nothing changed."""
    from agent import vocab

    _store(path, con, (int(time.monotonic() // TTL_S), tables_generation, int(vocab._clock() // vocab.FULL_S)))


def _store(path: str, con, key: tuple) -> WarehouseFacts:
    with _FACTS_LOCK:
        cached = _FACTS.get(path)
        facts, lines = _read_facts(con, cached[2] if cached is not None and cached[0][2] == key[2] else {})
        _FACTS[path] = (key, facts, lines)
    return facts


def _read_facts(con, known: dict) -> tuple[WarehouseFacts, dict]:
    """`known`: table → ((rows, definition), line, (first, last) or None) from the last read."""
    from tools.warehouse import BY_NAME, SYSTEM_TABLES, quote

    catalog = con.execute("SELECT table_name, sql, false FROM duckdb_tables() WHERE database_name = "
                          "current_database() AND schema_name = 'main' UNION ALL SELECT view_name, sql, true FROM "
                          "duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND "
                          "NOT internal").fetchall()
    defs = {name: sql for name, sql, _ in catalog}
    names = sorted(n for n in defs if n not in SYSTEM_TABLES and not n.startswith("_"))
    views = {name for name, _, view in catalog if view}
    tables = [n for n in names if n not in views]  # a view's count runs its query: a view changes by FULL_S
    rows = dict.fromkeys(names) | (dict(con.execute(" UNION ALL ".join(
        f"SELECT '{n}', count(*) FROM {quote(n)}" for n in tables)).fetchall()) if tables else {})
    lines, first, last = {}, [], []
    stale = [n for n in names if n not in known or known[n][0] != (rows[n], defs[n])]
    columns = _columns(con, stale)
    for name in names:
        if name in stale:
            lines[name] = (rows[name], defs[name]), *_line(con, name, columns.get(name, {}), rows[name], quote)
        else:
            lines[name] = known[name]
        declared = BY_NAME.get(name)
        if lines[name][2] and (not declared or declared.kind == "canonical"):
            first.append(lines[name][2][0])
            last.append(lines[name][2][1])
    campaigns: dict[str, list[str]] = {}
    if "campaigns" in defs:
        for cid, channel in con.execute("SELECT campaign_id, channel FROM campaigns ORDER BY 2, 1").fetchall():
            if clean := clean_name(cid):
                campaigns.setdefault(str(channel), []).append(clean)
    return WarehouseFacts(tuple(lines[n][1] for n in names), tuple((k, tuple(v)) for k, v in campaigns.items()),
                          min(first) if first else None, max(last) if last else None), lines


def _columns(con, tables: list[str]) -> dict[str, dict[str, str]]:
    """Column → type of each table, in table order, in one catalog query."""
    out: dict[str, dict[str, str]] = {}
    if tables:
        for table, column, kind in con.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = 'main' AND table_name IN (SELECT unnest(?::VARCHAR[])) "
                "ORDER BY table_name, column_index", [tables]).fetchall():
            out.setdefault(table, {})[column] = kind
    return out


def _line(con, name: str, cols: dict[str, str], rows: int | None, quote) -> tuple[str, tuple[str, str] | None]:
    """`orders 2024-10-01..2026-09-30: order_id, customer_id*, …` (* personal data) and the date range, if any."""
    from tools.warehouse import BY_NAME

    declared = BY_NAME.get(name)
    pii = {c.name for c in declared.columns if c.pii} if declared else set()
    when = next((c for c, t in cols.items() if t.upper().startswith(("DATE", "TIMESTAMP"))), None)
    span, dates = "", None
    if when:
        lo, hi = con.execute(f"SELECT min({quote(when)})::DATE, max({quote(when)})::DATE "
                             f"FROM {quote(name)}").fetchone()
        if lo:
            span, dates = f" {lo}..{hi}", (str(lo), str(hi))
    elif not (rows if rows is not None else con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]):
        span = " (empty)"
    return f"{name}{span}: " + ", ".join(c + ("*" if c in pii else "") for c in cols), dates
