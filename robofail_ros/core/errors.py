"""Errors a user can act on: each names the problem and the fix."""
import difflib


class RoboFailError(Exception):
    """Base class: a problem with what the user asked for, reported before anything runs."""


class ConfigError(RoboFailError):
    """A malformed or inconsistent configuration file or value."""


class UnknownNameError(RoboFailError, KeyError):
    """A name (task, perturbation, searcher, policy...) that no registry holds."""

    def __init__(self, kind: str, name: str, known):
        known = sorted(known)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if len(known) <= 12 else ", ".join(known[:12]) + f", ... ({len(known)} in all)"
        kinds = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {kinds}: {listing}")
        self.kind, self.name = kind, name

    def __str__(self):  # KeyError would otherwise print the message with quotes
        return self.args[0]


class PerturbationError(RoboFailError):
    """A perturbation that cannot be applied to this scene (impossible magnitude, missing target)."""


class PolicyError(RoboFailError):
    """A policy under test that cannot be loaded or does not fit the scene."""


def lookup(registry: dict, kind: str, name: str):
    """registry[name], or an UnknownNameError that suggests the closest names."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownNameError(kind, name, registry) from None
