"""The sandbox's plans, as text: bubblewrap's options, the macOS profile, and `choose`.

None of this runs a sandbox, so it runs everywhere; tests/sandbox/test_sandbox_real.py
runs commands through bwrap.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nano_code.adapters import sandbox
from nano_code.adapters.sandbox import (
    Sandbox,
    SandboxUnavailable,
    bwrap_arguments,
    choose,
    seatbelt_profile,
)
from nano_code.kernel.types import SandboxMode

WW = SandboxMode.WORKSPACE_WRITE
RO = SandboxMode.READ_ONLY
PROJECT = Path("/home/ada/project")


def mounts(arguments: list[str]) -> list[tuple[str, ...]]:
    """The mount options in order, each with its operands."""
    operands = {
        "--ro-bind": 2,
        "--ro-bind-try": 2,
        "--bind": 2,
        "--dev": 1,
        "--proc": 1,
        "--tmpfs": 1,
        "--remount-ro": 1,
    }
    found, index = [], 0
    while index < len(arguments):
        option = arguments[index]
        count = operands.get(option)
        if count is None:
            index += 1
            continue
        found.append((option, *arguments[index + 1 : index + 1 + count]))
        index += 1 + count
    return found


# ---------------------------------------------------------------- bubblewrap


def test_workspace_write_without_network() -> None:
    arguments = bwrap_arguments(WW, False, PROJECT)
    assert mounts(arguments) == [
        ("--ro-bind", "/", "/"),
        ("--dev", "/dev"),
        ("--proc", "/proc"),
        ("--tmpfs", "/tmp"),
        ("--tmpfs", "/run"),
        ("--tmpfs", "/dev/shm"),
        *(("--ro-bind-try", path, path) for path in sandbox.KERNEL_CONTROLS),
        ("--bind", str(PROJECT), str(PROJECT)),
        # no repository here: an empty, read-only one stops `git init`
        ("--tmpfs", str(PROJECT / ".git")),
        ("--remount-ro", str(PROJECT / ".git")),
    ]
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-net", "--die-with-parent", "--new-session"):
        assert flag in arguments
    assert arguments[arguments.index("--cap-drop") + 1] == "ALL"
    assert arguments[arguments.index("--chdir") + 1] == str(PROJECT)
    assert arguments[arguments.index("--setenv") + 1 : arguments.index("--setenv") + 3] == ["TMPDIR", "/tmp"]


def test_network_keeps_the_network_namespace_and_run() -> None:
    arguments = bwrap_arguments(WW, True, PROJECT)
    assert "--unshare-net" not in arguments
    assert ("--tmpfs", "/run") not in mounts(arguments)
    assert "--unshare-pid" in arguments and "--new-session" in arguments


def test_read_only_binds_nothing_writable() -> None:
    arguments = bwrap_arguments(RO, False, PROJECT)
    assert "--bind" not in arguments
    assert ("--ro-bind", str(PROJECT), str(PROJECT)) in mounts(arguments)
    assert ("--tmpfs", "/tmp") in mounts(arguments)


@pytest.mark.parametrize("mode", [WW, RO])
def test_a_workspace_under_tmp_is_bound_after_the_private_tmp(mode: SandboxMode) -> None:
    workspace = Path("/tmp/pytest-of-ada/work")
    order = [mount[-1] for mount in mounts(bwrap_arguments(mode, False, workspace))]
    assert order.index("/tmp") < order.index(str(workspace))


def test_a_workspace_under_run_is_bound_after_the_empty_run() -> None:
    workspace = Path("/run/user/1000/work")
    order = [m[-1] for m in mounts(bwrap_arguments(WW, False, workspace))]
    assert order.index("/run") < order.index(str(workspace))


def test_the_root_as_workspace_is_bound_before_dev_proc_and_tmp() -> None:
    found = mounts(bwrap_arguments(WW, False, Path("/")))
    assert found[:2] == [("--ro-bind", "/", "/"), ("--bind", "/", "/")]
    assert ("--tmpfs", "/tmp") in found[2:] and ("--proc", "/proc") in found[2:]


def test_odd_workspace_names_stay_one_argument() -> None:
    workspace = Path("/home/ada/my project; rm -rf ~")
    arguments = bwrap_arguments(WW, False, workspace)
    assert ("--bind", str(workspace), str(workspace)) in mounts(arguments)


def test_off_has_no_plan() -> None:
    with pytest.raises(ValueError):
        bwrap_arguments(SandboxMode.OFF, False, PROJECT)
    with pytest.raises(ValueError):
        seatbelt_profile(SandboxMode.OFF, False, PROJECT, Path("/private/tmp/x"))


def test_wrap_puts_the_command_after_the_options() -> None:
    box = Sandbox(WW, network=False, workspace=PROJECT)
    argv = box.wrap(["/bin/bash", "-c", "--help"])
    assert argv[0] == "bwrap"
    assert argv[argv.index("--") :] == ["--", "/bin/bash", "-c", "--help"]
    assert argv[1:-4] == bwrap_arguments(WW, False, PROJECT, sandbox.hidden_paths(PROJECT, False))


def test_a_sandbox_needs_an_on_mode_and_an_absolute_workspace() -> None:
    with pytest.raises(ValueError):
        Sandbox(SandboxMode.OFF, network=False, workspace=PROJECT)
    with pytest.raises(ValueError):
        Sandbox(WW, network=False, workspace=Path("relative"))
    with pytest.raises(ValueError):
        Sandbox(WW, network=False, workspace=PROJECT, platform="darwin")  # no private tmp


# ---------------------------------------------------------------- macOS


def balanced(profile: str) -> bool:
    depth = 0
    for char in re.sub(r'"(\\.|[^"\\])*"', '""', profile):
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


def test_seatbelt_workspace_write_without_network() -> None:
    profile = seatbelt_profile(WW, False, Path("/Users/ada/project"), Path("/private/var/folders/x/T/nc"))
    assert profile.startswith("(version 1)\n")
    assert "(allow default)" in profile and "(deny file-write*)" in profile
    allowed = profile[profile.index("(allow file-write*") :]
    assert '(subpath "/Users/ada/project")' in allowed
    assert '(subpath "/private/var/folders/x/T/nc")' in allowed
    assert '(literal "/dev/null")' in allowed
    assert "(deny network*)" in profile
    # The denial comes first: in SBPL the last matching rule wins.
    assert profile.index("(deny file-write*)") < profile.index("(allow file-write*")
    assert balanced(profile)


def test_seatbelt_read_only_allows_only_the_private_tmp() -> None:
    profile = seatbelt_profile(RO, False, Path("/Users/ada/project"), Path("/private/tmp/nc"))
    assert "/Users/ada/project" not in profile
    assert '(subpath "/private/tmp/nc")' in profile


def test_seatbelt_with_network() -> None:
    profile = seatbelt_profile(WW, True, Path("/Users/ada/project"), Path("/private/tmp/nc"))
    assert "network*" not in profile


def test_seatbelt_quotes_paths() -> None:
    profile = seatbelt_profile(WW, False, Path('/Users/ada/a "b" \\c'), Path("/private/tmp/nc"))
    assert r'(subpath "/Users/ada/a \"b\" \\c")' in profile
    assert balanced(profile)


def test_darwin_wrap_uses_sandbox_exec_and_the_private_tmp() -> None:
    box = Sandbox(WW, False, Path("/Users/ada/p"), platform="darwin", private_tmp=Path("/private/tmp/nc"))
    argv = box.wrap(["/bin/bash", "-c", "ls"])
    assert argv[:2] == ["/usr/bin/sandbox-exec", "-p"]
    assert argv[2] == seatbelt_profile(WW, False, Path("/Users/ada/p"), Path("/private/tmp/nc"))
    assert argv[3:] == ["/usr/bin/env", "TMPDIR=/private/tmp/nc/", "/bin/bash", "-c", "ls"]


# ---------------------------------------------------------------- choose


@pytest.fixture
def works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "probe", lambda platform="linux": None)


@pytest.fixture
def missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "probe", lambda platform="linux": "bwrap (bubblewrap) not found")


def test_off_is_no_sandbox_and_no_notice(missing: None, tmp_path: Path) -> None:
    assert choose(SandboxMode.OFF, network=False, workspace=tmp_path) == (None, None)


def test_default_is_workspace_write_where_it_works(works: None, tmp_path: Path) -> None:
    box, notice = choose(None, network=False, workspace=tmp_path / ".", platform="linux")
    assert notice is None
    assert box == Sandbox(WW, network=False, workspace=tmp_path.resolve())


@pytest.mark.parametrize("mode", [RO, WW])
def test_an_explicit_mode_is_kept(works: None, tmp_path: Path, mode: SandboxMode) -> None:
    box, _ = choose(mode, network=True, workspace=tmp_path, platform="linux")
    assert box is not None and box.mode is mode and box.network


def test_default_without_bwrap_is_off_with_a_notice(missing: None, tmp_path: Path) -> None:
    box, notice = choose(None, network=False, workspace=tmp_path, platform="linux")
    assert box is None
    assert notice is not None and "\n" not in notice
    assert notice.startswith("sandbox off: bwrap (bubblewrap) not found")
    assert "apt-get install bubblewrap" in notice


@pytest.mark.parametrize("mode", [RO, WW])
def test_an_explicit_mode_without_bwrap_is_an_error(missing: None, tmp_path: Path, mode: SandboxMode) -> None:
    with pytest.raises(SandboxUnavailable) as raised:
        choose(mode, network=False, workspace=tmp_path, platform="linux")
    message = str(raised.value)
    assert f"--sandbox {mode.value} cannot be used" in message
    assert "bwrap (bubblewrap) not found" in message and "--sandbox off" in message


def test_without_bwrap_on_path_probe_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sandbox.probe.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        assert sandbox.probe("linux") == "bwrap (bubblewrap) not found"
        with pytest.raises(SandboxUnavailable):
            choose(WW, network=False, workspace=tmp_path, platform="linux")
        assert choose(None, network=False, workspace=tmp_path, platform="linux")[0] is None
    finally:
        sandbox.probe.cache_clear()


def test_a_bwrap_that_fails_is_reported_with_its_first_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\necho more >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    sandbox.probe.cache_clear()
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    try:
        reason = sandbox.probe("linux")
    finally:
        sandbox.probe.cache_clear()
    assert reason == "a trial run of bwrap failed: bwrap: No permissions to creating new namespace"


def test_other_systems_have_no_sandbox(tmp_path: Path) -> None:
    box, notice = choose(None, network=False, workspace=tmp_path, platform="win32")
    assert box is None and notice is not None and "win32" in notice
    with pytest.raises(SandboxUnavailable, match="no sandbox for this system"):
        choose(RO, network=False, workspace=tmp_path, platform="freebsd14")


def test_macos_gets_a_profile_and_a_private_tmp(works: None, tmp_path: Path) -> None:
    box, notice = choose(None, network=False, workspace=tmp_path, platform="darwin")
    assert notice is None and box is not None
    assert box.platform == "darwin" and box.private_tmp is not None and box.private_tmp.is_dir()
    assert box.wrap(["true"])[0] == "/usr/bin/sandbox-exec"


def test_a_bwrap_that_fails_its_trial_points_at_user_namespaces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    reason = "a trial run of bwrap failed: bwrap: setting up uid map: Permission denied"
    monkeypatch.setattr(sandbox, "probe", lambda platform="linux": reason)
    box, notice = choose(None, network=False, workspace=tmp_path, platform="linux")
    assert box is None and notice is not None
    assert notice.startswith(f"sandbox off: {reason}") and "user namespaces" in notice
    assert "apt-get" not in notice
    with pytest.raises(SandboxUnavailable, match=r"user namespaces.*--sandbox off"):
        choose(WW, network=False, workspace=tmp_path, platform="linux")
