"""One trainer per workdir: a lock file taken at start, refreshed while training, released at exit.

`<workdir>/trainer.lock` holds its holder as JSON: host, pid, start time, a heartbeat (the
holder's clock, refreshed every `HEARTBEAT_SECONDS` by a daemon thread) and a token. A start that
finds the lock held refuses (WorkdirLockedError, naming the holder). A lock whose holder is gone is
stale and taken over, with one line saying so:
  - same host: the holder's process is gone (or its pid now belongs to a younger process);
  - another host: no heartbeat for `STALE_SECONDS` (the host crashed, was preempted, or lost the
    file system); a live holder refreshes far more often.
Every change of the lock file happens under a short-lived mutex (`trainer.lock.mutex`, created
with O_EXCL, so two starters never both take over), and is written whole (temp file + rename).
In a multi-host run process 0 holds the lock and broadcasts its decision (`hold_for_run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

LOCK_FILE = "trainer.lock"
HEARTBEAT_SECONDS = 60.0
STALE_SECONDS = 600.0  # another host's lock without a heartbeat for this long is stale
MUTEX_WAIT_SECONDS = 10.0
MUTEX_STALE_SECONDS = 30.0  # a mutex is held for milliseconds; one this old was left by a crash


class WorkdirLockedError(ValueError):
    """Another trainer holds the workdir (or held it and its lock cannot be read or replaced)."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lock. `process_start`: the kernel's start time of the pid (Linux), which tells
    a live holder from a later process that reuses its pid."""

    host: str
    pid: int
    started: str  # UTC, ISO 8601
    heartbeat: float  # time.time() of the holder's last refresh
    token: str
    process_start: str = ""

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}"


def process_start(pid: int) -> str:
    """The start time of process `pid` in clock ticks since boot ('' if unknown or gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def stale_reason(holder: Holder, now: float, stale_seconds: float = STALE_SECONDS) -> str:
    """Why `holder`'s lock is stale ('' while its holder may still be training)."""
    if holder.host == socket.gethostname():
        if not _pid_running(holder.pid):
            return f"its process {holder.pid} is gone"
        if holder.process_start and process_start(holder.pid) not in ("", holder.process_start):
            return f"pid {holder.pid} now belongs to another process"
        return ""
    silent = now - holder.heartbeat
    if silent > stale_seconds:
        return f"no heartbeat from host {holder.host} for {silent:.0f} s (> {stale_seconds:.0f} s)"
    return ""


def read_holder(path: str) -> Holder | None:
    """The lock's holder; None if there is no lock; ValueError if the file is not a lock."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return Holder(**data)
    except FileNotFoundError:
        return None
    except (OSError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a readable lock ({type(e).__name__})") from None


def _write_holder(path: str, holder: Holder) -> None:
    tmp = f"{path}.tmp-{holder.token}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(holder), f)
    os.replace(tmp, path)


@contextlib.contextmanager
def _mutex(path: str) -> Iterator[None]:
    """Exclusive for the few milliseconds of a lock change (O_EXCL create, removed after)."""
    mutex = f"{path}.mutex"
    deadline = time.time() + MUTEX_WAIT_SECONDS
    while True:
        try:
            os.close(os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - os.path.getmtime(mutex) > MUTEX_STALE_SECONDS:
                    os.remove(mutex)
                    continue
            if time.time() > deadline:
                raise WorkdirLockedError(
                    f"{mutex} stayed for {MUTEX_WAIT_SECONDS:.0f} s: another start is taking the "
                    "workdir lock"
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(mutex)


class WorkdirLock:
    """The lock of one workdir, for this process (see the module docstring)."""

    def __init__(
        self,
        workdir: str,
        log: Callable[[str], None] = print,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_seconds: float = STALE_SECONDS,
    ):
        self.path = os.path.join(workdir, LOCK_FILE)
        self.workdir = workdir
        self._log = log
        self._heartbeat_seconds = heartbeat_seconds
        self._stale_seconds = stale_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holder = Holder(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            heartbeat=time.time(),
            token=uuid.uuid4().hex,
            process_start=process_start(os.getpid()),
        )

    def acquire(self) -> None:
        """Takes the lock (a stale one is taken over, logged) and starts the heartbeat;
        WorkdirLockedError naming the holder if a live trainer holds it."""
        with _mutex(self.path):
            try:
                current = read_holder(self.path)
                reason = (
                    ""
                    if current is None
                    else stale_reason(current, time.time(), self._stale_seconds)
                )
            except ValueError as e:
                current, reason = None, str(e)
                self._log(f"workdir lock: {reason}; taken over")
            if current is not None and not reason:
                raise WorkdirLockedError(
                    f"workdir {self.workdir} is in use by another trainer ({current.describe()}; "
                    f"lock {self.path}). Wait for it to end or stop it, or use another --workdir; "
                    "a lock whose trainer is gone is taken over by the next start."
                )
            if current is not None:
                self._log(
                    f"workdir lock: took over {self.path} from {current.describe()}: {reason}"
                )
            _write_holder(self.path, self.holder)
        self._thread = threading.Thread(target=self._beat, name="workdir-lock", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            try:
                with _mutex(self.path):
                    current = read_holder(self.path)
                    if current is None or current.token != self.holder.token:
                        self._log(
                            f"WARNING: workdir lock {self.path} was taken by "
                            f"{current.describe() if current else 'nobody (removed)'}"
                        )
                        return
                    self.holder = dataclasses.replace(self.holder, heartbeat=time.time())
                    _write_holder(self.path, self.holder)
            except (OSError, ValueError) as e:  # a full disk, say: try again at the next beat
                self._log(f"WARNING: workdir lock heartbeat failed: {e}")

    def release(self) -> None:
        """Stops the heartbeat and removes the lock if this process still holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(OSError, ValueError), _mutex(self.path):
            current = read_holder(self.path)
            if current is not None and current.token == self.holder.token:
                os.remove(self.path)


def _has_results(workdir: str) -> bool:
    """Whether a failed start left anything worth keeping: a checkpoint or logged metrics."""
    checkpoints = os.path.join(workdir, "checkpoints")
    return os.path.exists(os.path.join(workdir, "metrics.jsonl")) or (
        os.path.isdir(checkpoints) and any(n.isdigit() for n in os.listdir(checkpoints))
    )


@contextlib.contextmanager
def hold_for_run(workdir: str, log: Callable[[str], None] = print) -> Iterator[None]:
    """Creates `workdir` if needed and holds its lock for the block (process 0 takes it; in a
    multi-host run every process gets its decision, so all refuse or all go on). A block that fails
    in a workdir this start created, before any checkpoint or metric was written, removes it."""
    import jax  # here: the lock itself is stdlib
    import numpy as np
    from jax.experimental import multihost_utils

    created = not os.path.isdir(workdir)
    lock, refusal = None, ""
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        lock = WorkdirLock(workdir, log)
        try:
            lock.acquire()
        except WorkdirLockedError as e:
            lock, refusal = None, str(e)
    if jax.process_count() > 1:
        encoded = np.frombuffer(refusal.encode()[:2048].ljust(2048, b"\0"), np.uint8)
        decided = multihost_utils.broadcast_one_to_all(encoded)
        refusal = bytes(np.asarray(decided, np.uint8)).rstrip(b"\0").decode(errors="replace")
    if refusal:
        raise WorkdirLockedError(refusal)
    ok = False
    try:
        yield
        ok = True
    finally:
        if lock is not None:
            lock.release()
            if not ok and created and not _has_results(workdir):
                shutil.rmtree(workdir, ignore_errors=True)
