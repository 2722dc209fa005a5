"""Export files that carry no formulas (OWASP, CSV injection): a text cell starting with =, +, -, @, tab or
carriage return (or their full-width forms, which some spreadsheets also read as operators) gets a leading single
quote, and every text field is quoted. Done in the COPY's SQL, so no row passes through Python."""

from __future__ import annotations

from pathlib import Path

import duckdb

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""First characters a spreadsheet may read as the start of a formula."""

_LEADS_SQL = ", ".join("chr(9)" if c == "\t" else "chr(13)" if c == "\r" else f"'{c}'" for c in FORMULA_LEADS)


def neutralised(expr: str) -> str:
    """SQL: the text `expr`, with a single quote in front when it starts like a formula."""
    return f"CASE WHEN left({expr}, 1) IN ({_LEADS_SQL}) THEN '''' || {expr} ELSE {expr} END"


def export_csv(con: duckdb.DuckDBPyConnection, select: str, args: list, target: Path) -> Path:
    """Write `select` (with `args`) to `target` as CSV with a header; text columns neutralised and quoted."""
    described = con.execute(f"DESCRIBE {select}", args).fetchall()
    names = [row[0] for row in described]
    text = [row[0] for row in described if row[1] == "VARCHAR"]
    cols = ", ".join(f'{neutralised(_ident(n))} AS {_ident(n)}' if n in text else _ident(n) for n in names)
    quoted = f", FORCE_QUOTE ({', '.join(_ident(n) for n in text)})" if text else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    path = str(target).replace("'", "''")
    con.execute(f"COPY (SELECT {cols} FROM ({select})) TO '{path}' (HEADER{quoted})", args)
    return target


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
