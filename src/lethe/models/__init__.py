"""Model registry: where each model file comes from, its sha256 and licence, and verified downloads."""

from lethe.models.registry import (
    MODELS,
    ModelSpec,
    dlib_model_path,
    ensure_model,
    sha256_file,
)

__all__ = ["MODELS", "ModelSpec", "dlib_model_path", "ensure_model", "sha256_file"]
