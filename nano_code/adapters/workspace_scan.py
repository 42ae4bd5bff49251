"""One bounded walk of a workspace: its secret files (the sandbox hides them) and its git repositories
(a command's new ones are reported). It runs twice per sandboxed command, so it stops at
`MAX_DIRECTORIES` and does not enter `.git`, `NOT_ENTERED` or linked folders.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

MAX_DIRECTORIES = 5000
NOT_ENTERED = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"}
)
"""Folders of installed packages and caches: large, and nobody runs git in them (the snapshot skips them too)."""


def is_secret(name: str) -> bool:
    """A `.env` or `.env.*` file name: secrets, never snapshotted and hidden from commands."""
    return name == ".env" or name.startswith(".env.")


class Scan(NamedTuple):
    secrets: tuple[Path, ...]
    repositories: frozenset[str]
    """Relative to the workspace: `.git` entries and bare repositories."""
    complete: bool


def _is_bare_repository(entries: dict[str, os.DirEntry[str]]) -> bool:
    try:
        return (
            "HEAD" in entries
            and entries["HEAD"].is_file(follow_symlinks=False)
            and "objects" in entries
            and entries["objects"].is_dir(follow_symlinks=False)
            and "refs" in entries
            and entries["refs"].is_dir(follow_symlinks=False)
        )
    except OSError:
        return False


def scan(workspace: Path, max_directories: int = MAX_DIRECTORIES) -> Scan:
    """Walk `workspace` (at most `max_directories` directories) for secrets and repositories."""
    secrets: list[Path] = []
    repositories: set[str] = set()
    pending = [workspace]
    seen = 0
    while pending and seen < max_directories:
        directory = pending.pop()
        seen += 1
        try:
            with os.scandir(directory) as listing:
                entries = {entry.name: entry for entry in listing}
        except OSError:
            continue
        relative = directory.relative_to(workspace)
        if directory != workspace and _is_bare_repository(entries):
            repositories.add(str(relative))
            continue
        for name, entry in entries.items():
            try:
                if name == ".git":
                    repositories.add(str(relative / name))
                elif entry.is_dir(follow_symlinks=False):
                    if name not in NOT_ENTERED:
                        pending.append(Path(entry.path))
                elif is_secret(name) and stat.S_ISREG(os.stat(entry.path).st_mode):
                    secrets.append(Path(entry.path))
            except OSError:
                continue
    return Scan(tuple(sorted(secrets)), frozenset(repositories), not pending)
