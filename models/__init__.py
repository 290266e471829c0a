"""Detector models: the manifest of known models, where their files are found, and fetching them."""

from models.registry import DEFAULT_MODEL, ModelError, ModelSpec, ResolvedModel, list_models, resolve_model

__all__ = ["DEFAULT_MODEL", "ModelError", "ModelSpec", "ResolvedModel", "list_models", "resolve_model"]
