"""Workspace snapshots: taken beside the session, restored anywhere, bounded, and safe to unpack."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from nano_code.adapters import snapshot
from nano_code.adapters.snapshot import SnapshotError, SnapshotInfo

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def files_of(root: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or path.is_dir():
            continue
        found[str(path.relative_to(root))] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", cwd=root)
    (root / "kept.py").write_text("print('kept')\n")
    (root / "changed.py").write_text("old\n")
    (root / "gone.py").write_text("to be deleted\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / ".gitignore").write_text("*.log\n")
    (root / "sub").mkdir()
    (root / "sub" / "deep.txt").write_text("deep\n")
    git("add", "-A", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    (root / "changed.py").write_text("new\n")
    (root / "gone.py").unlink()
    (root / "fresh.txt").write_text("untracked\n")
    (root / "debug.log").write_text("ignored\n")
    return root


def test_a_git_workspace_comes_back_with_its_uncommitted_state(repo: Path, tmp_path: Path) -> None:
    session = tmp_path / "s.yaml"
    info = snapshot.take(repo, session)
    assert info.kind == "git" and info.head == git("rev-parse", "HEAD", cwd=repo).strip()
    assert info.deleted == ("gone.py",) and info.untracked == ("fresh.txt",)
    assert info.left_out == 0
    archive = session.with_name(info.file)
    assert archive == snapshot.archive_path(session) and archive.stat().st_mode & 0o777 == 0o600
    into = tmp_path / "restored"
    into.mkdir()
    snapshot.restore(session, SnapshotInfo.from_json(info.to_json()), into)
    expected = files_of(repo)
    del expected["debug.log"]  # ignored by git: not part of the workspace's state
    assert files_of(into) == expected
    assert os.access(into / "run.sh", os.X_OK)
    # git sees the same uncommitted changes
    assert git("status", "--porcelain", cwd=into) == git("status", "--porcelain", cwd=repo).replace(
        "?? debug.log\n", ""
    )
    assert git("diff", "HEAD", "--", "changed.py", cwd=into).splitlines()[-2:] == ["-old", "+new"]


def test_a_plain_directory_round_trips_without_caches(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0cache")
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "notes.md").write_text("hello\n")
    (root / "link").symlink_to("notes.md")
    info = snapshot.take(root, tmp_path / "s.yaml")
    assert info.kind == "files" and info.files == 3
    into = tmp_path / "out"
    into.mkdir()
    snapshot.restore(tmp_path / "s.yaml", info, into)
    assert files_of(into) == {"link": b"notes.md", "notes.md": b"hello\n", "pkg/mod.py": b"x = 1\n"}
    assert not (into / ".git").exists()


def test_the_cap_leaves_files_out_and_says_which(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "a-small.txt").write_text("small\n")
    (root / "b-large.bin").write_bytes(os.urandom(5000))
    (root / "c-small.txt").write_text("also small\n")
    info = snapshot.take(root, tmp_path / "s.yaml", max_bytes=1000)
    assert info.files == 2
    assert (info.left_out, info.left_out_bytes, info.left_out_names) == (1, 5000, ("b-large.bin",))
    into = tmp_path / "out"
    into.mkdir()
    snapshot.restore(tmp_path / "s.yaml", info, into)
    assert sorted(files_of(into)) == ["a-small.txt", "c-small.txt"]


def test_an_archive_that_is_not_the_recorded_one_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_text("x")
    info = snapshot.take(root, tmp_path / "s.yaml")
    archive = tmp_path / info.file
    archive.write_bytes(archive.read_bytes()[:-1] + b"!")
    with pytest.raises(SnapshotError, match="not the one the session recorded"):
        snapshot.restore(tmp_path / "s.yaml", info, tmp_path)
    archive.unlink()
    with pytest.raises(SnapshotError, match="is missing"):
        snapshot.restore(tmp_path / "s.yaml", info, tmp_path)


def _hostile_archive(tmp_path: Path, members: list[tarfile.TarInfo]) -> SnapshotInfo:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            archive.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
    data = buffer.getvalue()
    (tmp_path / "s.workspace.tar.gz").write_bytes(data)
    return SnapshotInfo(
        file="s.workspace.tar.gz", sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), kind="files"
    )


def test_an_entry_that_climbs_out_is_refused_and_nothing_lands_outside(tmp_path: Path) -> None:
    climbing = tarfile.TarInfo("files/../../escaped.txt")
    climbing.size = 4
    info = _hostile_archive(tmp_path, [climbing])
    into = tmp_path / "a" / "b"
    into.mkdir(parents=True)
    with pytest.raises(SnapshotError, match="unexpected entry"):
        snapshot.restore(tmp_path / "s.yaml", info, into)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "a" / "escaped.txt").exists()


def test_a_link_out_of_the_workspace_is_not_recreated(tmp_path: Path) -> None:
    outside = tarfile.TarInfo("files/passwd")
    outside.type = tarfile.SYMTYPE
    outside.linkname = "/etc/passwd"
    climbing = tarfile.TarInfo("files/up")
    climbing.type = tarfile.SYMTYPE
    climbing.linkname = "../../.."
    inside = tarfile.TarInfo("files/ok")
    inside.type = tarfile.SYMTYPE
    inside.linkname = "plain.txt"
    plain = tarfile.TarInfo("files/plain.txt")
    plain.size = 4
    info = _hostile_archive(tmp_path, [outside, climbing, inside, plain])
    into = tmp_path / "into"
    into.mkdir()
    snapshot.restore(tmp_path / "s.yaml", info, into)
    assert sorted(p.name for p in into.iterdir()) == ["ok", "plain.txt"]
    assert (into / "ok").read_bytes() == b"evil"


@pytest.mark.parametrize("name", ["../s.tar.gz", "/etc/passwd", "", "..", "a/b"])
def test_the_recorded_archive_name_must_be_a_plain_name(name: str) -> None:
    with pytest.raises(SnapshotError):
        SnapshotInfo.from_json({"file": name, "sha256": "0" * 64, "bytes": 1, "kind": "files"})
