"""`--engine ray`: each sample a Ray task on a cluster, under the contract of `engines.local_engine`
(specs taken lazily, at most `jobs` in flight, results as they finish, `stop` cancels the rest).

The driver alone writes DIR. A task gets everything by value, so a worker on another machine
needs no shared disk: the spec without its API key, the key as an argument of its own (inlined
in the task's call, never in a runtime_env, whose variables Ray logs to disk and shows in its
state API), and the task's workspace folder as a tar put once into Ray's object store. It sends
back the row and the session's bytes (`SampleResult`). Ray is imported here only, and this
module only when `--engine ray` is asked for (`engines.ENGINES`).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from nano_code.adapters.process_groups import kill_left_running
from nano_code.adapters.sandbox import SandboxUnavailable
from nano_code.adapters.secrets import Redactor
from nano_code.evals.sample import Engine, SampleResult, SampleSpec, error_result, one_line, run_sample
from nano_code.session.factory import choose_sandbox

INSTALL_HINT = "--engine ray needs Ray: pip install 'nano-code[ray]' (on the driver and on every worker)"

CONNECT_SECONDS = 5.0
"""How long the cluster's port may take to answer before the run is refused."""

WAIT_SECONDS = 0.5
"""How long one `ray.wait` blocks, so that Ctrl-C and `stop` are seen between waits."""

STOP_GRACE = 5.0
"""Seconds a cancelled task gives its sample to end at its next step before the task ends anyway."""

WORKSPACE_CACHE_BYTES = 512 * 1024 * 1024
"""Workspace archives kept in the object store for the samples still to come (oldest dropped first)."""


def ray_engine(options: Mapping[str, Any]) -> Engine:
    """The engine on the cluster at `options["address"]` (None: Ray's own default: RAY_ADDRESS,
    else a cluster `ray start` began on this machine, else a new local one), joined now so that
    a missing Ray or an unreachable cluster is one line (ValueError) before DIR is touched."""
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    address = options.get("address")
    connected_here = not ray.is_initialized()
    if connected_here:
        _connect(address)

    def engine(specs: Iterator[SampleSpec], jobs: int, stop: threading.Event) -> Iterator[SampleResult]:
        return _run_on_ray(specs, jobs, stop, connected_here)

    return engine


def _connect(address: str | None) -> None:
    """Join the cluster quietly (no Ray log lines; the workers' output stays in the cluster's logs),
    after checking that its port answers: `ray.init` would retry a dead address for minutes."""
    import ray

    shown = address or os.environ.get("RAY_ADDRESS") or "this machine"
    _check_reachable(address or os.environ.get("RAY_ADDRESS"))
    try:
        if address is None:  # perhaps a new local Ray: its notices (token authentication) are noise here
            ray.init(log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as error:
        raise ValueError(one_line(f"cannot join the Ray cluster at {shown}: {error}")) from None


def _check_reachable(address: str | None) -> None:
    """ValueError when `address` is host:port and nothing answers there (other forms are Ray's to read)."""
    if not address or "://" in address or address in ("auto", "local"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address {address!r} is not HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ValueError(
            f"cannot reach the Ray cluster at {address} ({reason}): start one with `ray start --head`, "
            "or give its address with --ray-address"
        ) from None


@attrs.frozen
class _Key:
    """The API key as a task argument: its repr hides it (Ray and tracebacks may show arguments)."""

    value: str | None = attrs.field(repr=False)


@attrs.frozen
class _Shipped:
    """What a task gets besides its key and workspace: the spec, keyless, and the sandbox the
    driver has (a worker without it refuses the sample rather than run it unsandboxed)."""

    spec: SampleSpec
    sandbox: str


def _run_on_ray(
    specs: Iterator[SampleSpec], jobs: int, stop: threading.Event, connected_here: bool
) -> Iterator[SampleResult]:
    """Keep up to `jobs` tasks in flight; when done or stopped, cancel the rest and, when the
    engine joined the cluster itself, leave it."""
    import ray

    remote = ray.remote(_run_shipped).options(num_cpus=1)
    workspaces = _Workspaces()
    sandbox: str | None = None
    pending: dict[Any, SampleSpec] = {}

    def submit(spec: SampleSpec) -> None:
        nonlocal sandbox
        if sandbox is None:
            sandbox = _sandbox_mode(spec)
        try:
            workspace = workspaces.ref(spec)
        except OSError as error:  # the folder changed under the run: this sample's error row
            failed = error_result(spec, f"the sample could not run: its workspace: {error}")
            pending[ray.put(failed)] = spec
            return
        keyless = attrs.evolve(spec, settings=attrs.evolve(spec.settings, api_key=None))
        pending[remote.remote(_Shipped(keyless, sandbox), _Key(spec.settings.api_key), workspace)] = spec

    try:
        for spec in itertools.islice(specs, jobs):
            submit(spec)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            if not done:
                continue
            spec = pending.pop(done[0])
            yield _result(done[0], spec)
            following = None if stop.is_set() else next(specs, None)
            if following is not None:
                submit(following)
    finally:
        stop.set()
        for ref in pending:
            ray.cancel(ref)
        if pending:  # each ends at its next step, or is left after STOP_GRACE (as local runs do)
            ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE + 1.0)
        pending.clear()
        workspaces.clear()
        if connected_here:
            ray.shutdown()


def _result(ref: Any, spec: SampleSpec) -> SampleResult:
    """The task's result; a task Ray could not run (its worker or node died) is an error row."""
    import ray

    try:
        result = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return SampleResult(None)
    except ray.exceptions.RayError as error:
        return error_result(spec, f"the Ray task failed: {type(error).__name__}: {error}")
    assert isinstance(result, SampleResult)
    return result


def _sandbox_mode(spec: SampleSpec) -> str:
    """The sandbox the samples get on this machine (the one DIR's manifest names), or "off"."""
    with tempfile.TemporaryDirectory(prefix="nano-code-probe-") as folder:
        box, _ = choose_sandbox(spec.settings.sandbox, spec.settings.sandbox_network, Path(folder))
    return box.mode.value if box is not None else "off"


class _Workspaces:
    """Each task's workspace folder as a tar in the object store, put once and shared by its samples."""

    def __init__(self) -> None:
        self.refs: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.size = 0

    def ref(self, spec: SampleSpec) -> Any:
        import ray

        folder = spec.task.workspace
        if folder is None:
            return None
        if folder in self.refs:
            self.refs.move_to_end(folder)
            return self.refs[folder][0]
        data = pack(Path(folder))
        while self.refs and self.size + len(data) > WORKSPACE_CACHE_BYTES:
            _, (_, size) = self.refs.popitem(last=False)
            self.size -= size
        self.refs[folder] = (ray.put(data), len(data))
        self.size += len(data)
        return self.refs[folder][0]

    def clear(self) -> None:
        self.refs.clear()
        self.size = 0


def pack(folder: Path) -> bytes:
    """`folder`'s content as an uncompressed tar (symbolic links kept as links, as a local copy keeps them)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Lay out `pack`'s tar in `folder`, owned by this worker's user. The archive is the driver's,
    which already runs its code here, so it is trusted as it is (links included)."""

    def owned_here(member: tarfile.TarInfo, _: str) -> tarfile.TarInfo:
        return member.replace(uid=None, gid=None, uname=None, gname=None, deep=False)  # type: ignore[arg-type]

    folder.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(folder, filter=owned_here)


def _run_shipped(shipped: _Shipped, key: _Key, workspace: bytes | None) -> SampleResult:
    """On a worker: the sample, in a thread, so that `ray.cancel` (a KeyboardInterrupt here, seen
    only between bytecodes) stops it at its next step as a local run's `stop` does; what its
    commands left running is ended before the worker takes another task. The wait is on an
    Event: an interrupted `Thread.join` takes a running thread for ended (CPython 3.11)."""
    stop, finished = threading.Event(), threading.Event()
    results: list[SampleResult] = []

    def sample() -> None:
        try:
            results.append(_sample_here(shipped, key, workspace, stop))
        finally:
            finished.set()

    name = f"nano-code-eval {shipped.spec.task.id} {shipped.spec.epoch}"
    threading.Thread(target=sample, name=name, daemon=True).start()
    try:
        while not finished.wait(WAIT_SECONDS):
            pass
    except KeyboardInterrupt:
        stop.set()
        finished.wait(STOP_GRACE)
        raise
    finally:
        kill_left_running()
    if not results:
        raise RuntimeError("the sample's thread ended without a result")
    return results[0]


def _sample_here(
    shipped: _Shipped, key: _Key, workspace: bytes | None, stop: threading.Event
) -> SampleResult:
    """`run_sample` in a copy of the shipped workspace with the key put back; a bug in it is an error row."""
    spec = shipped.spec
    scratch = Path(tempfile.mkdtemp(prefix="nano-code-ray-"))
    try:
        task = spec.task
        if workspace is not None:
            unpack(workspace, scratch / "workspace")
            task = attrs.evolve(task, workspace=str(scratch / "workspace"))
        spec = attrs.evolve(spec, task=task, settings=attrs.evolve(spec.settings, api_key=key.value))
        missing = _sandbox_missing(spec, shipped.sandbox, scratch)
        if missing is not None:
            return error_result(spec, missing)
        return run_sample(spec, stop)
    except Exception as error:
        text = Redactor(key.value).scrub(f"internal error: {type(error).__name__}: {error}")
        return error_result(spec, text)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sandbox_missing(spec: SampleSpec, expected: str, scratch: Path) -> str | None:
    """Why this worker cannot give the sample the sandbox the driver has (DIR's manifest names it),
    or None when it can."""
    try:
        box, notice = choose_sandbox(spec.settings.sandbox, spec.settings.sandbox_network, scratch)
    except SandboxUnavailable as error:
        return one_line(f"the sample could not run on {socket.gethostname()}: {error}")
    here = box.mode.value if box is not None else "off"
    if here == expected:
        return None
    why = f" ({notice})" if notice else ""
    return one_line(
        f"the worker {socket.gethostname()} has sandbox {here}{why} where the driver has {expected}: "
        "give the driver and every worker bubblewrap, or run with --sandbox off"
    )
