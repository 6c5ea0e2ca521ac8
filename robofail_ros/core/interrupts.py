"""Ctrl-C that stays Ctrl-C.

SIGINT raises KeyboardInterrupt wherever Python happens to be. Inside a pybind11 call
(matplotlib's transforms, MuJoCo's bindings) it can land while pybind11 converts an argument,
and pybind11 then reports it as a TypeError ("incompatible function arguments"). The handler
here records that SIGINT arrived, so a command tells an interrupt from a real error whatever
exception it surfaced as.
"""
from __future__ import annotations

import signal

_received = False


def _on_sigint(signum, frame):
    global _received
    _received = True
    raise KeyboardInterrupt


def install() -> None:
    """Handles SIGINT from now on, also where it was inherited as ignored (a non-interactive
    shell's background job), which would make the command unstoppable."""
    global _received
    _received = False
    signal.signal(signal.SIGINT, _on_sigint)


def interrupted(exc: BaseException) -> bool:
    """True if ``exc`` is, or stands for, a Ctrl-C/SIGINT."""
    return isinstance(exc, KeyboardInterrupt) or _received


def reraise(exc: BaseException) -> None:
    """Raises KeyboardInterrupt if ``exc`` stands for a Ctrl-C. For the places that catch every
    error of the simulator or a policy (to record it, or to retry the episode): a Ctrl-C that
    pybind11 turned into a TypeError there would be swallowed, and the search would go on."""
    if interrupted(exc):
        raise KeyboardInterrupt from exc
