"""`northstar load`: import CSV / Parquet / JSON into the warehouse, validated, all or nothing, audited.

A file is read into a temporary stage, checked there (shape first, then every value), and only then written, in
one transaction with its audit entry. Every refusal names the file, the row and its line, the column, the value
and the fix, for up to MAX_LISTED problems at once.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np

from tools.warehouse.audit_log import audit
from tools.warehouse.connection import (
    PROTECTED,
    WarehouseError,
    clean_name,
    plain_name,
    quote,
    resolve_table,
    transaction,
)
from tools.warehouse.schema import BY_NAME, Table

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".dat": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".json": "json", ".jsonl": "json", ".ndjson": "json"}
TYPE_HINTS = {"DATE": "a date like 2025-03-31 (or pass --date-format, e.g. '%d/%m/%Y' or '%Y%m%d')",
              "TIMESTAMP": "a timestamp like 2025-03-31 14:05:00",
              "BIGINT": "a whole number", "INTEGER": "a whole number", "DOUBLE": "a number (use . as decimal point)",
              "BOOLEAN": "true/false (or 1/0)", "VARCHAR": "text"}
MAX_LISTED = 20
"""Problems listed in one refusal (the total is always given)."""
MAX_LINE_BYTES = 2_000_000
"""Longer lines are refused by number (usually an unclosed quote or the wrong delimiter)."""
AMOUNT_BOUND = 1e12
"""Numbers in the canonical tables' DOUBLE columns (revenue, spend, value, budgets …) beyond ± this are refused."""
DATE_WINDOW_ENV = "NORTHSTAR_DATE_WINDOW"
"""`FROM..TO` (ISO dates, either side may be empty): dates of the canonical tables outside it are refused."""
EARLIEST = date(1990, 1, 1)


class LoadError(WarehouseError):
    """The file does not fit, or the load is not allowed; nothing was changed."""

    def __init__(self, message: str, *, refused: bool = False):
        super().__init__(message)
        self.refused = refused
        """Refused before reading (role, protected table, bad option) rather than failed on the file."""


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


def parse_date_window(text: str | None = None, today: date | None = None) -> tuple[date, date]:
    """The plausible dates: `text` (or NORTHSTAR_DATE_WINDOW) as FROM..TO, default 1990-01-01 to a year after today."""
    today = today or date.today()
    default = (EARLIEST, today.replace(year=today.year + 1, day=28 if (today.month, today.day) == (2, 29) else today.day))
    text = (text if text is not None else os.environ.get(DATE_WINDOW_ENV, "")).strip()
    if not text:
        return default
    lo, sep, hi = text.partition("..")
    try:
        if not sep:
            raise ValueError
        window = (date.fromisoformat(lo.strip()) if lo.strip() else default[0],
                  date.fromisoformat(hi.strip()) if hi.strip() else default[1])
    except ValueError:
        raise LoadError(f"date window {text!r} is not FROM..TO with ISO dates, e.g. 1990-01-01..2027-12-31 "
                        f"(--date-window or {DATE_WINDOW_ENV}).", refused=True) from None
    if window[0] > window[1]:
        raise LoadError(f"date window {text!r} ends before it starts.", refused=True)
    return window


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: Path | str, mode: str = "append", *,
              header: bool = True, columns: list[str] | None = None, date_format: str | None = None,
              date_window: str | tuple[date, date] | None = None, user: str | None = None,
              refusal: str | None = None) -> LoadReport:
    """Load one file into `table` (named in any case; Northstar's own tables are refused); canonical tables are
    validated, any error leaves the warehouse unchanged, and every outcome (ok, failed, refused) is audited.

    `date_window`: plausible dates of the canonical tables, FROM..TO (default NORTHSTAR_DATE_WINDOW, else 1990-01-01
    to a year after today). `refusal`: why `user` may not load (the interface's role check); it is audited and raised as a LoadError."""
    if getattr(con, "engine", "duckdb") != "duckdb":  # Spark: validated by this code on a scratch DuckDB (backends/)
        return con.load_file(table, path, mode, header=header, columns=columns, date_format=date_format,
                             date_window=date_window, user=user, refusal=refusal)
    path = Path(path or "")
    args = {"table": str(table or "")[:200], "file": str(path), "mode": mode}
    try:
        if refusal:
            raise LoadError(refusal, refused=True)
        if mode not in ("append", "replace"):
            raise LoadError(f"--mode must be append or replace, got {mode!r}", refused=True)
        try:
            target = resolve_table(con, table, "load")
        except WarehouseError as exc:
            raise LoadError(str(exc), refused=True) from exc
        args["table"] = target
        dates = date_window if isinstance(date_window, tuple) else parse_date_window(date_window)
        report = _load(con, target, path, mode, header, columns, date_format, dates,
                       lambda rows: audit(con, "load", target, user=user, thread=None, args={**args, **rows},
                                          outcome="ok"))
    except LoadError as exc:
        _audit_failure(con, args, user, "refused" if exc.refused else "failed", str(exc))
        raise
    except BaseException as exc:
        _audit_failure(con, args, user, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return report


def _audit_failure(con, args: dict, user: str | None, outcome: str, detail: str) -> None:
    """Audited under the table the name means (`AUDIT_LOG` as audit_log), with the name as typed in args."""
    try:
        name = plain_name(args["table"])
        name = name.lower() if name.lower() in PROTECTED else name
    except WarehouseError:
        name = args["table"]
    try:
        audit(con, "load", name, user=user, thread=None, args=args, outcome=outcome, detail=detail)
    except duckdb.Error:  # a read-only or broken warehouse: the refusal itself still reaches the user
        pass


def _load(con, table: str, path: Path, mode: str, header: bool, columns: list[str] | None,
          date_format: str | None, dates: tuple[date, date], audit_ok) -> LoadReport:
    if not path.is_file():
        raise LoadError(f"{path}: no such file.")
    spec = BY_NAME.get(table)
    exists = _exists(con, table)
    before = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0] if exists else 0
    try:
        stage = _stage(con, path, header, columns)
        n = con.execute("SELECT count(*) FROM _load_stage").fetchone()[0]
        if spec:
            selects, cols, warnings = _validate(con, stage, spec, date_format, dates)
            col_list = ", ".join(f'"{c}"' for c in cols)
            if mode == "append" and spec.primary_key:
                _refuse_existing_keys(con, stage, spec, selects, table)
            with transaction(con):
                if mode == "replace":
                    con.execute(f"DELETE FROM {quote(table)}")
                con.execute(f"INSERT INTO {quote(table)} ({col_list}) SELECT {', '.join(selects)} FROM _load_stage")
                after = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
                audit_ok({"rows": n, "rows_before": before, "rows_after": after})
        else:
            typed, warnings = _user_select(con, stage), []
            with transaction(con):
                if mode == "replace" or not exists:
                    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {typed}")
                else:
                    con.execute(f"INSERT INTO {quote(table)} BY NAME {typed}")
                after = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
                audit_ok({"rows": n, "rows_before": before, "rows_after": after})
    except duckdb.Error as exc:
        raise LoadError(f"{path.name}: the warehouse refused the rows ({str(exc).splitlines()[0]}); "
                        f"{table} is unchanged.") from exc
    finally:
        for temp in ("_load_stage", "_load_lines", "_load_rejects", "_load_rejects_scan"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return LoadReport(table, str(path), mode, n, before, after, bool(spec), warnings)


def _exists(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                            "AND table_name = ?", [table]).fetchone()[0])


# ---- reading: the file into _load_stage (all text for CSV), its shape checked ---------------------------------

@dataclass
class Stage:
    """A file read into _load_stage, and how to name a row's line in it."""

    name: str
    path: Path
    fmt: str
    header: bool
    quote: str = '"'
    whitespace: bool = False

    def lines(self, con, rows: np.ndarray) -> np.ndarray | None:
        """The file line (1-based) of each 1-based data row; None for Parquet and JSON."""
        if self.fmt != "csv":
            return None
        if self.whitespace:
            starts = con.execute("SELECT n FROM _load_lines ORDER BY n").fetchnumpy()["n"]
        else:
            starts = record_lines(self.path, self.quote, int(rows.max()) + self.header)[0]
        index = rows - 1 + self.header
        return np.where(index < starts.size, starts[np.minimum(index, starts.size - 1)], -1)

    def where(self, con, rows: list[int]) -> list[str]:
        lines = self.lines(con, np.asarray(rows, dtype=np.int64)) if rows else None
        return [f"row {r}" + (f" (line {lines[i]})" if lines is not None and lines[i] > 0 else "")
                for i, r in enumerate(rows)]


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


def _stage(con, path: Path, header: bool, columns: list[str] | None) -> Stage:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"{path.name}: unknown file type {path.suffix!r}; use .csv, .tsv, .txt, .parquet or .json.",
                        refused=True)
    stage = Stage(path.name, path, fmt, header)
    try:
        if fmt == "parquet":
            con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_parquet(?)", [str(path)])
        elif fmt == "json":
            con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_json_auto(?)", [str(path)])
        elif (delim := sniff_delimiter(path)) is None:
            stage.whitespace = True
            _stage_whitespace(con, stage, columns)
        else:
            stage.quote = "" if delim == "\t" else '"'  # tab exports rarely quote, and stray " must stay text
            _stage_csv(con, stage, delim, columns)
    except duckdb.Error as exc:
        raise LoadError(f"{path.name}: could not be read ({str(exc).splitlines()[0]}). Check the format and encoding "
                        "(UTF-8), or pass --no-header / --columns.") from exc
    have = list(con.execute("SELECT * FROM _load_stage LIMIT 0").fetchdf().columns)
    if columns and len(columns) != len(have):
        raise LoadError(f"{path.name}: --columns names {len(columns)} columns but the file has {len(have)}.")
    names = _unique([clean_name(c) for c in (columns or have)])
    renames = [f'"{o.replace(chr(34), chr(34) * 2)}" AS {quote(n)}' for o, n in zip(have, names, strict=True)]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT {', '.join(renames)} FROM _load_stage")
    return stage


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _stage_csv(con, stage: Stage, delim: str, columns: list[str] | None) -> None:
    """Read every field as text with the header we parsed (no sniffing: it guesses wrong on ragged files); rows
    with the wrong number of fields, unclosed quotes, bad UTF-8 or over-long lines are refused by line."""
    with stage.path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline(MAX_LINE_BYTES + 1)
    if not first.strip():
        raise LoadError(f"{stage.name}: the first line is empty; it must hold the column names (or data, with "
                        "--no-header).")
    fields = next(csv.reader([first.rstrip("\r\n")], delimiter=delim, quotechar=stage.quote or None,
                             quoting=csv.QUOTE_MINIMAL if stage.quote else csv.QUOTE_NONE))
    names = (_unique([clean_name(f) for f in fields]) if stage.header and not columns
             else [f"column{i}" for i in range(len(fields))])
    con.execute("DROP TABLE IF EXISTS _load_rejects")
    con.execute("DROP TABLE IF EXISTS _load_rejects_scan")
    con.execute("CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT * FROM read_csv(?, delim = ?, header = ?, "
                "auto_detect = false, columns = ?, quote = ?, escape = ?, max_line_size = ?, store_rejects = true, "
                "rejects_table = '_load_rejects', rejects_scan = '_load_rejects_scan')",
                [str(stage.path), delim, stage.header, {n: "VARCHAR" for n in names}, stage.quote, stage.quote,
                 MAX_LINE_BYTES])
    _refuse_rejects(con, stage, len(fields))


REJECTS = {"MISSING COLUMNS": "has {found} field(s) where {first} has {expected}",
           "TOO MANY COLUMNS": "has {found} fields where {first} has {expected}",
           "UNQUOTED VALUE": "has a quote that is never closed",
           "INVALID ENCODING": "is not UTF-8 text",
           "LINE SIZE OVER MAXIMUM": f"is longer than {MAX_LINE_BYTES:,} bytes"}


def _refuse_rejects(con, stage: Stage, width: int) -> None:
    rows = con.execute("SELECT line, any_value(error_type), any_value(error_message), any_value(left(csv_line, 80)), "
                       "count(*) OVER () FROM _load_rejects GROUP BY line ORDER BY line LIMIT ?",
                       [MAX_LISTED]).fetchall()
    if not rows:
        return
    starts, duck_lines = record_lines(stage.path, stage.quote, until_line=rows[-1][0])
    first = "the header" if stage.header else "the first line"
    items, long = [], False
    for line, kind, message, text, _ in rows:
        long = long or kind == "LINE SIZE OVER MAXIMUM"
        counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message or "")
        what = REJECTS.get(kind, "cannot be read ({message})").format(
            found=counts.group(2) if counts else "?", expected=counts.group(1) if counts else width, first=first,
            message=(message or "").splitlines()[0][:120])
        index = min(int(np.searchsorted(duck_lines, line)), max(starts.size - 1, 0))
        shown = "" if kind == "LINE SIZE OVER MAXIMUM" else f": {text.strip(chr(10) + chr(13))!r}"
        items.append(f"row {index + 1 - stage.header} (line {starts[index] if starts.size else line}) {what}{shown}")
    raise LoadError(_listing(stage.name, items, rows[0][4], "row(s) cannot be read",
                             FIXES["long"] if long and len(rows) == 1 else FIXES["shape"]))


def _stage_whitespace(con, stage: Stage, columns: list[str] | None) -> None:
    """Whitespace-separated exports (fixed-width text): split each non-blank line on runs of spaces."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _load_lines AS
        SELECT n, line, regexp_split_to_array(trim(line), '\\s+') AS f FROM (
          SELECT unnest(lines) AS line, generate_subscripts(lines, 1) AS n
          FROM (SELECT regexp_split_to_array(content, '\\r?\\n') AS lines FROM read_text(?)))
        WHERE trim(line) <> ''""", [str(stage.path)])
    first = (con.execute("SELECT f FROM _load_lines ORDER BY n LIMIT 1").fetchone() or [[]])[0]
    width = len(columns) if columns else len(first)
    bad = con.execute("SELECT n, len(f), length(line), left(line, 80), count(*) OVER () FROM _load_lines "
                      "WHERE len(f) <> ? OR length(line) > ? ORDER BY n LIMIT ?",
                      [width, MAX_LINE_BYTES, MAX_LISTED]).fetchall()
    if bad:
        rows = con.execute("SELECT n FROM _load_lines ORDER BY n").fetchnumpy()["n"]
        items = [f"row {int(np.searchsorted(rows, n)) + 1 - stage.header} (line {n}) "
                 + (f"is longer than {MAX_LINE_BYTES:,} characters" if length > MAX_LINE_BYTES
                    else f"has {count} field(s) where {'the header' if stage.header else 'the first line'} has "
                         f"{width}: {text!r}") for n, count, length, text, _ in bad]
        raise LoadError(_listing(stage.name, items, bad[0][4], "row(s) cannot be read",
                                 "Every line must have the same number of space-separated fields; fill empty fields "
                                 "(e.g. with NA) or use a CSV file."))
    names = [f"column{i}" for i in range(width)] if columns or not stage.header else list(first)
    sel = ", ".join(f'f[{i + 1}] AS "{str(n).replace(chr(34), chr(34) * 2)}"' for i, n in enumerate(names))
    skip = "OFFSET 1" if stage.header else ""  # as for CSV: with --columns, a header line is still skipped
    con.execute(f"CREATE OR REPLACE TEMP TABLE _load_stage AS SELECT {sel} FROM _load_lines ORDER BY n {skip}")


def record_lines(path: Path, quote_char: str, until_record: int | None = None, until_line: int | None = None,
                 chunk: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Where each non-blank record of a CSV file starts (the header's too), as DuckDB's reader counts rows: blank
    lines skipped, line breaks inside quotes part of the record. Returns (file line, DuckDB's line): DuckDB numbers
    lines by record breaks only, so after a quoted line break its line numbers fall behind the file's. Vectorised
    over byte chunks; stops once `until_record` records or DuckDB line `until_line` are seen."""
    q = ord(quote_char) if quote_char else None
    found: list[tuple[np.ndarray, np.ndarray]] = []
    line, logical, inside, record, record_has = 1, 1, 0, (1, 1), False
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            buf = np.frombuffer(block, np.uint8)
            newline = buf == 10
            sep = newline
            if q is not None:
                quotes = (buf == q).astype(np.int32)
                sep = newline & (((np.cumsum(quotes, dtype=np.int32) - quotes + inside) & 1) == 0)
                inside = int((quotes.sum() + inside) & 1)
            content = np.r_[0, np.cumsum(~newline & (buf != 13), dtype=np.int32)]
            lines_before = np.r_[0, np.cumsum(newline, dtype=np.int32)]
            ends = np.flatnonzero(sep)
            if ends.size:
                begins = np.r_[0, ends[:-1] + 1]
                has = content[ends] > content[begins]
                starts, logicals = line + lines_before[begins], logical + np.arange(ends.size)
                has[0], starts[0], logicals[0] = has[0] or record_has, record[0], record[1]
                found.append((starts[has], logicals[has]))
                tail = ends[-1] + 1
                record, record_has = (line + int(lines_before[tail]), logical + ends.size), bool(content[-1] > content[tail])
            else:
                record_has = record_has or bool(content[-1] > 0)
            line, logical = line + int(lines_before[-1]), logical + ends.size
            if (until_record is not None and sum(len(f[0]) for f in found) >= until_record) or (
                    until_line is not None and logical > until_line):
                break
        else:
            if record_has:
                found.append((np.array([record[0]]), np.array([record[1]])))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


# ---- checking: every value of the stage, all problems listed --------------------------------------------------

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
        return (f"CASE WHEN regexp_full_match({text}, '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)(e[+-]?[0-9]+)?|"
                f"[+-]?(inf|infinity|nan)', 'i') THEN TRY_CAST({text} AS DOUBLE) END")  # nan, Infinity: refused later
    if type_ == "BOOLEAN":
        return (f"CASE lower({text}) WHEN 'yes' THEN true WHEN 'no' THEN false WHEN 'y' THEN true "
                f"WHEN 'n' THEN false ELSE TRY_CAST({text} AS BOOLEAN) END")
    return f"TRY_CAST({text} AS {type_})"


def _stage_types(con) -> dict[str, str]:
    return dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = '_load_stage' ORDER BY ordinal_position").fetchall())


def _checks(col: str, type_: str, expr: str, *, required: bool = False, canonical: bool = True,
            dates: tuple[date, date] | None = None, expected: str | None = None) -> list[tuple[str, str, str]]:
    """(condition, problem, kind) triples for one column, in the order they are reported. Canonical columns are checked
    for their type (or closed set of values), emptiness, finiteness, amount bound and date window; a user table's
    only for finiteness."""
    filled = f"nullif(trim(\"{col}\"::VARCHAR), '')"
    expected = expected or TYPE_HINTS.get(type_, type_)
    checks = [(f"{filled} IS NOT NULL AND {expr} IS NULL", f"is not {expected}", "type")] if canonical else []
    if required:
        checks.append((f"{filled} IS NULL", f"is empty but {col} is required", "empty"))
    if type_.split("(")[0] in ("DOUBLE", "FLOAT", "REAL"):
        checks.append((f"NOT isfinite({expr})", "is not a finite number", "finite"))
        if canonical:
            checks.append((f"abs({expr}) > {AMOUNT_BOUND}", f"is beyond ±{AMOUNT_BOUND:,.0f}, not a plausible amount",
                           "bound"))
    if canonical and dates and type_ in ("DATE", "TIMESTAMP"):
        lo, hi = dates
        checks.append((f"NOT isfinite({expr}) OR {expr}::DATE NOT BETWEEN DATE '{lo}' AND DATE '{hi}'",
                       f"is outside the plausible dates {lo}..{hi}", "window"))
    return checks


FIXES = {"type": "Fix the values or the column's format.",
         "empty": "Fill in the required values or remove those rows.",
         "finite": "nan, inf and numbers too large for a double (1e309) are data errors: put the real number, or "
                   "leave the cell empty where the column allows it.",
         "bound": "Amounts that large are a unit or export error: correct them.",
         "window": "Correct the dates, or widen the window: --date-window FROM..TO for `northstar load`, or "
                   f"{DATE_WINDOW_ENV}=FROM..TO.",
         "shape": "Every line must have as many fields as the header: look for a missing or extra delimiter, quote "
                  "fields that contain it, close every quote, and save the file as UTF-8.",
         "long": f"A line over {MAX_LINE_BYTES:,} bytes usually means an unclosed quote or the wrong delimiter: check "
                 "the file around it."}


def _refuse_bad_values(con, stage: Stage, checks: dict[str, list[tuple[str, str]]]) -> None:
    """One scan per column for every problem; all of them counted, the first MAX_LISTED listed by row."""
    parts, problems, columns = [], [], list(checks)
    for k, (col, pairs) in enumerate(checks.items()):
        if not pairs:
            continue
        case = " ".join(f"WHEN {cond} THEN {len(problems) + j}" for j, (cond, _, _) in enumerate(pairs))
        problems += [(problem, kind) for _, problem, kind in pairs]
        parts.append(f"SELECT rowid AS r, {k} AS k, left(\"{col}\"::VARCHAR, 60) AS val, CASE {case} END AS p "
                     f"FROM _load_stage WHERE {' OR '.join(f'({c})' for c, _, _ in pairs)}")
    if not parts:
        return
    bad = con.execute(f"SELECT r + 1, k, val, p, count(*) OVER () FROM ({' UNION ALL '.join(parts)}) "
                      f"ORDER BY r, k LIMIT {MAX_LISTED}").fetchall()
    if not bad:
        return
    where = stage.where(con, [b[0] for b in bad])
    items = [f"{w}, column {columns[k]}: " + ("value" if val is None or not str(val).strip() else repr(val))
             + f" {problems[p][0]}" for w, (_, k, val, p, _) in zip(where, bad, strict=True)]
    fixes = dict.fromkeys(FIXES[problems[p][1]] for _, _, _, p, _ in bad)
    raise LoadError(_listing(stage.name, items, bad[0][4], "bad value(s)", " ".join(fixes)))


def _listing(name: str, items: list[str], total: int, what: str, fix: str) -> str:
    """One problem inline; several as a list (the first MAX_LISTED of `total`), then the fix."""
    if total == 1:
        return f"{name}, {items[0]}. Nothing was loaded. {fix}"
    shown = f" (the first {len(items)})" if total > len(items) else ""
    return (f"{name}: {total:,} {what}; nothing was loaded{shown}:\n" + "\n".join(f"- {i}" for i in items)
            + f"\n{fix}")


def _validate(con, stage: Stage, spec: Table, date_format: str | None,
              dates: tuple[date, date]) -> tuple[list[str], list[str], list[str]]:
    """Check the staged rows against the table spec; returns (SELECT expressions, columns, warnings)."""
    stage_types = _stage_types(con)
    have = list(stage_types)
    known = [c.name for c in spec.columns]
    missing = [c for c in spec.required if c not in have]
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, have, n=1)
            hints.append(f"{m} (found {close[0]!r}: rename it)" if close else m)
        raise LoadError(f"{stage.name}: missing required column(s) for table {spec.name}: {', '.join(hints)}. "
                        f"Columns in the file: {', '.join(have) or 'none'}. See docs/schema.md.")
    warnings = [f"{stage.name}: column {c!r} is not part of {spec.name} and was ignored" for c in have if c not in known]
    use = [c for c in known if c in have]
    casts = {c: _cast(c, spec.column(c).type, date_format, stage_types[c]) for c in use}
    expected = {}
    for c in use:  # a closed set of values (consent channels …): spellings normalised, anything else refused
        if (vocabulary := getattr(spec.column(c), "vocabulary", None)) is not None:
            casts[c], expected[c] = vocabulary.sql(f"nullif(trim(\"{c}\"::VARCHAR), '')"), vocabulary.hint
    _refuse_bad_values(con, stage, {c: _checks(c, spec.column(c).type, casts[c], required=c in spec.required,
                                               dates=dates, expected=expected.get(c)) for c in use})
    if spec.primary_key:
        key = ", ".join(casts[k] for k in spec.primary_key)
        dups = con.execute(f"SELECT {key}, list(rowid + 1 ORDER BY rowid), count(*) OVER () FROM _load_stage "
                           f"GROUP BY ALL HAVING count(*) > 1 ORDER BY min(rowid) LIMIT {MAX_LISTED}").fetchall()
        if dups:
            n_key = len(spec.primary_key)
            items = [", ".join(f"{k}={v!r}" for k, v in zip(spec.primary_key, d[:n_key], strict=True))
                     + f" in rows {', '.join(map(str, d[n_key][:5]))}" for d in dups]
            raise LoadError(_listing(stage.name, [f"duplicate key {i}" for i in items], dups[0][-1], "duplicate keys",
                                     f"Each {'/'.join(spec.primary_key)} must appear once."))
    return [casts[c] + f' AS "{c}"' for c in use], use, warnings


def _refuse_existing_keys(con, stage: Stage, spec: Table, selects: list[str], table: str) -> None:
    keys = " AND ".join(f't."{k}" = s."{k}"' for k in spec.primary_key)
    clash = con.execute(f"SELECT s._row, count(*) OVER () FROM (SELECT rowid + 1 AS _row, {', '.join(selects)} "
                        f"FROM _load_stage) s WHERE EXISTS (SELECT 1 FROM {quote(table)} t WHERE {keys}) "
                        f"ORDER BY s._row LIMIT {MAX_LISTED}").fetchall()
    if clash:
        rows = ", ".join(str(r[0]) for r in clash[:10]) + (" …" if clash[0][1] > 10 else "")
        raise LoadError(f"{stage.name}: {clash[0][1]} row(s) have keys that already exist in {table} (rows {rows}). "
                        "Use --mode replace to replace the table, or remove those rows.")


def _user_select(con, stage: Stage) -> str:
    """A user table: each text column cast to the narrowest type all its non-empty values fit (one scan for all
    columns); non-finite numbers are refused like in the canonical tables."""
    types = _stage_types(con)
    text = [c for c, t in types.items() if t == "VARCHAR"] if stage.fmt == "csv" else []
    order = ("BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN")
    checks = [f"count_if(nullif(trim(\"{c}\"), '') IS NOT NULL AND {_cast(c, t, None, 'VARCHAR')} IS NULL)"
              for c in text for t in order]
    bad = con.execute(f"SELECT {', '.join(checks)} FROM _load_stage").fetchone() if checks else ()
    chosen = {c: next((t for j, t in enumerate(order) if bad[i * len(order) + j] == 0), "VARCHAR")
              for i, c in enumerate(text)}
    exprs = {c: _cast(c, chosen[c], None, "VARCHAR") if chosen.get(c, "VARCHAR") != "VARCHAR" else f'"{c}"'
             for c in types}
    final = {c: chosen.get(c, types[c]) for c in types}
    _refuse_bad_values(con, stage, {c: _checks(c, final[c], exprs[c], canonical=False) for c in types})
    return f"SELECT {', '.join(f'{exprs[c]} AS {quote(c)}' for c in types)} FROM _load_stage"
