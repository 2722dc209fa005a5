"""The newest saved run is chosen by when it was saved, not by its id (a content hash)."""

from datetime import datetime, timedelta

from tools.actions.audiences import AudienceParams, preview_create_audience
from tools.registry import ToolContext
from tools.warehouse import connect, latest_run, record_run


def test_newest_run_is_chosen_by_time_not_by_id(demo_copy):
    con = connect(demo_copy / "warehouse.duckdb")
    try:
        for run, n in (("churn-zzz-old", 10), ("churn-aaa-new", 20)):
            con.execute("""INSERT INTO churn_scores SELECT ?, customer_id, 0.9, 'high', 'seeded'
                           FROM customers WHERE customer_id <= ?""", [run, n])
        record_run(con, "churn_scores", "churn-zzz-old", datetime.now() - timedelta(hours=3))
        record_run(con, "churn_scores", "churn-aaa-new", datetime.now() - timedelta(minutes=5))
        assert latest_run(con, "churn_scores")[0] == "churn-aaa-new"  # max(run_id) would say churn-zzz-old
        preview = preview_create_audience(con, AudienceParams(name="Rescue"), ToolContext(home=demo_copy))
        assert preview["pinned"] == {"run_id": "churn-aaa-new"}
        assert "churn run churn-aaa-new, saved 5 minutes ago" in preview["description"]
        con.execute("DELETE FROM churn_scores WHERE run_id = 'churn-aaa-new'")  # a run whose rows are gone
        assert latest_run(con, "churn_scores")[0] == "churn-zzz-old"
    finally:
        con.close()


def test_rows_saved_without_a_record_still_count(demo_copy):
    con = connect(demo_copy / "warehouse.duckdb")
    try:
        assert latest_run(con, "clv_scores") is None
        con.execute("INSERT INTO churn_scores VALUES ('legacy-run', 1, 0.5, 'medium', 'x')")
        assert latest_run(con, "churn_scores") == ("legacy-run", None)
    finally:
        con.close()
