"""Ctrl-C that stays Ctrl-C.

SIGINT raises KeyboardInterrupt wherever Python happens to be. Inside a pybind11 call
(matplotlib's transforms, MuJoCo's bindings) it can land while pybind11 converts an argument,
and pybind11 then reports it as a TypeError ("incompatible function arguments"). The handler
here records that SIGINT arrived, so a command tells an interrupt from a real error whatever
exception it surfaced as, and a command that a library's catch-all or a finaliser ("Exception
ignored in ...") robbed of its KeyboardInterrupt still stops at its next commit point (check).
"""
from __future__ import annotations

import contextlib
import signal
import sys

_received = False
_deferring = 0  # depth of the deferred() blocks the main thread is in


def _on_sigint(signum, frame):
    global _received
    _received = True
    if not _deferring:
        raise KeyboardInterrupt


def install() -> None:
    """Handles SIGINT from now on, also where it was inherited as ignored (a non-interactive
    shell's background job), which would make the command unstoppable."""
    global _received
    _received = False
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _unraisable


def _unraisable(info) -> None:
    """A Ctrl-C that landed in a finaliser, where Python can only print it ("Exception ignored
    in ..."): no traceback for the user; it is recorded, and check() stops the command."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)


def check() -> None:
    """Raises KeyboardInterrupt if a Ctrl-C arrived since install(), whatever became of it: for
    the points where a command commits its work (a report moved into place, a batch of episodes
    recorded), so that an interrupt that got lost on its way never lets a command finish."""
    if _received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Holds a Ctrl-C back until the block is done, then raises it: for code that an interrupt
    half-way would leave half-built (robosuite's render context fails in its finaliser at exit
    when its constructor was interrupted, and prints a traceback)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        check()


def interrupted(exc: BaseException) -> bool:
    """True if ``exc`` is, or stands for, a Ctrl-C/SIGINT."""
    return isinstance(exc, KeyboardInterrupt) or _received


def reraise(exc: BaseException) -> None:
    """Raises KeyboardInterrupt if ``exc`` stands for a Ctrl-C. For the places that catch every
    error of the simulator or a policy (to record it, or to retry the episode): a Ctrl-C that
    pybind11 turned into a TypeError there would be swallowed, and the search would go on."""
    if interrupted(exc):
        raise KeyboardInterrupt from exc
