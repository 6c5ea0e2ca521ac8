"""Policies under test: the protocol, the loader registry, scripted/random policies, robomimic models."""
from . import robomimic_policy, scripted  # noqa: F401  (register their loaders)
from .base import POLICY_LOADERS, PolicyUnderTest, load_policy, register_policy_loader

__all__ = ["POLICY_LOADERS", "PolicyUnderTest", "load_policy", "register_policy_loader"]
