"""`nano-code eval --engine ray` against a real Ray cluster, and Ray never imported otherwise.

The module needs the [ray] extra and a running cluster whose address is in
NANO_CODE_TEST_RAY_ADDRESS (.ci/run starts one with `ray start --head`); without them it is
skipped with one line. The FakeServer listens on 127.0.0.1, which workers on this machine reach.
"""

from __future__ import annotations

import _thread
import csv
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eval_helpers import TaskModel

from nano_code.adapters.config import Settings
from nano_code.cli.eval_cmd import eval_main
from nano_code.cli.replay_cmd import replay_main
from nano_code.evals import SampleSpec, load_suite
from nano_code.evals.ray_engine import INSTALL_HINT, _sandbox_missing, _sandbox_mode, pack, unpack
from nano_code.testing.fake_server import FakeServer, reply

ADDRESS_VARIABLE = "NANO_CODE_TEST_RAY_ADDRESS"
HOW_TO_RUN = (
    "Ray cluster tests: pip install -e '.[ray]'; ray start --head --num-cpus=2; "
    f"{ADDRESS_VARIABLE}=127.0.0.1:6379 pytest tests/evals/test_ray.py"
)
GOOD, BAD = "m/good", "m/bad"


RAY_ADDRESS = os.environ.get(ADDRESS_VARIABLE, "").strip()
if not RAY_ADDRESS or importlib.util.find_spec("ray") is None:
    pytest.skip(HOW_TO_RUN, allow_module_level=True)


@pytest.fixture
def ray_address() -> str:
    return RAY_ADDRESS


def csv_rows(path: Path, *leave_out: str) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in leave_out} for row in csv.DictReader(handle)]


def files_holding(folder: Path, secret: bytes) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and secret in path.read_bytes()]


# Needing no cluster ------------------------------------------------------------------------------

IMPORTS_RAY = """
import atexit, sys
atexit.register(lambda: print("ray imported:", "ray" in sys.modules, file=sys.stderr))
from nano_code.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_local_eval_and_a_plain_run_never_import_ray(
    suite: Path, model: tuple[TaskModel, FakeServer], tmp_path: Path
) -> None:
    _, server = model
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANO_CODE_", "OPENROUTER_", "RAY_"))}
    env["NANO_CODE_HOME"] = str(tmp_path / "home")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    commands = [
        ["eval", str(suite), "--model", GOOD, "--output", str(tmp_path / "out"), "--engine", "local"],
        ["-p", "write alpha", "--model", GOOD, "--yes"],
    ]
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-c", IMPORTS_RAY, *command, "--base-url", server.base_url],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "ray imported: False" in done.stderr, (command, done.stderr)


def test_engine_ray_without_ray_says_in_one_line_how_to_install_it(
    suite: Path, clean_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    argv = [str(suite), "--model", GOOD, "--output", str(out), "--engine", "ray", "--base-url", "http://127.0.0.1:9"]
    assert eval_main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"nano-code eval: {INSTALL_HINT}"]
    assert "pip install 'nano-code[ray]'" in err
    assert not out.exists()


def test_ray_address_needs_engine_ray(suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        eval_main([str(suite), "--output", str(tmp_path / "out"), "--ray-address", "127.0.0.1:6379"])
    assert exit_.value.code == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err


def test_an_unreachable_cluster_is_one_line_before_dir_is_made(
    suite: Path, clean_cwd: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [str(suite), "--model", GOOD, "--output", str(out), "--base-url", "http://127.0.0.1:9"]
    assert eval_main([*argv, "--engine", "ray", "--ray-address", "127.0.0.1:1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("nano-code eval: cannot reach the Ray cluster at 127.0.0.1:1 (")
    assert not out.exists()


def test_a_workspace_travels_as_a_tar_with_its_links_and_modes(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "pkg" / "run.sh").chmod(0o755)
    (source / "data.txt").write_bytes(b"\x00\xffbytes")
    (source / "link").symlink_to("pkg/run.sh")
    (source / "empty").mkdir()
    copy = tmp_path / "copy"
    unpack(pack(source), copy)
    assert (copy / "data.txt").read_bytes() == b"\x00\xffbytes"
    assert os.readlink(copy / "link") == "pkg/run.sh"
    assert (copy / "pkg" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (copy / "empty").is_dir()
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == sorted(
        p.relative_to(source) for p in source.rglob("*")
    )


def test_a_worker_without_the_drivers_sandbox_refuses_the_sample(suite: Path, tmp_path: Path) -> None:
    spec = SampleSpec(load_suite(suite).tasks[0], GOOD, 1, Settings(), "sessions/alpha/m/epoch-1.yaml")
    here = _sandbox_mode(spec)
    assert _sandbox_missing(spec, here, tmp_path) is None
    other = "off" if here != "off" else "workspace-write"
    refusal = _sandbox_missing(spec, other, tmp_path)
    assert refusal is not None and f"sandbox {here}" in refusal and f"driver has {other}" in refusal


# On a cluster ----------------------------------------------------------------------------------


def test_a_suite_on_ray_gives_the_local_rows_and_the_key_stays_secret(
    ray_address: str,
    suite: Path,
    model: tuple[TaskModel, FakeServer],
    clean_cwd: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _, server = model
    key = f"sk-or-v1-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENROUTER_API_KEY", key)
    common = ["--model", GOOD, "--model", BAD, "--epochs", "2", "--base-url", server.base_url, "--jobs", "2"]
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert eval_main([str(suite), *common, "--output", str(local)]) == 0
    sent_locally = len(server.requests)
    ray_argv = [str(suite), *common, "--output", str(on_ray), "--engine", "ray", "--ray-address", ray_address]
    assert eval_main(ray_argv) == 0
    out, err = capfd.readouterr()

    rows = csv_rows(on_ray / "samples.csv", "duration_s")
    assert len(rows) == 8 and rows == csv_rows(local / "samples.csv", "duration_s")
    assert {row["outcome"] for row in rows} == {"pass", "fail"}  # beta ran in its shipped workspace
    assert csv_rows(on_ray / "summary.csv") == csv_rows(local / "summary.csv")
    assert (on_ray / "compare.csv").read_text() == (local / "compare.csv").read_text()
    for folder in (local, on_ray):
        assert replay_main(["-q", str(folder)]) == 0
    assert "identical 8 | diverged 0 | errors 0" in capfd.readouterr().out

    on_ray_requests = server.requests[sent_locally:]
    assert len(on_ray_requests) == 16
    assert all(r["headers"].get("Authorization") == f"Bearer {key}" for r in on_ray_requests)
    assert files_holding(on_ray, key.encode()) == []
    assert key not in out and key not in err
    cluster_logs = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"
    if cluster_logs.is_dir():  # the cluster runs on this machine: its logs never hold the key either
        assert files_holding(cluster_logs, key.encode()) == []


class SlowModel(TaskModel):
    """As TaskModel, but `m/slow` answers only after a minute; counts the requests in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0
        self._count = threading.Lock()

    def __call__(self, request: Any, number: int) -> Any:
        with self._count:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if request.get("model") == "m/slow":
                return reply(content="too late", delay=60)
            time.sleep(0.2)
            return super().__call__(request, number)
        finally:
            with self._count:
                self.in_flight -= 1


def test_the_engine_takes_specs_lazily_and_ctrl_c_cancels_what_is_in_flight(
    ray_address: str, suite: Path, tmp_path: Path
) -> None:
    import ray

    from nano_code.evals.ray_engine import ray_engine

    task = load_suite(suite).tasks[1]  # beta: its workspace is shipped
    models = [GOOD, "m/slow", "m/slow", GOOD]
    pulled: list[int] = []
    respond = SlowModel()
    with FakeServer(respond) as server:
        settings = Settings(base_url=server.base_url, home=tmp_path / "home")

        def specs() -> Iterator[SampleSpec]:
            for epoch, name in enumerate(models, 1):
                pulled.append(epoch)
                yield SampleSpec(task, name, epoch, settings, f"sessions/beta/m/epoch-{epoch}.yaml")

        ray.init(address=ray_address, log_to_driver=False)
        try:
            results = ray_engine({})(specs(), 2, threading.Event())
            first = next(results)
            assert first.row is not None and first.row.outcome == "pass"
            assert len(pulled) == 2  # at most --jobs, and the next only once a result is seen
            ctrl_c = threading.Timer(1.5, _thread.interrupt_main)
            ctrl_c.start()
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                next(results)  # takes the third spec, then waits on two slow samples until Ctrl-C
            assert time.monotonic() - started < 15  # cancelled: each ends within its grace
            assert len(pulled) == 3 and respond.most_in_flight <= 2
            both_cpus = ray.remote(lambda: "free").options(num_cpus=2)
            assert ray.get(both_cpus.remote(), timeout=30) == "free"
        finally:
            ray.shutdown()


def test_a_workspace_that_cannot_be_read_is_that_samples_error_row(
    ray_address: str, suite: Path, tmp_path: Path
) -> None:
    import attrs
    import ray

    from nano_code.evals.ray_engine import ray_engine

    task = attrs.evolve(load_suite(suite).tasks[1], workspace=str(tmp_path / "gone"))
    spec = SampleSpec(task, GOOD, 1, Settings(base_url="http://127.0.0.1:9"), "sessions/beta/m/epoch-1.yaml")
    ray.init(address=ray_address, log_to_driver=False)
    try:
        (result,) = ray_engine({})(iter([spec]), 2, threading.Event())
    finally:
        ray.shutdown()
    assert result.row is not None and result.row.outcome == "error" and result.files == ()
    assert result.row.error.startswith("the sample could not run: its workspace: ")
