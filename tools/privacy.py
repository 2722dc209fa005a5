"""Personal data: which columns hold it, and the keyed pseudonyms that replace it wherever a viewer, an analyst
or a model sees rows.

* **Keyed, not reversible.** A pseudonym is `kind_` + the first 16 hex digits of HMAC-SHA256(value) under a
  secret of this home (`<home>/secret.key`, 32 random bytes, created 0600 on first use; never in a table, and
  `query_data`'s sandbox cannot read files). Same value → same pseudonym within a home, so joins and
  `count(DISTINCT …)` still work; across homes the codes differ, and without the key no list of candidates can
  be hashed to match them. Birth dates are coarsened to the first of January of their year instead.
* **Detected, not listed.** A column is personal data when the schema says so, when its name says so (any case,
  any separator, camelCase, look-alike letters: e-mail, phone, names, addresses and postcodes, birth dates,
  national ids, IPs) or when most values of a sample are e-mails, phones, IPs or national ids (one SQL query
  per table, `regexp_full_match` over a reservoir sample). Text columns where the sample shows some e-mails or
  phones get those rewritten inside the text.
* **Free text**: only e-mails, and phone numbers written as such (9 to 15 digits, with a `+`, brackets, spaces
  or dashes, no decimal point, not a date), are rewritten; numbers, dates and ids never are.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb

KEY_FILE = "secret.key"
SAMPLE_ROWS = 2000
WHOLE_COLUMN_SHARE = 0.5
"""A text column whose sampled values are at least this share e-mails (phones, IPs, ids) is that kind."""

PREFIX = {"email": "email", "phone": "phone", "name": "name", "address": "address", "national_id": "natid",
          "ip": "ip", "birth_date": "dob", "pii": "pii"}
LABEL = {"email": "e-mail", "phone": "phone", "name": "name", "address": "address", "national_id": "national id",
         "ip": "IP address", "birth_date": "birth date", "pii": "personal data", "text": "e-mails/phones in text"}
PSEUDONYM = re.compile("^(?:" + "|".join(sorted(set(PREFIX.values()))) + ")_[0-9a-f]{16}$")

# ---- value patterns: one definition, used by Python (`re`) and DuckDB (RE2) alike -------------------------------

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE = r"(?:\+|\(|\b\d)[0-9 ()+.-]{7,}\d\b"
"""A phone candidate; `is_phone` (and its SQL twin) then asks for 9-15 digits, no decimal point, not a date."""
IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
IPV6 = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
NATIONAL_ID = r"\d{3}-\d{2}-\d{4}|[A-CEGHJ-PR-TW-Za-ceghj-pr-tw-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]"
_EMAIL_RE, _PHONE_RE = re.compile(EMAIL), re.compile(PHONE)
_DATE_SHAPE, _THOUSANDS = re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{1,3}(?: \d{3})+")


def is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return (9 <= digits <= 15 and "." not in candidate and not _DATE_SHAPE.search(candidate)
            and not _THOUSANDS.fullmatch(candidate) and (candidate[0] in "+(" or not candidate.isdigit()))


def _phone_sql(m: str) -> str:
    return (f"(length(regexp_replace({m}, '[^0-9]', '', 'g')) BETWEEN 9 AND 15 AND strpos({m}, '.') = 0 "
            rf"AND NOT regexp_matches({m}, '\d{{4}}-\d{{2}}-\d{{2}}') AND NOT regexp_full_match({m}, '\d{{1,3}}( \d{{3}})+') "
            rf"AND NOT regexp_full_match({m}, '\d+'))")


# ---- column names --------------------------------------------------------------------------------------------

_CONFUSABLES = str.maketrans("аеорсухіјѕԁɡӏΑΕΟΡΤΧΙΝМНВК", "aeopcyxijsdglAEOPTXINMHBK")
_EXACT = {  # one token (or the whole name run together) → kind
    "email": "email", "emails": "email", "mail": "email", "emailaddress": "email", "emailaddr": "email",
    "phone": "phone", "phones": "phone", "telephone": "phone", "tel": "phone", "mobile": "phone", "cell": "phone",
    "cellphone": "phone", "msisdn": "phone", "fax": "phone", "phonenumber": "phone", "mobileno": "phone",
    "firstname": "name", "lastname": "name", "surname": "name", "forename": "name", "fullname": "name",
    "givenname": "name", "familyname": "name", "middlename": "name", "maidenname": "name", "username": "name",
    "address": "address", "addr": "address", "street": "address", "streetaddress": "address", "zip": "address",
    "zipcode": "address", "postcode": "address", "postalcode": "address", "addressline": "address",
    "dob": "birth_date", "birthdate": "birth_date", "birthday": "birth_date", "dateofbirth": "birth_date",
    "ssn": "national_id", "nin": "national_id", "nino": "national_id", "sin": "national_id",
    "nationalid": "national_id", "passport": "national_id", "iban": "national_id", "taxid": "national_id",
    "ip": "ip", "ipaddress": "ip", "ipv4": "ip", "ipv6": "ip",
}
_PAIRS = {("e", "mail"): "email", ("first", "name"): "name", ("last", "name"): "name", ("full", "name"): "name",
          ("given", "name"): "name", ("family", "name"): "name", ("middle", "name"): "name", ("user", "name"): "name",
          ("date", "birth"): "birth_date", ("birth", "date"): "birth_date", ("social", "security"): "national_id",
          ("national", "insurance"): "national_id", ("national", "id"): "national_id", ("tax", "id"): "national_id",
          ("card", "number"): "national_id", ("credit", "card"): "national_id", ("post", "code"): "address",
          ("postal", "code"): "address", ("zip", "code"): "address", ("remote", "addr"): "ip",
          ("driver", "license"): "national_id", ("drivers", "license"): "national_id",
          ("driving", "licence"): "national_id", ("passport", "number"): "national_id"}
_PERSON = {"customer", "contact", "client", "person", "member", "user", "recipient", "sender", "buyer", "owner",
           "subscriber", "patient", "employee", "account", "holder", "lead", "guest", "student", "cardholder"}
_NOT_PII = {"count", "cnt", "n", "num", "total", "sum", "avg", "mean", "share", "pct", "percent", "rate", "ratio",
            "is", "has", "flag", "opt", "optin", "opted", "consent", "verified", "valid", "domain", "type", "kind",
            "status", "provider", "sent", "sends", "send", "opens", "opened", "open", "clicks", "clicked", "click",
            "bounces", "bounce", "bounced", "spend", "cost", "revenue", "campaign", "campaigns", "channel",
            "subject", "template", "id", "ids", "key", "at", "ts", "time", "updated", "created", "version",
            "length", "len", "country", "region", "city", "format", "marketing", "unsubscribed", "conversions",
            "calls", "minutes", "support", "score", "segment", "event", "events", "list", "lists", "code_type"}


def _tokens(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name).translate(_CONFUSABLES)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return [t for t in re.split(r"[^0-9a-z]+", text.lower()) if t]


@lru_cache(maxsize=4096)
def name_kind(name: str, strict: bool = False) -> str | None:
    """The kind of personal data a column (or key) name announces, or None.

    `strict` (keys of tool results, where `name` is a campaign's or a segment's): a bare `name` is not enough."""
    tokens = _tokens(name)
    if not tokens or _NOT_PII & set(tokens[1:] if tokens[0] in ("customer", "contact") else tokens):
        return None
    joined = "".join(tokens)
    if joined in _EXACT:
        return _EXACT[joined]
    for i, tok in enumerate(tokens):
        pair = tuple(tokens[i:i + 2])
        if pair in _PAIRS:
            return _PAIRS[pair]
        if tok in _EXACT and not (tok in ("mail", "cell", "tel", "sin", "ip", "fax") and len(tokens) > 2):
            if tok == "address" and {"ip", "mac"} & set(tokens):
                return "ip"
            return _EXACT[tok]
        if tok == "name" and (i > 0 and tokens[i - 1] in _PERSON or (not strict and len(tokens) == 1)):
            return "name"
    return None


# ---- the key -------------------------------------------------------------------------------------------------

_EPHEMERAL = secrets.token_bytes(32)  # in-memory warehouses (tests): stable within the process only


def home_key(home: Path | str) -> bytes:
    """This home's secret (created 0600 on first use, atomically: concurrent first uses agree on one key)."""
    path = Path(home) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race: then its key is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def database_home(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The folder of the warehouse file behind `con` (None for an in-memory database)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    row = row[0] if row else None
    return Path(row[0]).resolve().parent if row and row[0] else None


@dataclass(frozen=True)
class Pseudonymiser:
    """Turns personal data into keyed pseudonyms (or, without a key, into `[kind]` placeholders)."""

    key: bytes | None

    @classmethod
    def for_home(cls, home: Path | str | None) -> Pseudonymiser:
        return cls(home_key(home) if home is not None else None)

    @classmethod
    def for_connection(cls, con: duckdb.DuckDBPyConnection) -> Pseudonymiser:
        home = database_home(con)
        return cls(home_key(home) if home is not None else _EPHEMERAL)

    def code(self, kind: str, text: str) -> str:
        prefix = PREFIX.get(kind, "pii")
        if self.key is None:
            return f"[{prefix}]"
        return f"{prefix}_{hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()[:16]}"

    def value(self, kind: str, value):
        """One value of a personal-data field as a model or a viewer may see it (None stays None)."""
        if value is None or isinstance(value, bool):
            return value
        text = value if isinstance(value, str) else str(value)
        if PSEUDONYM.match(text) or (self.key is None and text == f"[{PREFIX.get(kind, 'pii')}]"):
            return text  # already masked (a viewer's rows): masking twice would change the code
        if kind == "birth_date" and re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return f"{text[:4]}-01-01"
        return self.code(kind, text)

    def text(self, text: str) -> str:
        """E-mails and phone numbers written as such inside free text; nothing else is touched."""
        text = _EMAIL_RE.sub(lambda m: self.code("email", m.group()), text)
        return _PHONE_RE.sub(lambda m: self.code("phone", m.group()) if is_phone(m.group()) else m.group(), text)

    # ---- the same in SQL (DuckDB), the key passed as parameters $k_in / $k_out, never in the query text ------

    @property
    def params(self) -> dict[str, bytes]:
        key = (self.key or b"").ljust(64, b"\0")
        return {"k_in": bytes(b ^ 0x36 for b in key), "k_out": bytes(b ^ 0x5C for b in key)}

    def _code_sql(self, kind: str, expr: str) -> str:
        mac = f"sha256($k_out || unhex(sha256($k_in || encode({expr}))))"
        return f"'{PREFIX.get(kind, 'pii')}_' || left({mac}, 16)"

    @staticmethod
    def keyed(kind: str, type_: str) -> bool:
        """Whether `sql(kind, …)` uses the key (a birth date coarsened to its year does not)."""
        return not (kind == "birth_date" and type_.upper().startswith(("DATE", "TIMESTAMP")))

    def sql(self, kind: str, column: str, type_: str) -> str:
        """A SELECT expression: the column masked (same type for birth dates, else VARCHAR codes)."""
        if not self.keyed(kind, type_):
            return f"date_trunc('year', {column})::DATE"
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {self._code_sql(kind, f'{column}::VARCHAR')} END"

    def text_sql(self, column: str) -> str:
        """A SELECT expression: the text column with e-mails and phones inside it replaced by codes."""
        emails = f"regexp_extract_all({column}, '{EMAIL}')"
        phones = f"list_filter(regexp_extract_all({column}, '{PHONE}'), lambda m: {_phone_sql('m')})"
        code = (f"CASE WHEN strpos(m, '@') > 0 THEN {self._code_sql('email', 'm')} "
                f"ELSE {self._code_sql('phone', 'm')} END")
        pairs = f"list_transform(list_concat({emails}, {phones}), lambda m: [m, {code}])"
        maybe = f"regexp_matches({column}, '@|(?:\\d[ ()+.-]*){{9}}')"  # most texts hold neither
        return (f"CASE WHEN {maybe} THEN list_reduce({pairs}, lambda acc, pair: replace(acc, pair[1], pair[2]), "
                f"{column}) ELSE {column} END")


def detect(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], *,
           declared: dict[str, bool] | None = None) -> dict[str, str]:
    """Personal-data columns of one table: column → kind (`text`: free text with some e-mails or phones in it).

    `declared` (canonical tables: column → the schema's pii flag) wins for the columns it names; other columns
    are judged by name, and every text column by a sample of its values (one query, vectorised in DuckDB)."""
    declared = declared or {}
    found: dict[str, str] = {}
    for col, type_ in columns.items():
        if type_.upper() == "BOOLEAN":
            continue
        if col in declared:
            if declared[col]:
                found[col] = name_kind(col) or "pii"
        elif kind := name_kind(col):
            found[col] = kind
    texts = [c for c, t in columns.items() if t.upper().startswith("VARCHAR") and c not in found]
    if not texts:
        return found
    aggs = [f"count({quote_ident(c)})" for c in texts]
    for col in texts:
        aggs += [f"count_if({check})" for check in _value_checks(quote_ident(col)).values()]
    sample = (f"SELECT {', '.join(quote_ident(c) for c in texts)} FROM {quote_ident(table)} "
              f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (7)")
    row = con.execute(f"SELECT {', '.join(aggs)} FROM ({sample})").fetchall()[0]
    kinds = list(_value_checks("v"))
    for i, col in enumerate(texts):
        seen, hits = row[i], row[len(texts) + i * len(kinds): len(texts) + (i + 1) * len(kinds)]
        if not seen:
            continue
        share, kind = max((h / seen, k) for h, k in zip(hits[:-1], kinds[:-1], strict=True))
        if share >= WHOLE_COLUMN_SHARE:
            found[col] = kind
        elif hits[-1]:
            found[col] = "text"
    return found


def _value_checks(v: str) -> dict[str, str]:
    """SQL conditions on one text value: whole-value kinds first, then `text` (some e-mail or phone inside)."""
    return {"email": f"regexp_full_match({v}, '{EMAIL}')",
            "phone": f"(regexp_full_match({v}, '{PHONE}') AND {_phone_sql(v)})",
            "ip": f"regexp_full_match({v}, '{IPV4}|{IPV6}')",
            "national_id": f"regexp_full_match({v}, '{NATIONAL_ID}')",
            "text": f"(regexp_matches({v}, '{EMAIL}') OR len(list_filter(regexp_extract_all({v}, '{PHONE}'), "
                    f"lambda m: {_phone_sql('m')})) > 0)"}


def quote_ident(name: str) -> str:
    """Any column name, quoted for DuckDB (user files bring names like `Phone Number` or `E-Mail`)."""
    return '"' + name.replace('"', '""') + '"'


# ---- lineage: which output columns of a query carry personal data ----------------------------------------------

_DECLASSIFYING_FUNCS = {"count", "count_if", "approx_count_distinct", "len", "length", "strlen", "octet_length",
                        "length_grapheme", "bit_length", "regexp_matches", "regexp_full_match", "contains",
                        "starts_with", "ends_with", "prefix", "suffix", "array_has", "list_has", "list_contains"}


class _Unknown(Exception):
    """A construct the lineage does not follow: the caller assumes the worst."""


@dataclass
class Lineage:
    outputs: list[str | None]
    """Per output column (by position): the kind of personal data it derives from, or None."""
    needed: dict[str, list[str]]
    """Per table: the columns the query reads (only these are copied into the sandbox)."""


def lineage(stmt, kinds: dict[str, dict[str, str | None]]) -> Lineage | None:
    """Follow a validated query (sqlglot AST) from its tables to its output columns.

    `kinds`: table → {column: kind or None}, with the names as they are in the warehouse. A value computed from
    a personal-data column is personal data (`upper(email)`, `md5(phone)`, `first_name || last_name`, `list(c)`)
    unless only a count, a length or a true/false test of it comes out. None when the query uses something this
    does not follow (then every text output is treated as personal data, and every column is copied)."""
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    actual = {t.lower(): (t, {c.lower(): c for c in cols}) for t, cols in kinds.items()}
    low = {t.lower(): {c.lower(): k for c, k in cols.items()} for t, cols in kinds.items()}
    tree = stmt.copy()
    for ident in tree.find_all(exp.Identifier):  # DuckDB resolves every name case-insensitively, quoted or not
        ident.set("this", ident.this.lower())
    named_by_stars = {c.name for star in tree.find_all(exp.Star) for key in ("except", "replace", "rename")
                      for c in (star.args.get(key) or []) for c in [c, *c.find_all(exp.Column)]
                      if isinstance(c, exp.Column)}  # `* EXCLUDE (email)`: DuckDB wants email to exist
    try:
        tree = qualify(tree, schema={t: dict.fromkeys(cols, "VARCHAR") for t, cols in low.items()},
                       dialect="duckdb", validate_qualify_columns=False)
        root = build_scope(tree)
        if root is None or any(isinstance(n, exp.Columns) or (isinstance(n, exp.Star) and not isinstance(
                n.parent, exp.Count)) for n in tree.walk()):
            return None
        scopes = {id(s.expression): s for s in root.traverse()}
        needed: dict[str, set[str]] = {}
        memo: dict[int, list[set[str]]] = {}

        def source(scope, alias: str):
            while scope is not None:
                if alias in scope.sources:
                    return scope.sources[alias]
                scope = scope.parent
            return None

        def outputs(scope) -> list[set[str]]:
            if id(scope) in memo:
                return memo[id(scope)]
            if isinstance(scope.expression, exp.SetOperation):
                parts = [outputs(s) for s in scope.union_scopes]
                result = [set().union(*cols) for cols in zip(*parts, strict=False)]
            elif isinstance(scope.expression, exp.Select):
                result = [taint(p, scope) for p in scope.expression.selects]
            else:
                raise _Unknown(type(scope.expression).__name__)
            memo[id(scope)] = result
            return result

        def from_source(src, column: str | None) -> set[str]:
            if isinstance(src, exp.Table):
                table = src.name.lower()
                if table not in low:
                    return set()  # range(), generate_series()
                cols = low[table] if column is None else {column: low[table].get(column)}
                needed.setdefault(table, set()).update(c for c in cols if c in low[table])
                return {k for k in cols.values() if k and k != "text"}
            names, outs = [s.alias_or_name.lower() for s in src.expression.selects], outputs(src)
            if column is None:
                return set().union(*outs) if outs else set()
            if column not in names:
                raise _Unknown(column)
            return outs[names.index(column)]

        def read(node, scope) -> set[str]:
            """Columns read without their values coming out (still copied into the sandbox)."""
            for col in node.find_all(exp.Column):
                if col.table and isinstance(src := source(scope, col.table), exp.Table):
                    from_source(src, col.name)
            return set()

        def taint(node, scope) -> set[str]:
            if isinstance(node, exp.Predicate | exp.Connector | exp.Not | exp.Count | exp.ApproxDistinct
                          | exp.Length) or (isinstance(node, exp.Func)
                                            and node.sql_name().lower() in _DECLASSIFYING_FUNCS):
                return read(node, scope)
            if isinstance(node, exp.Window):  # PARTITION BY / ORDER BY choose rows, their values stay inside
                read(node, scope)
                return taint(node.this, scope)
            if isinstance(node, exp.Column):
                if not node.table:
                    return set()  # a lambda's parameter
                src = source(scope, node.table)
                if src is None:
                    raise _Unknown(node.sql())
                return from_source(src, node.name)
            if isinstance(node, exp.TableColumn):
                src = source(scope, node.name)
                if src is None:
                    raise _Unknown(node.sql())
                return from_source(src, None)
            if isinstance(node, exp.Query) and id(node) in scopes:
                return set().union(*outputs(scopes[id(node)]))
            found: set[str] = set()
            for child in node.iter_expressions():
                found |= taint(child, scope)
            return found

        for scope in root.traverse():  # columns read anywhere (WHERE, JOIN, GROUP BY …) must be copied too
            for col in scope.columns:
                if col.table and isinstance(src := source(scope, col.table), exp.Table) and src.name.lower() in low:
                    needed.setdefault(src.name.lower(), set()).add(col.name)
            for whole in scope.expression.find_all(exp.TableColumn):
                if isinstance(src := source(scope, whole.name), exp.Table):
                    from_source(src, None)
        for table, cols in low.items():
            if named_by_stars & set(cols) and table in needed:
                needed[table] |= named_by_stars & set(cols)
        result = [None if not k else (next(iter(k)) if len(k) == 1 else "pii") for k in outputs(root)]
    except Exception:  # sqlglot's qualify or scope could not follow it, or _Unknown: assume the worst
        return None
    if any(c not in actual[t][1] for t, cols in needed.items() for c in cols):
        return None
    return Lineage(result, {actual[t][0]: [c for c in kinds[actual[t][0]] if c.lower() in cols]  # table order
                            for t, cols in needed.items()})
