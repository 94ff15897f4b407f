"""The README's "Trust for an existing graph" example: a plain LangGraph graph and its instrumentation."""
