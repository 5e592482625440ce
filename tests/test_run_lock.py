"""run.lock: one training process per run directory; stale locks are taken over, live ones refused."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from semmatch_tf.training.run_lock import LOCK_NAME, RunDirectoryLocked, acquire, release, run_lock


def write_lock(directory, **fields):
    record = {"hostname": socket.gethostname(), "pid": os.getpid(), "started": "earlier",
              "started_unix": time.time(), "token": "theirs", **fields}
    (directory / LOCK_NAME).write_text(json.dumps(record), encoding="utf-8")
    return record


@pytest.fixture
def live_process():
    """Another process that is running (started before any lock the test writes)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(0.05)
    yield process
    process.kill()
    process.wait()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_holds_owner_json_and_is_released_in_finally(tmp_path):
    with pytest.raises(KeyError):
        with run_lock(tmp_path) as owner:
            record = json.loads((tmp_path / LOCK_NAME).read_text())
            assert record == owner and record["pid"] == os.getpid()
            assert record["hostname"] == socket.gethostname() and record["started"]
            raise KeyError("training failed")
    assert not (tmp_path / LOCK_NAME).exists(), "released although the body raised"


def test_a_live_owner_is_refused_with_a_one_line_error_naming_it(tmp_path, live_process):
    write_lock(tmp_path, pid=live_process.pid, started="2030-01-01T00:00:00+00:00")
    with pytest.raises(RunDirectoryLocked, match=f"in use by pid {live_process.pid} on {socket.gethostname()}") as error:
        acquire(tmp_path / LOCK_NAME)
    assert "\n" not in str(error.value) and isinstance(error.value, ValueError)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == "theirs", "the live lock is left alone"


def test_this_process_holding_the_lock_is_not_stolen_by_a_nested_use(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunDirectoryLocked):
            acquire(tmp_path / LOCK_NAME)
        assert (tmp_path / LOCK_NAME).exists()


def test_a_dead_owner_on_this_host_is_taken_over_with_a_warning(tmp_path, caplog):
    pid = dead_pid()
    write_lock(tmp_path, pid=pid)
    with caplog.at_level(logging.WARNING, logger="semmatch_tf.training.run_lock"):
        with run_lock(tmp_path) as owner:
            assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == owner["token"]
    assert f"pid {pid} on this host is not running" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_reused_pid_is_stale_when_that_process_started_after_the_lock(tmp_path, live_process):
    """A restarted container gives the new process the dead one's pid: the pid is alive, but the
    process behind it is younger than the lock."""
    write_lock(tmp_path, pid=live_process.pid, started_unix=time.time() - 3600)
    with run_lock(tmp_path) as owner:
        assert owner["pid"] == os.getpid()


def test_other_hosts_and_fresh_torn_locks_are_refused_old_torn_ones_taken_over(tmp_path):
    write_lock(tmp_path, hostname="another-machine", pid=dead_pid())
    with pytest.raises(RunDirectoryLocked, match="another-machine"):
        acquire(tmp_path / LOCK_NAME)
    (tmp_path / LOCK_NAME).write_text("")  # created, its owner not written yet
    with pytest.raises(RunDirectoryLocked, match="still being written"):
        acquire(tmp_path / LOCK_NAME)
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / LOCK_NAME, (an_hour_ago, an_hour_ago))  # its creator died mid-write
    owner = acquire(tmp_path / LOCK_NAME)
    release(tmp_path / LOCK_NAME, owner)
    assert not (tmp_path / LOCK_NAME).exists()


def test_release_leaves_a_lock_that_another_process_took_over(tmp_path):
    owner = acquire(tmp_path / LOCK_NAME)
    write_lock(tmp_path, token="someone-else")
    release(tmp_path / LOCK_NAME, owner)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == "someone-else"


def test_train_and_train_bi_encoder_refuse_a_locked_run_directory_before_any_work(tmp_path, live_process):
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.contrastive import train_bi_encoder
    from semmatch_tf.training.trainer import train

    write_lock(tmp_path, pid=live_process.pid)
    config = RunConfig.from_dict({"data": {"format": "demo"}})
    with pytest.raises(RunDirectoryLocked, match=str(live_process.pid)):
        train(config, tmp_path, verbose=0)
    with pytest.raises(RunDirectoryLocked, match=str(live_process.pid)):
        train_bi_encoder(config, tmp_path, (None, None, None), verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME], "nothing was written"
