"""Argument extraction for the offline planner, driven by each tool's JSON schema (no per-question rules).

Periods and dates ("last month", "Q3", "since September", "next 90 days"), counts ("top 20", "5 variants"),
money ("200k"), percentages, enum values, and names the warehouse knows (channels, experiments, segments,
audiences, tables) are found in the text and mapped onto the fields of the chosen tool.

    periods.py     dates and periods: parse_period, parse_when
    quantities.py  numbers: money, percents, counts, per-channel amounts, the number a numeric field asks for
    names.py       names the warehouse knows, enum values and their synonyms, quoted text
    sql.py         the schema-driven SELECT composer for query_data
    args.py        extract_args: walks a tool's JSON schema and fills each field through a table of rules
"""

from __future__ import annotations

from agent.planners.extract.args import extract_args
from agent.planners.extract.names import best_name_match, mentions, quoted_name, quoted_text
from agent.planners.extract.periods import parse_period, parse_when
from agent.planners.extract.quantities import channel_amounts, count_for, money, percents

__all__ = ["best_name_match", "channel_amounts", "count_for", "extract_args", "mentions", "money", "parse_period",
           "parse_when", "percents", "quoted_name", "quoted_text"]
