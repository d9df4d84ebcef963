"""The errors attnlens raises on purpose: one base, four kinds, each with the CLI's exit code.

Anything else that escapes is a bug; the CLI reports it as an internal error (exit 1).
"""

from __future__ import annotations


class AttnlensError(Exception):
    """Base of every error attnlens raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1


class InputError(AttnlensError, ValueError):
    """The input cannot be used as given: a prompt, an option, a file, a dataset or a saved run."""

    exit_code = 2


class ModelError(AttnlensError):
    """A model is unknown, cannot be fetched, fails its checksum, or cannot be loaded."""

    exit_code = 3


class CaptureError(AttnlensError):
    """A model's attention cannot be captured (it bypasses transformers' AttentionInterface)."""

    exit_code = 4


class BackendError(AttnlensError):
    """An LLM backend cannot be set up: vLLM does not import, a server is down, a folder is missing."""

    exit_code = 5


EXIT_CODES = {cls.__name__: cls.exit_code for cls in (AttnlensError, InputError, ModelError, CaptureError, BackendError)}

__all__ = ["EXIT_CODES", "AttnlensError", "BackendError", "CaptureError", "InputError", "ModelError"]
