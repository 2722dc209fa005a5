"""search_knowledge: passages from our playbooks, brand guide, privacy policy and KPI glossary, with citations."""

from __future__ import annotations

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolContext, ToolError, ToolResult, register


class SearchKnowledgeParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=2, max_length=500)
    """The question or topic, in plain language."""
    k: int = Field(5, ge=1, le=20)
    """Passages to return, best first."""
    document: str | None = None
    """Only this document (e.g. brand-guide, playbook-win-back, consent-privacy-policy, kpi-glossary)."""


class SearchKnowledgeResult(ToolResult):
    pass


@register(example=SearchKnowledgeParams(query="How should we win back lapsed customers?", k=3),
          key_metrics=("passages",),
          concepts={"guidance": ["policy", "policies", "playbook", "playbooks", "brand guide", "brand guidelines",
                                 "guidelines", "guideline", "style guide", "tone of voice", "best practice",
                                 "best practices", "guidance", "documentation", "our docs", "handbook",
                                 "according to", "say about", "says about", "anything in our", "in our brand",
                                 "what do our guidelines", "are we allowed"],
                    "rules": ["allowed", "permitted", "may we", "can we legally", "rule", "rules", "forbidden",
                              "banned", "prohibited", "legal", "gdpr", "compliant", "compliance", "disclaimer",
                              "consent", "unsubscribe", "frequency cap"],
                    "glossary": ["glossary", "define", "definition", "defined", "meaning of", "stand for"]},
          requests=["What does our win-back playbook say?", "What is the character limit for SMS?",
                    "Which claims are banned in our ads?", "How do we define ROAS?",
                    "search the knowledge base for onboarding best practices",
                    "What does the brand guide say about tone of voice?",
                    "Are we allowed to email customers who unsubscribed?",
                    "What are the caveats of last-click attribution?",
                    "How long should an A/B test run?", "find the playbook for churn prevention",
                    "Which words should we avoid according to the brand guide?",
                    "what do our docs say about attribution caveats", "What's our consent policy for SMS?",
                    "look up the definition of a metric in the KPI glossary",
                    "what does the onboarding playbook suggest for the first week?",
                    "which legal footer must a promotional email carry?"])
def search_knowledge(con: duckdb.DuckDBPyConnection, p: SearchKnowledgeParams,
                     ctx: ToolContext) -> SearchKnowledgeResult:
    """Find passages in our playbooks, brand guide, privacy policy and KPI glossary that answer a question."""
    from knowledge.index import search, sources

    known = sorted({f.stem for f in sources(ctx.home)})
    if p.document and p.document not in known:
        raise ToolError(f"Unknown document {p.document!r}; the knowledge base has {', '.join(known)}.")
    hits = search(ctx.home, p.query, k=p.k, document=p.document)
    if not hits:
        return SearchKnowledgeResult(summary=f"No passage in the knowledge base matches {p.query!r}.",
                                     metrics={"passages": 0}, warnings=["Nothing found; rephrase the question."])
    best = hits[0]
    cites = "; ".join(f"{h['title']} › {h['section']} ({h['score']:.2f})" for h in hits)
    summary = (f"{len(hits)} passage(s) for {p.query!r}. Best: {best['title']} › {best['section']} "
               f"(score {best['score']:.2f}). Sources: {cites}.")
    warnings = [] if best["similarity"] >= 0.3 else [
        "The best match is weak (similarity below 0.30); the knowledge base may not cover this question."]
    return SearchKnowledgeResult(summary=summary, data=hits,
                                 metrics={"passages": len(hits), "best_score": best["score"],
                                          "documents": sorted({h["document"] for h in hits})},
                                 warnings=warnings)
