"""The workdir lock on its own: a live holder refuses a second start, a stale lock (its process
gone on this host, no heartbeat from another host, a reused pid, an unreadable file) is taken over
with one line saying so, and the holder's heartbeat is refreshed while it runs."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from motion_clip_jax.train import workdir_lock


def _plant(workdir, **fields) -> dict:
    """Writes a lock file as another trainer would have; returns its fields."""
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": "2026-12-06T10:00:00+00:00",
        "heartbeat": time.time(),
        "token": "someone-else",
        "process_start": workdir_lock.process_start(os.getpid()),
        **fields,
    }
    (workdir / workdir_lock.LOCK_FILE).write_text(json.dumps(holder))
    return holder


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _lock(workdir, lines, **kwargs):
    return workdir_lock.WorkdirLock(str(workdir), lines.append, **kwargs)


def _holder(workdir) -> dict:
    return json.loads((workdir / workdir_lock.LOCK_FILE).read_text())


def test_a_live_holder_refuses_and_release_frees(tmp_path):
    lines = []
    first = _lock(tmp_path, lines)
    first.acquire()
    assert _holder(tmp_path)["pid"] == os.getpid()
    with pytest.raises(workdir_lock.WorkdirLockedError) as refused:
        _lock(tmp_path, lines).acquire()
    message = str(refused.value)
    for part in (f"host {socket.gethostname()}", f"pid {os.getpid()}", "started 20", "--workdir"):
        assert part in message, (part, message)
    assert _holder(tmp_path)["token"] == first.holder.token  # the refused start changed nothing
    first.release()
    assert not (tmp_path / workdir_lock.LOCK_FILE).exists()
    second = _lock(tmp_path, lines)
    second.acquire()
    second.release()
    assert lines == []


@pytest.mark.parametrize(
    "fields,reason",
    [
        (lambda: {"pid": _gone_pid()}, "is gone"),
        (lambda: {"process_start": "1"}, "now belongs to another process"),
        (lambda: {"host": "elsewhere", "heartbeat": time.time() - 700}, "no heartbeat from host"),
    ],
)
def test_a_stale_lock_is_taken_over_with_one_line(tmp_path, fields, reason):
    planted = _plant(tmp_path, **fields())
    lines = []
    lock = _lock(tmp_path, lines)
    lock.acquire()
    try:
        assert len(lines) == 1 and "took over" in lines[0] and reason in lines[0], lines
        assert f"pid {planted['pid']}" in lines[0] and f"host {planted['host']}" in lines[0]
        assert _holder(tmp_path)["token"] == lock.holder.token
    finally:
        lock.release()


def test_another_hosts_lock_with_a_recent_heartbeat_is_respected(tmp_path):
    _plant(tmp_path, host="elsewhere", pid=1, heartbeat=time.time() - 60)
    with pytest.raises(workdir_lock.WorkdirLockedError, match="host elsewhere, pid 1, started"):
        _lock(tmp_path, []).acquire()


def test_an_unreadable_lock_is_taken_over(tmp_path):
    (tmp_path / workdir_lock.LOCK_FILE).write_bytes(b"\x00garbage")
    lines = []
    lock = _lock(tmp_path, lines)
    lock.acquire()
    lock.release()
    assert len(lines) == 1 and "not a readable lock" in lines[0] and "taken over" in lines[0]


def test_the_heartbeat_is_refreshed_and_stops_when_the_lock_is_taken(tmp_path):
    lines = []
    lock = _lock(tmp_path, lines, heartbeat_seconds=0.05)
    lock.acquire()
    first = _holder(tmp_path)["heartbeat"]
    time.sleep(0.5)
    assert _holder(tmp_path)["heartbeat"] > first
    taken = dataclasses.asdict(dataclasses.replace(lock.holder, token="other", host="elsewhere"))
    (tmp_path / workdir_lock.LOCK_FILE).write_text(json.dumps(taken))
    time.sleep(0.3)
    lock.release()  # not ours any more: left in place
    assert _holder(tmp_path)["token"] == "other"
    assert len(lines) == 1 and "was taken by host elsewhere" in lines[0], lines
