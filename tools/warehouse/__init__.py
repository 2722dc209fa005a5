"""Infrastructure; registers no tool: the connection, the schema and its migrations, the loader, the demo world.

Adapters use only these admin entry points: `connect`, `migrate`, `table_summary`, `load_file` (with `LoadError`)
and `generate` (the demo world; `simulate_outcomes` for a launched demo campaign). Tools use the connection helpers below; a table or column a user named goes
through `resolve_table` / `resolve_columns` / `resolve_params` (any case, as DuckDB resolves it; Northstar's own
tables, `PROTECTED`, refused).
"""

from __future__ import annotations

from tools.warehouse.audit_log import audit, audit_entries
from tools.warehouse.connection import (
    IDENT,
    NUMERIC_TYPES,
    PROTECTED,
    WarehouseError,
    clean_name,
    columns_of,
    connect,
    data_end,
    is_numeric,
    migrate,
    plain_name,
    protected_refusal,
    quote,
    require_table,
    resolve_columns,
    resolve_params,
    resolve_table,
    schema_version,
    table_exists,
    table_names,
    table_summary,
    transaction,
)
from tools.warehouse.saved_runs import latest_run, record_run
from tools.warehouse.schema import BY_NAME, SYSTEM_TABLES, TABLES

__all__ = ["audit", "audit_entries", "BY_NAME", "SYSTEM_TABLES", "TABLES", "IDENT", "NUMERIC_TYPES", "PROTECTED",
           "is_numeric", "latest_run", "record_run", "LoadError", "WarehouseError", "clean_name", "columns_of", "connect", "data_end", "engine_of", "generate",
           "load_file", "migrate", "plain_name", "protected_refusal", "quote", "require_table", "resolve_columns",
           "resolve_params", "resolve_table", "schema_markdown", "schema_version", "simulate_outcomes", "table_exists", "table_names",
           "table_summary", "transaction"]
_LAZY = {"engine_of": "tools.warehouse.backends", "load_file": "tools.warehouse.loader", "LoadError": "tools.warehouse.loader",
         "generate": "tools.warehouse.demo", "schema_markdown": "tools.warehouse.schema",
         "simulate_outcomes": "tools.warehouse.demo.campaigns"}


def __getattr__(name: str):  # the loader and the demo pull in pyarrow and numpy: imported on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tools.warehouse' has no attribute {name!r}")
