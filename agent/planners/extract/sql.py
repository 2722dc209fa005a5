"""A small, schema-driven question → SELECT composer for the offline planner's query_data calls.

It knows no questions, only the schema (tools/schema.py): it finds the aggregate ("how many", "average",
"total"), the measured column and the grouping ("by country", "per category", "each month") among the
columns the question names, and writes one read-only SELECT. Anything it cannot map yields None, and
the planner says what it can do instead of guessing.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agent.planners.extract import rx
from tools.warehouse import TABLES

AGG = (("how many", "count"),  # first: "how many … in total" counts
       ("average", "avg"), ("avg", "avg"), ("aov", "avg"), ("mean", "avg"), ("total", "sum"), ("sum", "sum"), ("how much", "sum"),
       ("count", "count"), ("number of", "count"), ("maximum", "max"), ("highest", "max"),
       ("minimum", "min"), ("lowest", "min"), ("most recent", "max"), ("latest", "max"), ("newest", "max"),
       ("how fresh", "max"), ("earliest", "min"), ("oldest", "min"), ("share of", "pct"), ("percentage of", "pct"), ("what percentage", "pct"),
       ("what percent", "pct"), ("proportion of", "pct"), ("what fraction", "pct"), ("what share", "pct"))
SYNONYM = {"order value": "revenue", "basket value": "revenue", "basket size": "revenue", "order size": "revenue", "sales": "revenue", "aov": "revenue", "country": "country", "countries": "country",
           "category": "category", "categories": "category", "city": "city", "cities": "city",
           "loyalty": "loyalty_member", "opted in": "marketing_opt_in", "opt-in": "marketing_opt_in",
           "opted out": "marketing_opt_in", "opt out": "marketing_opt_in", "opt-out": "marketing_opt_in",
           "consent": "opted_in", "consented": "opted_in", "demo": "demo_requested", "unsubscribed": "unsubscribed",
           "opened": "opened", "clicked": "clicked", "converted": "converted",
           "rating": "rating", "stars": "rating", "signed up": "signup_date", "sign up": "signup_date",
           "signups": "signup_date", "source": "source", "channel": "channel", "industry": "industry",
           "seniority": "seniority"}
TIME_GRAIN = (("each month", "month"), ("per month", "month"), ("by month", "month"), ("monthly", "month"),
              ("each week", "week"), ("per week", "week"), ("by week", "week"), ("weekly", "week"),
              ("each year", "year"), ("per year", "year"), ("by year", "year"))
ENTITY = {"orders": "orders", "order": "orders", "customers": "customers", "customer": "customers",
          "reviews": "reviews", "leads": "leads", "campaigns": "campaigns", "events": "events",
          "consent": "consent", "consents": "consent", "sends": "email_sends", "emails sent": "email_sends"}
NEGATED = re.compile(r"\b(?:opted out|opt(?:ed)?[- ]out|not opted in|haven'?t opted in|without|withdrawn|withdrew|"
                     r"not (?:given|gave)|refused)\b")
CHANNELS = ("search", "social", "display", "video", "affiliate", "email", "sms", "push")


RATE = re.compile(r"\b(open|click|click[- ]through|unsubscribe|conversion|convert)(?:ed|ing|s)?(?:\s+rates?\b|(?=,|\s+and\s+"
                  r"(?:open|click|unsubscribe)\w*\s+rates?\b))")  # "open, click and unsubscribe rates"
RATE_COLUMN = {"open": "opened", "click": "clicked", "click through": "clicked", "click-through": "clicked",
               "unsubscribe": "unsubscribed", "conversion": "converted", "convert": "converted"}
WHICH = re.compile(r"\bwhich\s+([a-z ]+?)\s+(?:had|have|has|got|get|drove|did|do|does|were|was|are|is)\b")


def listed_values(description: str) -> list[str]:
    """The values a column's description lists ("open, won or lost."; "Sales channel (web, app, store)."), or []."""
    inner = re.search(r"\(([^)]*)\)", description)
    body = (inner.group(1) if inner else description).strip().rstrip(".")
    values = [v.strip() for v in re.split(r",\s*|\s+or\s+", body) if v.strip()]
    return values if len(values) >= 2 and all(re.fullmatch(r"[\w+\-]{1,20}", v) for v in values) else []


def value_filters(text: str, table: str, skip: set[str]) -> list[tuple[str, str]]:
    """(column, value) pairs a question names by value ("open leads", "support tickets", "1000+ employees")."""
    t = text.lower()
    found = []
    for column, values in _listed_patterns(table):
        if column in skip:
            continue
        if said := next((value for value, pattern in values if pattern.search(t)), None):
            found.append((column, said))
    return found


@lru_cache(maxsize=64)
def _listed_patterns(table: str) -> tuple[tuple[str, tuple[tuple[str, re.Pattern], ...]], ...]:
    """Per text column of `table` that lists its values: each value and its compiled pattern (compiled once: with
    a pattern per value per call, Python's regex cache evicted them and the composer took ~190 ms a turn)."""
    out = []
    for tb in TABLES:
        if tb.name != table:
            continue
        for c in tb.columns:
            if c.type != "VARCHAR" or c.pii or not (values := listed_values(c.description)):
                continue
            out.append((c.name, tuple((value, re.compile(rf"(?<![\w+-]){re.escape(value.lower()).replace('_', '[ _-]')}"
                                                         r"(?:s|es)?(?![\w+])(?!\s+rates?\b)")) for value in values)))
    return tuple(out)


def tables_by_value(text: str) -> list[str]:
    """Tables one of whose listed column values the question names (support tickets → events)."""
    return [tb.name for tb in TABLES if tb.kind == "canonical" and value_filters(text, tb.name, {"channel"})]


def _column_hits(text: str) -> list[tuple[str, str]]:
    """(table, column) pairs the text names, by column name or synonym."""
    t = text.lower()
    wanted = {v for k, v in SYNONYM.items() if rx.search(rf"\b{re.escape(k)}\b", t)}
    wanted |= {w for w in re.findall(r"[a-z_]+", t) if len(w) > 3}
    return [(tb.name, c.name) for tb in TABLES if tb.kind == "canonical" for c in tb.columns
            if c.name in wanted and not c.pii]


def compose_sql(text: str, period: dict | None = None) -> str | None:
    """One SELECT for a counting or aggregating question (`period`: the {start, end} it names), or None."""
    t = text.lower()
    rate = RATE.search(t)
    agg = "pct" if rate else next((fn for word, fn in AGG if word in t), None)
    if agg is None:
        return None
    hits = _column_hits(text)
    if rate:
        stem = RATE_COLUMN.get(rate.group(1).replace("-", " "), "")
        hits += [(tb.name, c.name) for tb in TABLES if tb.kind == "canonical" for c in tb.columns
                 if c.name == stem and c.type == "BOOLEAN"]
    named = [tbl for word, tbl in ENTITY.items() if rx.search(rf"\b{word}\b", t)] or tables_by_value(text)
    entity = next((tbl for tbl in named if any(tb == tbl and c not in ("channel", "source") for tb, c in hits)
                   and tbl != "customers"), named[0] if named else None)
    group_m = re.search(r"\b(?:by|per|for each|each|across)\s+([a-z ]+?)(?:\s+in\s+\d{4}|\?|$|,|\s+and\b)", t) or (
        WHICH.search(t) if agg in ("pct", "max", "min") else None)
    grain = next((g for word, g in TIME_GRAIN if word in t), None)
    each_send = re.search(r"\b(?:send by send|(?:each|every|per|by) (?:newsletter|send|mailing|email campaign))\b", t)
    if entity is None and hits:  # the table that holds most of the named columns
        counts: dict[str, int] = {}
        for tb, _ in hits:
            counts[tb] = counts.get(tb, 0) + 1
        entity = max(counts, key=lambda tb: (counts[tb], tb == "orders"))
    table = entity
    if table is None:
        return None
    cols = {c.name: c for tb in TABLES if tb.name == table for c in tb.columns}
    source = table
    date_col = next((n for n, c in cols.items() if c.type in ("DATE", "TIMESTAMP") and n != "closed_date"), None)
    if "signed up" in t or "signup" in t:
        date_col = "signup_date"
    group = None
    if grain and date_col:
        group = f"date_trunc('{grain}', {date_col})::DATE"
    elif each_send and "campaign_id" in cols:  # "what open rate did each newsletter get, send by send?"
        group = "campaign_id"
    elif group_m:
        phrase = group_m.group(1).strip()
        target = SYNONYM.get(phrase) or SYNONYM.get(phrase.split()[-1]) or phrase.replace(" ", "_")
        group = target if target in cols else next((c for c in cols if c in phrase.replace(" ", "_")), None)
        customer_cols = {c.name: c for tb in TABLES if tb.name == "customers" for c in tb.columns}
        if group is None and "customer_id" in cols and table != "customers" and target in customer_cols \
                and not customer_cols[target].pii:
            source = f"{table} JOIN customers USING (customer_id)"
            group = f"customers.{target}"
    measure = None
    if agg in ("max", "min") and date_col and re.search(r"\b(?:date|day|when|recent|latest|newest|fresh|earliest|"
                                                        r"oldest)\b", t):
        measure = date_col  # "what's the date of the most recent order?": how fresh the data is
    elif agg not in ("count", "pct"):
        numeric = [c for tb, c in hits if tb == table and cols[c].type in ("DOUBLE", "INTEGER", "BIGINT")
                   and c != group and not c.endswith("_id")]
        measure = numeric[0] if numeric else ("revenue" if "revenue" in cols else None)
        if measure is None:
            return None
    where = []
    if year := re.search(r"\b(?:in|during)\s+(20\d\d)\b", t):
        if date_col:
            where.append(f"year({date_col}) = {year.group(1)}")
    elif date_col and period and period.get("start") and period.get("end"):
        where.append(f"CAST({date_col} AS DATE) BETWEEN DATE '{period['start']}' AND DATE '{period['end']}'")
    numeric = [c for tb, c in hits if tb == table and cols[c].type in ("DOUBLE", "INTEGER", "BIGINT")
               and not c.endswith("_id")] or (["revenue"] if "revenue" in cols else [])
    if numeric and (cmp := re.search(r"\b(over|more than|above|greater than|at least|under|less than|below|at most)"
                                     r"\s+[$€£]?(\d+(?:\.\d+)?)\b(?!\s*(?:%|days?|weeks?|months?|years?))", t)):
        op = {"over": ">", "more than": ">", "above": ">", "greater than": ">", "at least": ">=", "under": "<",
              "less than": "<", "below": "<", "at most": "<="}[cmp.group(1)]
        where.append(f"{numeric[0]} {op} {cmp.group(2)}")
    rate_col = RATE_COLUMN.get(rate.group(1).replace("-", " ")) if rate else None
    flag = rate_col if rate_col in cols else next((c for tb, c in hits if tb == table and cols[c].type == "BOOLEAN"),
                                                  None)
    for column, value in value_filters(t, table, {group or "", "channel"}):
        where.append(f"{column} = '{value}'")
    negated = bool(NEGATED.search(t))
    if flag and agg == "count" and group is None:
        where.append(f"NOT {flag}" if negated else f"{flag}")
    if "channel" in cols and group != "channel" and (said := next((c for c in CHANNELS if rx.search(
            rf"\b{c}\b", t)), None)):
        where.append(f"channel = '{said}'")
    if agg == "pct":
        if flag is None:
            return None
        flags = [flag, *[c for c in dict.fromkeys(RATE_COLUMN.get(m.group(1).replace("-", " ")) for m in RATE.finditer(t))
                         if c in cols and c != flag and cols[c].type == "BOOLEAN"]]  # "open, click and unsubscribe rate"
        value = ", ".join(f"round(100 * avg(CASE WHEN {'NOT ' if negated else ''}{f} THEN 1.0 ELSE 0.0 END), 2) AS "
                          f"pct_{'not_' if negated else ''}{f}" for f in flags)
        value, alias = value.rsplit(" AS ", 1)
        if group:  # a rate per group is read with the number of rows behind it
            value += " AS " + alias + ", count(*)"
            alias = "n"
    else:
        value = "count(*)" if agg == "count" else f"{agg}({measure})" if measure == date_col else (
            f"round({agg}({measure}), 2)")
        alias = "n" if agg == "count" else f"{agg}_{measure}"
    sql = f"SELECT {group + ' AS ' + _alias(group) + ', ' if group else ''}{value} AS {alias} FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        low = re.search(r"\b(lowest|worst|least|bottom|fewest|minimum)\b", t) and not grain
        sql += f" GROUP BY 1 ORDER BY {'1' if grain else '2 ASC' if low else '2 DESC'}"
        if not grain and (top := re.search(r"\b(?:top|bottom|best|worst)\s+(\d{1,3})\b|\b(\d{1,3}) is fine\b", t)):
            sql += f" LIMIT {top.group(1) or top.group(2)}"
    return sql


def _alias(group: str) -> str:
    m = re.match(r"date_trunc\('(\w+)'", group)
    return m.group(1) if m else group.split(".")[-1]
