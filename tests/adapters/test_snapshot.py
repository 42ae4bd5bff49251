"""Workspace snapshots: taken beside the session, restored anywhere, bounded, and safe to unpack."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from nano_code.adapters import snapshot, snapshot_restore
from nano_code.adapters.snapshot import SnapshotError, SnapshotInfo

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def files_of(root: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or path.is_dir():
            continue
        found[str(path.relative_to(root))] = (
            os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        )
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
    snapshot_restore.restore(session, SnapshotInfo.from_json(info.to_json()), into)
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
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
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
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert sorted(files_of(into)) == ["a-small.txt", "c-small.txt"]


def test_an_archive_that_is_not_the_recorded_one_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_text("x")
    info = snapshot.take(root, tmp_path / "s.yaml")
    archive = tmp_path / info.file
    archive.write_bytes(archive.read_bytes()[:-1] + b"!")
    with pytest.raises(SnapshotError, match="not the one the session recorded"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, tmp_path)
    archive.unlink()
    with pytest.raises(SnapshotError, match="is missing"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, tmp_path)


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
        snapshot_restore.restore(tmp_path / "s.yaml", info, into)
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
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert sorted(p.name for p in into.iterdir()) == ["ok", "plain.txt"]
    assert (into / "ok").read_bytes() == b"evil"


@pytest.mark.parametrize("name", ["../s.tar.gz", "/etc/passwd", "", "..", "a/b"])
def test_the_recorded_archive_name_must_be_a_plain_name(name: str) -> None:
    with pytest.raises(SnapshotError):
        SnapshotInfo.from_json({"file": name, "sha256": "0" * 64, "bytes": 1, "kind": "files"})


# ---------------------------------------------------------------- hostile sessions and archives


def _member(name: str, content: bytes = b"evil", link: str | None = None) -> tuple[tarfile.TarInfo, bytes]:
    member = tarfile.TarInfo(name)
    if link is not None:
        member.type = tarfile.SYMTYPE
        member.linkname = link
        return member, b""
    member.size = len(content)
    return member, content


def _archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], **fields: object) -> SnapshotInfo:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, content in members:
            archive.addfile(member, io.BytesIO(content) if member.isfile() else None)
    data = buffer.getvalue()
    (tmp_path / "s.workspace.tar.gz").write_bytes(data)
    record = {"file": "s.workspace.tar.gz", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return SnapshotInfo.from_json({"kind": "files", **record, **fields})


def _everything(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_chained_links_cannot_carry_a_file_out(tmp_path: Path) -> None:
    info = _archive(
        tmp_path,
        [
            _member("files/a/b/keep", b"kept"),
            _member("files/a/b/s", link="../.."),
            _member("files/a/b/s/l", link="../victim"),
            _member("files/a/b/s/l/secret.txt", b"secret"),
        ],
    )
    into = tmp_path / "into"
    into.mkdir()
    before = _everything(tmp_path)
    with pytest.raises(SnapshotError, match="under a link"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert not (tmp_path / "victim").exists()
    assert {p for p in _everything(tmp_path) if not p.startswith("into/")} == before
    # the same chain without the file: the link under a link is refused too
    info = _archive(
        tmp_path, [_member("files/a/b/s", link="../.."), _member("files/a/b/s/l", link="../victim")]
    )
    with pytest.raises(SnapshotError, match="under a link"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, tmp_path / "into")
    assert not (tmp_path / "victim").exists()


def test_a_link_that_climbs_out_of_another_link_is_not_made(tmp_path: Path) -> None:
    # a/x -> .. is the workspace itself, so y -> a/x/../.. would be its parent (lexically it is '.')
    info = _archive(
        tmp_path,
        [
            _member("files/a/keep", b"k"),
            _member("files/a/x", link=".."),
            _member("files/y", link="a/x/../.."),
            _member("files/z", link="a/keep"),
        ],
    )
    into = tmp_path / "into"
    into.mkdir()
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert os.readlink(into / "a" / "x") == ".." and os.readlink(into / "z") == "a/keep"
    assert not (into / "y").is_symlink()
    for link in (p for p in into.rglob("*") if p.is_symlink()):
        assert Path(os.path.realpath(link)).is_relative_to(into.resolve())


def _git_archive(tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> SnapshotInfo:
    return _archive(tmp_path, members, kind="git", head="0" * 40, files=len(members))


@pytest.mark.parametrize(
    "name", ["files/.git/config", "files/.GIT/config", "files/sub/.Git", "git-head/.git/x"]
)
def test_an_archive_with_a_git_directory_is_refused(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    config = f'[filter "x"]\n\tclean = touch {marker}\n\tsmudge = touch {marker}\n'.encode()
    info = _git_archive(tmp_path, [_member(name, config), _member("files/.gitattributes", b"* filter=x\n")])
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(SnapshotError, match="unexpected entry"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert not marker.exists() and not (into / ".git").exists()


def test_no_filter_runs_while_restoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A filter driver the user's own git config defines, named by the archive's .gitattributes.
    marker = tmp_path / "ran"
    config = tmp_path / "gitconfig"
    config.write_text(f'[filter "x"]\n\tclean = touch {marker}\n\tsmudge = cat\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    info = _git_archive(
        tmp_path,
        [_member("files/.gitattributes", b"* filter=x\n"), _member("files/a.txt", b"a\n")],
    )
    into = tmp_path / "into"
    into.mkdir()
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert not marker.exists()
    assert git("ls-files", cwd=into).split() == [".gitattributes", "a.txt"]


@pytest.mark.parametrize(
    "name",
    ["/victim", "../victim", "a/../../victim", "a//b", "./a", "a/", "", ".git/config", "x/.GIT", "a\0b"],
)
@pytest.mark.parametrize("field", ["deleted", "untracked"])
def test_recorded_paths_must_stay_inside(field: str, name: str) -> None:
    with pytest.raises(SnapshotError):
        SnapshotInfo.from_json(
            {"file": "s.tar.gz", "sha256": "0" * 64, "bytes": 1, "kind": "git", field: [name]}
        )


def test_a_recorded_path_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(SnapshotError):
        SnapshotInfo.from_json(
            {"file": "s.tar.gz", "sha256": "0" * 64, "bytes": 1, "kind": "git", "deleted": "ab"}
        )


def test_restore_never_deletes_outside(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    good = _git_archive(tmp_path, [_member("files/a.txt", b"a\n")])
    into = tmp_path / "into"
    into.mkdir()
    for field in ("deleted", "untracked"):
        # a hand-made SnapshotInfo, past from_json's checks
        info = SnapshotInfo(**{**attrs_dict(good), field: (str(victim),)})
        with pytest.raises(SnapshotError, match="may not hold"):
            snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert victim.read_text() == "keep me"


def attrs_dict(info: SnapshotInfo) -> dict[str, object]:
    import attrs

    return attrs.asdict(info, recurse=False)


def test_a_directory_replaced_by_a_file_and_back_restores(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", cwd=root)
    (root / "x").mkdir()
    (root / "x" / "y").write_text("y\n")
    (root / "f").write_text("f\n")
    (root / "d").mkdir()
    (root / "d" / "g").write_text("g\n")
    (root / "ln").symlink_to("f")
    git("add", "-A", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    (root / "x" / "y").unlink()
    (root / "x").rmdir()
    (root / "x").write_text("now a file\n")
    (root / "f").unlink()
    (root / "f").mkdir()
    (root / "f" / "inner").write_text("inner\n")
    (root / "d" / "g").unlink()
    (root / "d").rmdir()
    (root / "d").symlink_to("f")  # a tracked directory replaced by a link
    info = snapshot.take(root, tmp_path / "s.yaml")
    into = tmp_path / "into"
    into.mkdir()
    snapshot_restore.restore(tmp_path / "s.yaml", SnapshotInfo.from_json(info.to_json()), into)
    assert files_of(into) == files_of(root)
    assert git("status", "--porcelain", cwd=into) == git("status", "--porcelain", cwd=root)


def test_an_os_error_while_restoring_is_a_snapshot_error(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_text("x")
    info = snapshot.take(root, tmp_path / "s.yaml")
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(SnapshotError, match="cannot be restored"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, not_a_directory)


def test_a_failed_restore_leaves_no_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _archive(tmp_path, [_member("files/.git/config")])
    monkeypatch.setattr(snapshot_restore.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(SnapshotError):
        snapshot_restore.restored_workspace(tmp_path / "s.yaml", info)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_workspace_below_the_repository_root(tmp_path: Path) -> None:
    mono = tmp_path / "mono"
    (mono / "pkg").mkdir(parents=True)
    (mono / "top.txt").write_text("top\n")
    (mono / "pkg" / "a.txt").write_text("old\n")
    (mono / "pkg" / "b.txt").write_text("b\n")
    git("init", "-q", cwd=mono)
    git("add", "-A", cwd=mono)
    git("commit", "-qm", "init", cwd=mono)
    (mono / "pkg" / "a.txt").write_text("new\n")
    (mono / "top.txt").write_text("changed outside the workspace\n")
    info = snapshot.take(mono / "pkg", tmp_path / "s.yaml")
    into = tmp_path / "into"
    into.mkdir()
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert files_of(into) == {"a.txt": b"new\n", "b.txt": b"b\n"}
    assert not (into / "pkg").exists()
    assert git("diff", "HEAD", "--", "a.txt", cwd=into).splitlines()[-2:] == ["-old", "+new"]
    assert git("status", "--porcelain", cwd=into) == " M a.txt\n"


def test_a_gzip_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time
    import zlib

    header = tarfile.TarInfo("files/big")
    header.size = 64 * 1024 * 1024
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = packer.compress(header.tobuf())
    zeros = bytes(1024 * 1024)
    for _ in range(64):
        data += packer.compress(zeros)
    data += packer.flush()
    assert len(data) < 200_000
    (tmp_path / "s.workspace.tar.gz").write_bytes(data)
    info = SnapshotInfo.from_json(
        {
            "file": "s.workspace.tar.gz",
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "kind": "files",
            "files": 1,
            "max_bytes": 1000,
        }
    )
    into = tmp_path / "into"
    into.mkdir()
    started = time.monotonic()
    with pytest.raises(SnapshotError, match="expands to more than"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert time.monotonic() - started < 5
    assert list(into.iterdir()) == []


def test_an_absurd_recorded_size_is_refused(tmp_path: Path) -> None:
    for field in ("bytes", "max_bytes"):
        with pytest.raises(SnapshotError, match="larger than"):
            SnapshotInfo.from_json(
                {"file": "s.tar.gz", "sha256": "0" * 64, "bytes": 1, "kind": "files", field: 2**40}
            )
    info = SnapshotInfo(file="s.tar.gz", sha256="0" * 64, bytes=2**40, kind="files")
    with pytest.raises(SnapshotError, match="larger than"):
        snapshot_restore.restore(tmp_path / "s.yaml", info, tmp_path)


def test_the_walk_stops_at_the_entry_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "MAX_ENTRIES", 10)
    root = tmp_path / "many"
    for d in range(5):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(10):
            (root / f"d{d}" / f"f{f}").write_text("x")
    info = snapshot.take(root, tmp_path / "s.yaml")
    assert info.walk_stopped and info.files < 10
    assert any("walk stopped" in name for name in info.left_out_names)
    # a git list longer than the cap is cut too
    git("init", "-q", cwd=root)
    info = snapshot.take(root, tmp_path / "t.yaml")
    assert info.kind == "git" and info.walk_stopped and info.files == 10


def test_the_walk_stops_once_the_budget_is_used(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "a").write_bytes(b"x" * 100)
    (root / "b").write_bytes(b"y")
    info = snapshot.take(root, tmp_path / "s.yaml", max_bytes=100)
    assert info.files == 1 and info.walk_stopped
    info = snapshot.take(root, tmp_path / "t.yaml", max_bytes=101)
    assert info.files == 2 and not info.walk_stopped


def test_head_versions_that_do_not_fit_are_never_read(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "changed.py").write_text("x" * 5000)
    git("commit", "-qam", "big", cwd=repo)
    (repo / "changed.py").write_text("small\n")
    (repo / "kept.py").write_text("edited\n")
    asked: list[bytes] = []
    real = snapshot._git

    def spy(args: list[str], cwd: Path, data: bytes | None = None) -> bytes | None:
        if "--batch" in args and data is not None:
            asked.append(data)
        return real(args, cwd, data)

    monkeypatch.setattr(snapshot, "_git", spy)
    info = snapshot.take(repo, tmp_path / "s.yaml", max_bytes=1000)
    assert "changed.py (HEAD's version)" in info.left_out_names
    big = git("rev-parse", "HEAD:changed.py", cwd=repo).strip().encode()
    assert asked and all(big not in request for request in asked)  # kept.py's version was read


def test_env_files_are_never_snapshotted(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / ".env").write_text("TOKEN=1\n")
    (root / "sub" / ".env.local").write_text("TOKEN=2\n")
    (root / "config.env").write_text("not secret\n")
    (root / "main.py").write_text("pass\n")
    for kind in ("files", "git"):
        if kind == "git":
            git("init", "-q", cwd=root)
        info = snapshot.take(root, tmp_path / f"{kind}.yaml")
        with tarfile.open(tmp_path / info.file) as archive:
            names = archive.getnames()
        assert sorted(names) == ["files/config.env", "files/main.py"]
        assert ".env (secrets: not snapshotted)" in info.left_out_names
        assert "sub/.env.local (secrets: not snapshotted)" in info.left_out_names


def test_a_changed_file_with_a_newline_in_its_name(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", cwd=root)
    (root / "odd\nname").write_text("old\n")
    (root / "plain").write_text("old\n")
    git("add", "-A", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    (root / "odd\nname").write_text("new\n")
    (root / "plain").write_text("new\n")
    info = snapshot.take(root, tmp_path / "s.yaml")
    assert "odd\nname (HEAD's version: a newline in its name)" in info.left_out_names
    into = tmp_path / "into"
    into.mkdir()
    snapshot_restore.restore(tmp_path / "s.yaml", info, into)
    assert (into / "odd\nname").read_text() == "new\n"
    assert git("diff", "HEAD", "--", "plain", cwd=into).splitlines()[-2:] == ["-old", "+new"]
