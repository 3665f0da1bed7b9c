"""Model registry: each model file pinned by sha256 and size, with its licence and verified fetches."""

from lethe.models.registry import (
    DLIB_FILES,
    MODELS,
    ModelFile,
    ModelSpec,
    WheelMirror,
    default_model_cache_dir,
    dlib_model_path,
    ensure_model,
    resolve_model,
    sha256_file,
)

__all__ = [
    "DLIB_FILES",
    "MODELS",
    "ModelFile",
    "ModelSpec",
    "WheelMirror",
    "default_model_cache_dir",
    "dlib_model_path",
    "ensure_model",
    "resolve_model",
    "sha256_file",
]
