"""Evaluation: faithfulness, plausibility, complexity, rationale grounding and attention signatures."""
