"""The OS sandbox the shell tool's commands run in: what it allows, and whether it works here.

With a sandbox on, shell commands run without asking: the sandbox bounds what they reach
(docs/sandbox-and-security.md tells what it allows and hides). Linux uses bubblewrap; macOS
`sandbox-exec` with a profile of the same meaning (unit-tested as text, not run on a Mac).
`choose` turns what the user asked for into a `Sandbox` or none, failing loudly when an
explicit request cannot work.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v

from nano_code.adapters import early, workspace_scan
from nano_code.kernel.types import SandboxMode

BWRAP = "bwrap"
SANDBOX_EXEC = "/usr/bin/sandbox-exec"
PROBE_TIMEOUT = 10.0
"""Seconds the trial run may take before the sandbox counts as not working."""

BWRAP_NOT_FOUND = "bwrap (bubblewrap) not found"
INSTALL_HINT = "`apt-get install bubblewrap` (Debian/Ubuntu) or your distribution's bubblewrap package"
USERNS_HINT = (
    "bubblewrap needs unprivileged user namespaces: allowed by the kernel "
    "(sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces), by AppArmor "
    "(kernel.apparmor_restrict_unprivileged_userns on Ubuntu 24.04) and by the container"
)


KERNEL_CONTROLS = tuple(
    f"/proc/{name}" for name in ("sys", "sysrq-trigger", "irq", "bus", "fs", "mtrr", "pressure")
)
"""Parts of /proc that steer the kernel or its devices: read-only inside (as Docker keeps them)."""
HIDDEN_IN_HOME = (
    *(".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store", ".config/gcloud"),
    *(".config/gh", ".local/share/keyrings", ".netrc", ".git-credentials", ".pypirc", ".npmrc"),
)
"""Credential stores under the home directory: empty (directories) or unreadable (files) inside."""
HIDDEN_SYSTEM_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")
DAEMON_SOCKETS = (
    *("/run/docker.sock", "/var/run/docker.sock", "/run/containerd/containerd.sock"),
    *("/run/podman/podman.sock", "/run/crio/crio.sock"),
)
"""Sockets that are root on the host; hidden with the network on (without it /run is empty anyway).
Other Unix sockets stay reachable: seccomp cannot see where `connect` goes, and refusing every
AF_UNIX socket would break ordinary work (multiprocessing, a test database on a socket)."""


class SandboxUnavailable(Exception):
    """A sandbox was asked for explicitly and cannot run here; the message says why and what to do."""


def _absolute(_instance: object, attribute: Any, value: Path) -> None:
    if not isinstance(value, Path) or not value.is_absolute():
        raise ValueError(f"{attribute.name} must be an absolute Path, got {value!r}")


@attrs.frozen
class Sandbox:
    """A sandbox that is on: how to wrap a command line so that it runs inside."""

    mode: SandboxMode = attrs.field(validator=v.in_([SandboxMode.READ_ONLY, SandboxMode.WORKSPACE_WRITE]))
    network: bool = attrs.field(validator=v.instance_of(bool))
    workspace: Path = attrs.field(validator=_absolute)
    """The workspace, absolute and resolved (symlinks followed): what `workspace-write` opens."""
    platform: str = attrs.field(default="linux", validator=v.in_(["linux", "darwin"]))
    private_tmp: Path | None = attrs.field(default=None, validator=v.optional(_absolute))
    """macOS only: the writable directory TMPDIR points at (Linux mounts a fresh /tmp instead)."""

    def __attrs_post_init__(self) -> None:
        if self.platform == "darwin" and self.private_tmp is None:
            raise ValueError("a macOS sandbox needs a private_tmp directory")

    def wrap(self, argv: list[str], scan: workspace_scan.Scan | None = None) -> list[str]:
        """The command line that runs `argv` inside this sandbox (`scan`: a fresh one of the workspace)."""
        if self.platform == "darwin":
            assert self.private_tmp is not None
            profile = seatbelt_profile(self.mode, self.network, self.workspace, self.private_tmp)
            return [SANDBOX_EXEC, "-p", profile, "/usr/bin/env", f"TMPDIR={self.private_tmp}/", *argv]
        hidden = hidden_paths(self.workspace, self.network, scan=scan)
        return [BWRAP, *bwrap_arguments(self.mode, self.network, self.workspace, hidden), "--", *argv]

    def after_command(self) -> None:
        """Remove the mount point of the empty `.git` that `wrap` put where none was."""
        if self.platform == "linux" and self.mode is SandboxMode.WORKSPACE_WRITE:
            with contextlib.suppress(OSError):  # not empty, or not ours: a real repository now
                os.rmdir(self.workspace / ".git")


def hidden_paths(
    workspace: Path, network: bool, home: Path | None = None, scan: workspace_scan.Scan | None = None
) -> list[Path]:
    """What exists now and a command must not read; never the workspace or a folder above it."""
    home = Path.home() if home is None else home
    candidates = [home / name for name in HIDDEN_IN_HOME]
    candidates += [Path(name) for name in HIDDEN_SYSTEM_FILES]
    if network:
        candidates += [Path(name) for name in DAEMON_SOCKETS]
        runtime = Path(f"/run/user/{os.getuid()}")  # rootless Docker and Podman
        candidates += [runtime / "docker.sock", runtime / "podman" / "podman.sock"]
    found = [path for path in candidates if os.path.lexists(path)]
    found += (scan or workspace_scan.scan(workspace)).secrets
    return [path for path in found if not workspace.is_relative_to(path)]


def bwrap_arguments(
    mode: SandboxMode, network: bool, workspace: Path, hidden: Sequence[Path] = ()
) -> list[str]:
    """bubblewrap's options (between `bwrap` and `--`); each `hidden` path becomes an empty tmpfs or
    /dev/null. Mounts go parents first, as a later one covers an earlier one beneath it."""
    if mode not in (SandboxMode.READ_ONLY, SandboxMode.WORKSPACE_WRITE):
        raise ValueError(f"no bwrap arguments for sandbox mode {mode.value!r}")
    ws = str(workspace)
    mounts: list[tuple[str, list[str]]] = [
        ("/", ["--ro-bind", "/", "/"]),
        ("/dev", ["--dev", "/dev"]),
        ("/dev/shm", ["--tmpfs", "/dev/shm"]),
        ("/proc", ["--proc", "/proc"]),
        *((path, ["--ro-bind-try", path, path]) for path in KERNEL_CONTROLS),
        ("/tmp", ["--tmpfs", "/tmp"]),
    ]
    if not network:
        mounts.append(("/run", ["--tmpfs", "/run"]))
    # Read-only mode binds the workspace too: a private /tmp or /run would otherwise hide one under them.
    bind = "--bind" if mode is SandboxMode.WORKSPACE_WRITE else "--ro-bind"
    mounts.append((ws, [bind, ws, ws]))
    if mode is SandboxMode.WORKSPACE_WRITE:
        # A planted filter, hook or fsmonitor would run later, outside the sandbox.
        git_dir = os.path.join(ws, ".git")
        if os.path.lexists(git_dir):
            mounts.append((git_dir, ["--ro-bind", git_dir, git_dir]))
        else:
            mounts.append((git_dir, ["--tmpfs", git_dir, "--remount-ro", git_dir]))
    for path in hidden:
        name = str(path)
        mounts.append((name, ["--tmpfs", name] if os.path.isdir(path) else ["--ro-bind", "/dev/null", name]))
    mounts.sort(key=lambda mount: len(Path(mount[0]).parts))  # stable: ties keep the order above
    arguments = [option for _, options in mounts for option in options]
    arguments += ["--unshare-pid", "--unshare-ipc"]
    if not network:
        arguments.append("--unshare-net")
    # Commands keep nano-code's uid, root's too. --unshare-user would not help: bwrap maps the uid
    # inside to the real one, and the kernel's owner checks (/etc/shadow, /proc/sys) go by the real
    # uid; another real uid could not write a workspace root owns. So mounts close what root could
    # read or steer (KERNEL_CONTROLS, hidden paths), and every capability is dropped.
    arguments += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--setenv", "TMPDIR", "/tmp"]
    arguments += ["--chdir", ws]
    return arguments


def _sbpl_string(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def seatbelt_profile(mode: SandboxMode, network: bool, workspace: Path, private_tmp: Path) -> str:
    """The macOS `sandbox-exec` profile with the meaning of the Linux sandbox of `mode` (paths resolved)."""
    if mode not in (SandboxMode.READ_ONLY, SandboxMode.WORKSPACE_WRITE):
        raise ValueError(f"no sandbox profile for sandbox mode {mode.value!r}")
    writable = [f"(subpath {_sbpl_string(private_tmp)})"]
    if mode is SandboxMode.WORKSPACE_WRITE:
        writable.insert(0, f"(subpath {_sbpl_string(workspace)})")
    devices = ['(literal "/dev/null")', '(literal "/dev/zero")', '(literal "/dev/dtracehelper")']
    lines = [
        "(version 1)",
        f"; nano-code sandbox: {mode.value}, network {'on' if network else 'off'}",
        "(allow default)",
        "(deny file-write*)",
        "(allow file-write*",
        *(f"    {rule}" for rule in [*writable, *devices]),
        ")",
    ]
    if mode is SandboxMode.WORKSPACE_WRITE:
        # the repository's config and hooks stay read-only (the last matching rule wins)
        lines.append(f"(deny file-write* (subpath {_sbpl_string(workspace / '.git')}))")
    if not network:
        lines.append("(deny network*)")
    return "\n".join(lines) + "\n"


@functools.cache
def probe(platform: str = sys.platform) -> str | None:
    """None when a sandbox works here, else a one-line reason; on Linux a trial run with the real options
    must succeed (kernels and containers may forbid bubblewrap's namespaces)."""
    if platform == "darwin":
        return _probe_darwin()
    if not platform.startswith("linux"):
        return f"nano-code has no sandbox for this system ({platform})"
    if shutil.which(BWRAP) is None:
        return BWRAP_NOT_FOUND
    global _TRIAL
    argv, workspace = _TRIAL if _TRIAL is not None else _trial_argv()
    _TRIAL = None  # used once: a later probe (after cache_clear) starts afresh
    try:
        return _trial(argv, "bwrap")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


_TRIAL: tuple[list[str], str] | None = None
"""The trial run `start_probe` launched: its command line and its throwaway workspace."""


def _trial_argv() -> tuple[list[str], str]:
    workspace = tempfile.mkdtemp(prefix="nano-code-probe-")
    trial = Sandbox(SandboxMode.WORKSPACE_WRITE, network=False, workspace=Path(workspace).resolve())
    return trial.wrap(["true"]), workspace


def start_probe() -> None:
    """Start `probe`'s trial run now, to run while nano-code imports the rest (see `early`)."""
    global _TRIAL
    if _TRIAL is None and sys.platform.startswith("linux") and shutil.which(BWRAP) is not None:
        _TRIAL = _trial_argv()
        atexit.register(shutil.rmtree, _TRIAL[1], True)  # also when the run ends before probing
        early.start(_TRIAL[0], "/")


def _probe_darwin() -> str | None:
    if not os.path.exists(SANDBOX_EXEC):
        return f"{SANDBOX_EXEC} not found"
    return _trial([SANDBOX_EXEC, "-p", "(version 1)\n(allow default)\n", "/usr/bin/true"], "sandbox-exec")


def _trial(argv: list[str], name: str) -> str | None:
    try:
        done = early.run(argv, "/", PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"a trial run of {name} did not finish within {PROBE_TIMEOUT:g} s"
    except OSError as error:
        return f"{name} could not be started: {error.strerror or error}"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    first = " ".join(lines[0].split())[:200] if lines else f"exit status {done.returncode}"
    return f"a trial run of {name} failed: {first}"


def choose(
    requested: SandboxMode | None,
    *,
    network: bool,
    workspace: Path,
    platform: str = sys.platform,
) -> tuple[Sandbox | None, str | None]:
    """The sandbox to use, and a one-line notice for the user when there is none by default.

    No request means `workspace-write` where it works, else none and a notice; a mode asked for
    that cannot work raises `SandboxUnavailable`.
    """
    if requested is SandboxMode.OFF:
        return None, None
    mode = requested or SandboxMode.WORKSPACE_WRITE
    reason = probe(platform)
    if reason is not None:
        hint = f"install it with {INSTALL_HINT}" if reason == BWRAP_NOT_FOUND else None
        hint = USERNS_HINT if reason.startswith("a trial run of bwrap") else hint
        if requested is None:
            return None, f"sandbox off: {reason}" + (f" ({hint})" if hint else "")
        remedy = f"{hint}, or run with" if hint else "Run with"
        raise SandboxUnavailable(f"--sandbox {mode.value} cannot be used: {reason}. {remedy} --sandbox off.")
    resolved = Path(os.path.realpath(workspace))
    if platform == "darwin":
        return Sandbox(mode, network, resolved, platform="darwin", private_tmp=_private_tmp()), None
    return Sandbox(mode, network, resolved), None


def _private_tmp() -> Path:
    """A fresh directory for a macOS sandbox's temporary files, removed when nano-code exits."""
    path = Path(os.path.realpath(tempfile.mkdtemp(prefix="nano-code-tmp-")))
    atexit.register(shutil.rmtree, path, True)
    return path
