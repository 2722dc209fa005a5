"""`northstar load`: import CSV / Parquet / JSON into the warehouse, validated, all or nothing."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from tools.warehouse import IDENT, WarehouseError, quote, table_exists, transaction
from tools.warehouse.schema import BY_NAME, SYSTEM_TABLES, Table

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".dat": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".json": "json", ".jsonl": "json", ".ndjson": "json"}
TYPE_HINTS = {"DATE": "a date like 2025-03-31 (or pass --date-format, e.g. '%d/%m/%Y' or '%Y%m%d')",
              "TIMESTAMP": "a timestamp like 2025-03-31 14:05:00",
              "BIGINT": "a whole number", "INTEGER": "a whole number", "DOUBLE": "a number (use . as decimal point)",
              "BOOLEAN": "true/false (or 1/0)", "VARCHAR": "text"}


class LoadError(WarehouseError):
    """The file does not fit; nothing was changed."""


@dataclass
class LoadReport:
    table: str
    file: str
    mode: str
    rows_in_file: int
    rows_before: int
    rows_after: int
    canonical: bool
    warnings: list[str] = field(default_factory=list)


def sniff_delimiter(path: Path) -> str | None:
    """',', ';', tab or '|' by consistency over the first lines; None means whitespace-separated."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        lines = [ln.rstrip("\r\n") for _, ln in zip(range(50), fh, strict=False) if ln.strip()]
    best, best_score = None, 0
    for delim in (",", ";", "\t", "|"):
        counts = [ln.count(delim) for ln in lines]
        if counts and min(counts) > 0:
            score = min(counts) * 10 - (max(counts) - min(counts))
            if score > best_score:
                best, best_score = delim, score
    if best is None and lines and all(len(ln.split()) > 1 for ln in lines):
        return None
    return best or ","


def _stage(con, path: Path, header: bool, columns: list[str] | None) -> None:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"{path.name}: unknown file type {path.suffix!r}; use .csv, .tsv, .txt, .parquet or .json.")
    src = str(path)
    if fmt == "parquet":
        con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_parquet(?)", [src])
    elif fmt == "json":
        con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_json_auto(?)", [src])
    else:
        delim = sniff_delimiter(path)
        if delim is None:  # whitespace-separated, e.g. fixed-width exports
            con.execute("""CREATE OR REPLACE TEMP TABLE _load_lines AS
                SELECT regexp_split_to_array(trim(line), '\\s+') AS f FROM (
                  SELECT unnest(regexp_split_to_array(trim(content, E'\\r\\n '), '\\r?\\n')) AS line FROM read_text(?))
                WHERE trim(line) <> ''""", [src])
            width = con.execute("SELECT max(len(f)) FROM _load_lines").fetchone()[0] or 0
            names = [f"column{i}" for i in range(width)]
            first = names
            if header and not columns:
                first = con.execute("SELECT f FROM _load_lines LIMIT 1").fetchone()[0]
            sel = ", ".join(f"f[{i + 1}] AS {quote(_clean(n))}" for i, n in enumerate(first))
            skip = "OFFSET 1" if header and not columns else ""
            con.execute(f"CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT {sel} FROM _load_lines {skip}")
            con.execute("DROP TABLE _load_lines")
        else:
            # tab-separated exports rarely quote fields, and stray " inside text must stay text
            quote_char = "" if delim == "\t" else '"'
            con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_csv(?, delim = ?, "
                        "header = ?, all_varchar = true, quote = ?, escape = ?)",
                        [src, delim, header, quote_char, quote_char])
    have = list(con.execute("SELECT * FROM _load_stage LIMIT 0").fetchdf().columns)
    if columns:
        if len(columns) != len(have):
            raise LoadError(f"{path.name}: --columns names {len(columns)} columns but the file has {len(have)}.")
        renames = [f"{quote(_clean(o))} AS {quote(_clean(n))}" for o, n in zip(have, columns, strict=True)]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT {', '.join(renames)} FROM _load_stage")
    else:
        renames = [f'"{o}" AS {quote(_clean(o))}' for o in have]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT {', '.join(renames)} FROM _load_stage")


def _clean(name: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]+", "_", str(name).strip()).strip("_").lower() or "column"
    return out if IDENT.match(out) else f"c_{out}"


def _cast(col: str, type_: str, date_format: str | None, source_type: str) -> str:
    ref = f'"{col}"'
    if source_type != "VARCHAR":
        return f"TRY_CAST({ref} AS {type_})"
    text = f"nullif(trim({ref}), '')"
    if type_ in ("DATE", "TIMESTAMP") and date_format:
        return f"TRY_CAST(try_strptime({text}, '{date_format.replace(chr(39), '')}') AS {type_})"
    if type_ in ("BIGINT", "INTEGER"):  # TRY_CAST would silently round "2.5"
        return f"CASE WHEN regexp_full_match({text}, '[+-]?[0-9]+') THEN TRY_CAST({text} AS {type_}) END"
    if type_ == "DOUBLE":  # TRY_CAST would read "1_10" as 110 (underscores as digit separators)
        return (f"CASE WHEN regexp_full_match({text}, '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|"
                f"[+-]?(inf|infinity|nan)') THEN TRY_CAST({text} AS DOUBLE) END")
    if type_ == "BOOLEAN":
        return (f"CASE lower({text}) WHEN 'yes' THEN true WHEN 'no' THEN false WHEN 'y' THEN true "
                f"WHEN 'n' THEN false ELSE TRY_CAST({text} AS BOOLEAN) END")
    return f"TRY_CAST({text} AS {type_})"


def _validate(con, spec: Table, name: str, date_format: str | None,
              header: bool) -> tuple[list[str], list[str], list[str]]:
    """Check the staged rows against the table spec; returns (SELECT expressions, columns, warnings)."""
    stage_types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                   "WHERE table_name = '_load_stage'").fetchall())
    have = list(stage_types)
    known = [c.name for c in spec.columns]
    missing = [c for c in spec.required if c not in have]
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, have, n=1)
            hints.append(f"{m} (found {close[0]!r}: rename it)" if close else m)
        raise LoadError(f"{name}: missing required column(s) for table {spec.name}: {', '.join(hints)}. "
                        f"Columns in the file: {', '.join(have) or 'none'}. See docs/schema.md.")
    warnings = [f"{name}: column {c!r} is not part of {spec.name} and was ignored" for c in have if c not in known]
    use = [c for c in known if c in have]
    offset = 2 if header else 1
    for col in use:
        ctype = spec.column(col).type
        expr = _cast(col, ctype, date_format, stage_types[col])
        row = con.execute(f'SELECT rowid, "{col}" FROM _load_stage WHERE "{col}" IS NOT NULL '
                          f"AND trim(\"{col}\"::VARCHAR) <> '' AND {expr} IS NULL ORDER BY rowid LIMIT 1").fetchone()
        if row:
            raise LoadError(f"{name}, row {row[0] + 1} (line {row[0] + offset}), column {col}: {row[1]!r} is not "
                            f"{TYPE_HINTS.get(ctype, ctype)}. Fix the value or the column's format.")
        if col in spec.required:
            row = con.execute(f'SELECT rowid FROM _load_stage WHERE "{col}" IS NULL OR trim("{col}"::VARCHAR) = \'\' '
                              "ORDER BY rowid LIMIT 1").fetchone()
            if row:
                raise LoadError(f"{name}, row {row[0] + 1} (line {row[0] + offset}), column {col}: value is empty "
                                f"but {col} is required.")
    casts = {c: _cast(c, spec.column(c).type, date_format, stage_types[c]) for c in use}
    if spec.primary_key:
        key = ", ".join(casts[k] for k in spec.primary_key)
        dup = con.execute(f"SELECT {key}, list(rowid + 1 ORDER BY rowid) FROM _load_stage GROUP BY ALL "
                          "HAVING count(*) > 1 ORDER BY min(rowid) LIMIT 1").fetchone()
        if dup:
            keys = ", ".join(f"{k}={v!r}" for k, v in zip(spec.primary_key, dup[:-1], strict=True))
            raise LoadError(f"{name}: duplicate key {keys} in rows {', '.join(map(str, dup[-1][:5]))}; "
                            f"each {'/'.join(spec.primary_key)} must appear once.")
    return [casts[c] + f' AS "{c}"' for c in use], use, warnings


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: Path | str, mode: str = "append", *,
              header: bool = True, columns: list[str] | None = None, date_format: str | None = None) -> LoadReport:
    """Load one file into `table`; canonical tables are validated, any error leaves the warehouse unchanged."""
    path = Path(path)
    if mode not in ("append", "replace"):
        raise LoadError(f"--mode must be append or replace, got {mode!r}")
    if not IDENT.match(table):
        raise LoadError(f"{table!r} is not a valid table name (letters, digits and _; start with a letter).")
    spec = BY_NAME.get(table)
    if table in SYSTEM_TABLES or (spec and spec.kind != "canonical"):
        raise LoadError(f"{table} is written by Northstar itself and cannot be loaded. Choose another name.")
    if not path.is_file():
        raise LoadError(f"{path}: no such file.")
    name = path.name
    exists = table_exists(con, table)
    before = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0] if exists else 0
    try:
        _stage(con, path, header, columns)
    except duckdb.Error as exc:
        raise LoadError(f"{name}: could not be read ({str(exc).splitlines()[0]}). Check the format and encoding "
                        "(UTF-8), or pass --no-header / --columns.") from exc
    n = con.execute("SELECT count(*) FROM _load_stage").fetchone()[0]
    warnings: list[str] = []
    try:
        if spec:
            selects, cols, notes = _validate(con, spec, name, date_format, header)
            warnings += notes
            col_list = ", ".join(f'"{c}"' for c in cols)
            if mode == "append" and spec.primary_key:
                keys = " AND ".join(f't."{k}" = s."{k}"' for k in spec.primary_key)
                clash = con.execute(f"SELECT count(*) FROM (SELECT {', '.join(selects)} FROM _load_stage) s "
                                    f"WHERE EXISTS (SELECT 1 FROM {quote(table)} t WHERE {keys})").fetchone()[0]
                if clash:
                    raise LoadError(f"{name}: {clash} row(s) have keys that already exist in {table}. "
                                    "Use --mode replace to replace the table, or remove those rows.")
            with transaction(con):
                if mode == "replace":
                    con.execute(f"DELETE FROM {quote(table)}")
                con.execute(f"INSERT INTO {quote(table)} ({col_list}) SELECT {', '.join(selects)} FROM _load_stage")
        else:
            typed = "SELECT * FROM _load_stage"
            if FORMATS[path.suffix.lower()] == "csv":  # infer types from the text, as a spreadsheet would
                typed = _inferred_select(con)
            with transaction(con):
                if mode == "replace" or not exists:
                    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {typed}")
                else:
                    con.execute(f"INSERT INTO {quote(table)} BY NAME {typed}")
    except duckdb.Error as exc:
        raise LoadError(f"{name}: the warehouse refused the rows ({str(exc).splitlines()[0]}); "
                        f"{table} is unchanged.") from exc
    finally:
        con.execute("DROP TABLE IF EXISTS _load_stage")
    after = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
    return LoadReport(table, str(path), mode, n, before, after, bool(spec), warnings)


def _inferred_select(con) -> str:
    """Cast each text column to the narrowest type all its non-empty values fit (one scan for all columns)."""
    cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = '_load_stage' ORDER BY ordinal_position").fetchall()]
    order = ("BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN")
    checks = [f"count_if(nullif(trim(\"{c}\"), '') IS NOT NULL AND {_cast(c, t, None, 'VARCHAR')} IS NULL)"
              for c in cols for t in order]
    bad = con.execute(f"SELECT {', '.join(checks)} FROM _load_stage").fetchone() if cols else ()
    parts = []
    for i, col in enumerate(cols):
        chosen = next((t for j, t in enumerate(order) if bad[i * len(order) + j] == 0), "VARCHAR")
        parts.append(f'{_cast(col, chosen, None, "VARCHAR")} AS "{col}"' if chosen != "VARCHAR" else f'"{col}"')
    return f"SELECT {', '.join(parts)} FROM _load_stage"
