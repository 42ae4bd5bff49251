"""A recording's provenance (its metadata line): versions, model, server host, generation
parameters, tool schemas, the system prompt's hash, a fingerprint of the workspace."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nano_code import __version__
from nano_code.adapters import git
from nano_code.adapters.session_file import FORMAT_VERSION
from nano_code.kernel.serialize import to_json
from nano_code.kernel.types import KernelConfig

FINGERPRINT_MAX_FILES = 2000
FINGERPRINT_SKIPPED_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache"})


def workspace_fingerprint(workspace: Path) -> dict[str, Any]:
    """git HEAD and dirty state, or else a hash of (at most 2000 of) the workspace's small
    files: bounded, so a home directory costs milliseconds."""
    status = git.output(git.STATUS, workspace)
    if status is not None:
        head, changes = None, []
        for line in status.splitlines():
            if line.startswith("# branch.oid "):
                head = line.split(" ", 2)[2]
            elif not line.startswith("#"):
                changes.append(line)
        text = "\n".join(changes)
        return {
            "kind": "git",
            "head": None if head == "(initial)" else head,
            "dirty": bool(changes),
            "status_sha256": hashlib.sha256(text.encode()).hexdigest() if changes else None,
        }
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in FINGERPRINT_SKIPPED_DIRS)
        for name in sorted(files):
            if count >= FINGERPRINT_MAX_FILES:
                break
            path = Path(root, name)
            try:
                if not path.is_symlink() and path.stat().st_size <= 1_000_000:
                    digest.update(os.fsencode(path.relative_to(workspace)) + b"\0" + path.read_bytes())
                    count += 1
            except OSError:
                continue
        if count >= FINGERPRINT_MAX_FILES:
            break
    capped = count >= FINGERPRINT_MAX_FILES
    return {"kind": "content", "sha256": digest.hexdigest(), "files": count, "capped": capped}


def nano_code_commit() -> str | None:
    """The git commit of nano-code itself when it runs from a checkout."""
    source = git.source_checkout()
    return git.output(git.HEAD, source) if source is not None else None


def provenance(
    config: KernelConfig,
    settings: Mapping[str, Any],
    workspace: Path,
    agents_md: str | None,
    origin: str,
    parent: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a replay (or a reader) needs to know about how the session was made."""
    base_url = str(settings.get("base_url", ""))
    split = urlsplit(base_url)
    return {
        "format": "nano-code-session",
        "format_version": FORMAT_VERSION,
        "session_id": os.urandom(16).hex(),  # as random as uuid4, without importing uuid
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "origin": origin,
        "nano_code_version": __version__,
        "nano_code_commit": nano_code_commit(),
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "platform": sys.platform,
        "model": config.model,
        "server_host": split.hostname or "",
        "generation": {
            "stream": config.stream,
            "temperature": config.temperature,
            "seed": config.seed,
            "max_completion_tokens": config.max_completion_tokens,
        },
        "settings": dict(settings),
        "tool_schemas": [to_json(spec) for spec in config.tools],
        "system_prompt_sha256": hashlib.sha256(config.system_prompt.encode()).hexdigest(),
        "workspace": {"path": str(workspace), "fingerprint": workspace_fingerprint(workspace)},
        "agents_md": agents_md,
        "parent": dict(parent) if parent else None,
    }
