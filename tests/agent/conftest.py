import pytest

from agent.context import Context
from tests.agent.fake_openai import FakeOpenAI


@pytest.fixture
def agent_ctx(demo_copy) -> Context:
    return Context(home=demo_copy, roles={"local": "approver", "ana": "approver", "ben": "analyst", "vic": "viewer"})


@pytest.fixture
def agent(agent_ctx):
    from agent.runner import Northstar

    ns = Northstar(agent_ctx)
    yield ns
    ns.close()


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake
        assert not fake.script, f"unconsumed scripted replies: {fake.script}"


def seed_churn_run(home, run_id: str = "churn-test", n: int = 400) -> None:
    """A churn_scores run without training a model (the approval tests are about approvals, not churn)."""
    from tools.warehouse import connect

    con = connect(home / "warehouse.duckdb")
    con.execute("""INSERT INTO churn_scores SELECT ?, customer_id, 0.9 - customer_id / 1e6,
        CASE WHEN customer_id % 2 = 0 THEN 'high' ELSE 'medium' END, 'support tickets'
        FROM customers WHERE customer_id <= ?""", [run_id, n])
    con.close()
