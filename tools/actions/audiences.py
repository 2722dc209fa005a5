"""create_audience: a saved run's members, screened for consent on the audience's channel, as a named audience
exported as CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.actions.base import ActionResult, params_key, run_once
from tools.actions.consent import CONTACT_COLUMN, Channel, describe, exclusions, screened_sql
from tools.actions.exports import export_csv
from tools.registry import ToolContext, ToolError, register
from tools.warehouse import latest_run, require_table


class AudienceParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=80)
    """Audience name."""
    source: Literal["segment", "churn", "clv", "customers"] = "churn"
    """Where membership comes from: a segmentation run, a churn scoring run, a CLV run, or explicit ids."""
    channel: Channel = "email"
    """The channel the audience is for (email, sms or push): members need consent on it."""
    run_id: str | None = None
    """The run to take members from (default: the latest run of that source)."""
    segment: str | None = None
    """Segment name or id (source=segment)."""
    risk_band: Literal["high", "medium", "low"] | None = "high"
    """Churn risk band to include (source=churn); with only min_probability given, no band."""
    min_probability: float | None = Field(None, ge=0, le=1)
    """Lowest churn probability to include (source=churn): every band above it unless a band is given too."""
    top_n: int | None = Field(None, ge=1, le=1_000_000)
    """Keep only the N highest-scoring members."""
    customer_ids: list[int] | None = None
    """Explicit members (source=customers)."""

    @model_validator(mode="after")
    def _threshold_replaces_band(self):
        """"Everyone at p(churn) >= 0.7" is the threshold alone: the default band (high) would silently drop the
        medium-risk customers above it. A band said as well still applies."""
        if self.min_probability is not None and "risk_band" not in self.model_fields_set:
            self.risk_band = None
        return self


def _members_sql(con, params: AudienceParams) -> tuple[str, list, str, str | None]:
    if params.source == "customers":
        if not params.customer_ids:
            raise ToolError("source=customers needs customer_ids.")
        return ("SELECT DISTINCT unnest(?::BIGINT[]) AS customer_id, 0.0 AS score", [params.customer_ids],
                "explicit ids", None)
    table = {"segment": "customer_segments", "churn": "churn_scores", "clv": "clv_scores"}[params.source]
    require_table(con, table)
    newest = None if params.run_id else latest_run(con, table)  # the newest by when it was saved
    run = params.run_id or (newest or (None,))[0]
    if run is None:
        tool = {"segment": "segment_customers", "churn": "score_churn", "clv": "predict_clv"}[params.source]
        raise ToolError(f"No {params.source} run yet: run {tool} first, then build the audience from it.")
    if params.source == "segment":
        if not params.segment:
            raise ToolError("source=segment needs `segment` (a segment name or id from segment_customers).")
        where, args = "run_id = ? AND (segment_id = ? OR lower(segment_name) = lower(?))", [run, params.segment, params.segment]
        sql = f"SELECT customer_id, 0.0 AS score FROM customer_segments WHERE {where}"
    elif params.source == "churn":
        where, args = "run_id = ?", [run]
        if params.risk_band:
            where += " AND risk_band = ?"
            args.append(params.risk_band)
        if params.min_probability is not None:
            where += " AND probability >= ?"
            args.append(params.min_probability)
        sql = f"SELECT customer_id, probability AS score FROM churn_scores WHERE {where}"
    else:
        where, args = "run_id = ?", [run]
        sql = f"SELECT TRY_CAST(customer_id AS BIGINT) AS customer_id, clv AS score FROM clv_scores WHERE {where}"
    return sql, args, f"{params.source} run {run}{_age(newest[1]) if newest and newest[1] else ''}", run


def _age(saved_at: datetime) -> str:
    """ ", saved 3 hours ago": the approver sees which result the audience is built from."""
    minutes = max(0, int((datetime.now() - saved_at).total_seconds() // 60))
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size or unit == "minute":
            n = minutes // size
            return f", saved {n} {unit}{'s' if n != 1 else ''} ago"
    return ""


def _audience(con, params: AudienceParams) -> tuple[str, list, dict]:
    """The candidates screened for consent on the audience's channel (SQL, args) and what the approver sees."""
    sql, args, source, run = _members_sql(con, params)
    limit = f"LIMIT {int(params.top_n)}" if params.top_n else ""
    candidates = f"SELECT customer_id, score FROM ({sql}) ORDER BY score DESC, customer_id {limit}"
    screened = screened_sql(candidates, params.channel)
    return screened, args, {"source": source, "pinned": {"run_id": run} if run and not params.run_id else {},
                            **_counts(con, screened, args, params.channel)}


def _counts(con, screened: str, args: list, channel: str) -> dict:
    size, excluded = exclusions(con, screened, args)
    return {"channel": channel, "candidates": size + sum(excluded.values()), "size": size,
            "excluded_no_consent": sum(excluded.values()), "excluded": excluded}


def preview_create_audience(con, params: AudienceParams, ctx: ToolContext) -> dict:
    _, _, info = _audience(con, params)
    return {**info, "risk": "low" if info["size"] < 50_000 else "medium",
            "description": f"Create audience '{params.name}' for {params.channel} from {info['source']}: "
                           f"{info['size']:,} customers ({describe(info['excluded'])}) and export it as CSV."}


@register(example=AudienceParams(name="At-risk high value"), approval=True, preview=preview_create_audience,
          requires={"source": {"churn": "score_churn", "segment": "segment_customers", "clv": "predict_clv"}},
          key_metrics=("size", "excluded_no_consent", "candidates", "delivery"),
          concepts={"create": ["save them as", "save the", "save those", "save as an audience", "save as a list",
                               "make an audience", "build an audience", "build me an audience", "make a list",
                               "make * audience", "build * audience", "create * audience", "turn * into an audience",
                               "set up * audience"]},  # (* : up to four words, "make an SMS audience")
          synonyms={"churn": ["churn", "likely to churn", "likely to leave", "walk away", "about to leave", "lapsing",
                              "stop buying", "high-risk", "high risk"],
                    "clv": ["lifetime value", "clv", "ltv", "high value", "high-value", "most valuable",
                            "best customers"],
                    "segment": ["segment"],
                    "sms": ["sms", "text message", "texts", "text them", "texting"],  # "we'll text them, not email"
                    "push": ["push", "push notification", "app notification"],
                    "top_n": ["top", "highest", "best", "biggest", "largest", "most valuable"]},  # "our 500 highest"
          requests=["save them as an audience", "create an audience from the at-risk customers",
                    "build a segment audience for the win-back campaign", "export this segment as an audience",
                    "make a list of these customers for CRM", "turn the high-risk customers into an audience"])
def create_audience(con: duckdb.DuckDBPyConnection, params: AudienceParams, ctx: ToolContext) -> ActionResult:
    """Save a segment's or score run's members as a named audience and export it (opted-out customers excluded)."""
    def prepare() -> tuple[str, list, dict]:
        screened, args, info = _audience(con, params)
        _refuse_empty(info)
        return screened, args, info

    def write(con, aid: str, prepared: tuple[str, list, dict]):
        screened, args, info = prepared
        info = {**info, **_counts(con, screened, args, params.channel)}  # consent as of now, inside the transaction
        _refuse_empty(info)
        con.execute("INSERT INTO audiences (audience_id, name, source, definition, size, excluded_no_consent, "
                    "created_at, created_by, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [aid, params.name, info["source"], params_key(params), info["size"], info["excluded_no_consent"],
                     ctx.now or datetime.now(), ctx.user, params.channel])
        con.execute("INSERT INTO audience_members (audience_id, customer_id, holdout) SELECT ?, customer_id, NULL "
                    f"FROM ({screened}) WHERE excluded IS NULL", [aid, *args])
        contact = CONTACT_COLUMN[params.channel]
        export = export_csv(con, f"""SELECT m.customer_id{f', c.{contact}' if contact else ''} FROM audience_members m
            JOIN customers c USING (customer_id) WHERE m.audience_id = ? ORDER BY 1""", [aid],
                            ctx.home / "outbox" / f"audience_{aid}.csv")
        summary = (f"Created audience '{params.name}' ({aid}) for {params.channel} with {info['size']:,} customers; "
                   f"{describe(info['excluded'])}. Exported to {export.name}.")
        return {**info, "audience_id": aid, "name": params.name, "export": export.name, "summary": summary}, export

    return run_once(con, ctx, "create_audience", params, prepare, write)


def _refuse_empty(info: dict) -> None:
    if info["size"] == 0:
        raise ToolError(f"The audience would be empty: {info['candidates']:,} candidates, none who may be contacted "
                        f"by {info['channel']} ({describe(info['excluded'])}).")
