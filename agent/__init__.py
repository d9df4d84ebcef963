"""Agent: the LangGraph graph that drafts, critiques and refines a rationale per cluster, and its LLM backends."""
