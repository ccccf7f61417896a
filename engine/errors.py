"""Errors the engine raises. Each carries a stable `code` that the worker reports to clients."""

from __future__ import annotations


class EngineError(Exception):
    """Base class; `code` is a stable machine-readable name."""

    code = "engine_error"


class InvalidInput(EngineError):
    """A request field breaks a rule. `field` names it (CLI/API name), the message states the rule."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ModelLoadError(EngineError):
    """Weights missing, of the wrong architecture, or unreachable; the message names the file and the fix."""

    code = "model_load_error"


class Canceled(EngineError):
    """The caller's cancellation check returned true between two steps."""

    code = "canceled"


class NonFiniteLatent(EngineError):
    """The sampled latent holds NaN or infinite values, so no image is decoded from it (it would come
    back black or as noise)."""

    code = "non_finite_latent"
