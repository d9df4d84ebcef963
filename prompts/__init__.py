"""Prompts: versioned prompt templates (files) and their loader; no prompt strings live elsewhere."""
