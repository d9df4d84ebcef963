"""Prompts: versioned prompt templates (files) and their loader; no prompt strings live elsewhere."""

from attnlens.errors import AttnlensError
from attnlens.prompts.loader import Template, load, messages, versions

__all__ = ["AttnlensError", "Template", "load", "messages", "versions"]
