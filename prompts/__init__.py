"""Prompts: versioned prompt templates (files) and their loader; no prompt strings live elsewhere."""

from prompts.loader import PromptError, Template, load, messages, versions

__all__ = ["PromptError", "Template", "load", "messages", "versions"]
