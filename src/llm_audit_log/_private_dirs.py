"""
Directories for keys, logs and spills: every one this library creates is 0700.

``os.makedirs(mode=0o700)`` applies the mode to the last directory only; the parents it
makes get the umask's default (0777 under ``umask 000``), where anyone could replace a key
or a log file inside. Existing directories are left as they are: they are the owner's.
"""

from __future__ import annotations

import os

__all__ = ["make_private_dirs"]


def make_private_dirs(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and any missing parents, each mode 0700 whatever the umask."""
    missing: list[str] = []
    current = os.path.abspath(os.fspath(path))
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # made meanwhile by someone else: theirs
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask; 0700 is meant
