import pytest

from tests.conftest import ROOT
from tools.docs import tools_markdown
from tools.registry import TOOLS, ToolResult, load_tools

load_tools()


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_tool_contract(name, demo_copy):
    from tools.registry import ToolContext
    from tools.warehouse import connect

    spec = TOOLS[name]
    assert spec.fn.__doc__ and spec.description and len(spec.description) < 160
    assert len(spec.requests) >= 4, "the offline planner needs example requests"
    assert issubclass(spec.result, ToolResult)
    assert spec.json_schema()["type"] == "object"
    if spec.approval:
        return  # actions are exercised through the approval flow
    con = connect(demo_copy / "warehouse.duckdb")
    result = spec.run(con, spec.example, ToolContext(home=demo_copy))
    assert isinstance(result, spec.result)
    assert result.summary and len(result.data) <= 200
    result.model_dump_json()  # JSON-serialisable


def test_tools_doc_is_current():
    assert (ROOT / "docs/tools.md").read_text() == tools_markdown(), "run `make docs`"


def test_campaign_report_is_registered():
    assert "campaign_report" in load_tools()
