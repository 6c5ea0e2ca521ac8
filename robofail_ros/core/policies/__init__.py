"""Policies under test: the protocol, the loader registry, scripted/random policies, robomimic models."""
from . import scripted  # noqa: F401  (registers scripted and random)
from .base import POLICY_LOADERS, PolicyUnderTest, load_policy, register_policy_loader

__all__ = ["POLICY_LOADERS", "PolicyUnderTest", "load_policy", "register_policy_loader"]
