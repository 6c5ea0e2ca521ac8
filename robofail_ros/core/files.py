"""Outputs (files or folders) that are whole or absent, whatever stops the command that writes them."""
from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
from typing import Iterator


@contextlib.contextmanager
def written_whole(path) -> Iterator[pathlib.Path]:
    """Yields a path beside ``path`` to write instead, a file or a folder (same suffix, so that
    writers which pick the format by it still do), and moves it to ``path`` when the block ends
    without an error; an empty folder at ``path`` is replaced. An error or Ctrl-C removes it; a
    kill leaves it as a hidden ``.<name>.partial-<pid>``, never a truncated ``path`` that a
    resume, a loader or "never overwritten" would then meet."""
    path = pathlib.Path(path)
    partial = path.with_name(_partial_name(path, os.getpid()))
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial)
        else:
            partial.unlink(missing_ok=True)


def leftovers(path) -> list[pathlib.Path]:
    """The partial files of ``path`` that killed writers left behind."""
    path = pathlib.Path(path)
    return sorted(path.parent.glob(_partial_name(path, "*")))


def _partial_name(path: pathlib.Path, pid) -> str:
    return f".{path.stem}.partial-{pid}{path.suffix}"
