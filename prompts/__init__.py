"""Prompts: versioned prompt templates and few-shot examples (files) and their loader; no prompt strings live elsewhere."""

from attnlens.errors import AttnlensError
from attnlens.prompts.loader import Examples, Template, examples, load, messages, versions

__all__ = ["AttnlensError", "Examples", "Template", "examples", "load", "messages", "versions"]
