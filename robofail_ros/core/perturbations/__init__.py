"""Perturbations: factor types (a registry) and the YAML catalog of named perturbations."""
from . import physical  # noqa: F401  (registers the physical, sensor and actuation factors)
from .catalog import DEFAULT_CATALOG, Catalog, Perturbation, definitions_digest
from .factors import FACTORS, Factor, register_factor

__all__ = ["Catalog", "DEFAULT_CATALOG", "FACTORS", "Factor", "Perturbation", "definitions_digest", "register_factor"]
