"""Multi-worker training with ``tf.distribute.MultiWorkerMirroredStrategy``: one process per machine.

Every worker runs the same ``semmatch-tf train`` command with its own ``TF_CONFIG``; the strategy
all-reduces the gradients, so every worker holds the same weights after every step. Only the
*chief* (task ``chief``, or ``worker`` 0 when the cluster names no chief) writes the run directory
(model, vocabulary, report, TensorBoard logs, ``checkpoints/``); every other worker runs the same
code on a private scratch directory (:func:`worker_output_dir`), as TensorFlow's multi-worker guide
prescribes, because the collective ops need every worker to take the same steps, saves included.

What a killed worker does (tested in ``tests/test_multi_worker.py``): the surviving workers' next
collective fails (TensorFlow's coordination service notices the missing heartbeat, or the peer's
closed connection) and their ``train`` raises, exit code non-zero; nothing half-written is left
in the run directory (its files are written atomically). Re-run the same command on every worker:
all resume from the chief's ``backup/`` (the last finished epoch; a non-chief copies it into its
scratch directory, :func:`follow_chief`, so the run directory must be on storage every worker can
read, as for Keras' BackupAndRestore) and end with the weights of an unkilled run. The scratch
directory of a non-chief is removed when its training finishes.

Examples:
    >>> from semmatch_tf.distributed import local_cluster, read_task
    >>> configs = local_cluster(2, ports=[20001, 20002])
    >>> read_task(configs[1]).index, read_task(configs[1]).is_chief
    (1, False)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Sequence

SCRATCH_ENV = "SEMMATCH_WORKER_SCRATCH"


@dataclasses.dataclass(frozen=True)
class WorkerTask:
    """This process's place in the cluster, read from ``TF_CONFIG``."""

    type: str
    index: int
    workers: int
    cluster_has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        return self.type == "chief" or (self.type == "worker" and self.index == 0 and not self.cluster_has_chief)


def read_task(tf_config: str | None = None) -> WorkerTask:
    """Parse ``TF_CONFIG`` (default: the environment's) into a :class:`WorkerTask`.

    A missing, malformed or inconsistent ``TF_CONFIG`` is a ValueError naming what is wrong.
    """
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    if not text:
        raise ValueError("TF_CONFIG is not set: multi-worker training needs it on every worker")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster, task = (value.get("cluster"), value.get("task")) if isinstance(value, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError("TF_CONFIG needs a 'cluster' object and a 'task' object")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if kind not in ("chief", "worker") or not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"TF_CONFIG task must be chief or worker with an integer index, got {task!r}")
    if not isinstance(members, list) or not 0 <= index < len(members):
        raise ValueError(f"TF_CONFIG task {kind}:{index} is not in cluster[{kind!r}] = {members!r}")
    workers = sum(len(cluster.get(name) or []) for name in ("chief", "worker"))
    return WorkerTask(kind, index, workers, cluster_has_chief=bool(cluster.get("chief")))


def is_chief(tf_config: str | None = None) -> bool:
    """True for the one process that writes the run directory; also True without ``TF_CONFIG``."""
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    return True if not text else read_task(text).is_chief


def worker_output_dir(run_dir: str | Path, tf_config: str | None = None) -> Path:
    """Where this worker writes: ``run_dir`` on the chief, a private scratch directory elsewhere.

    The scratch directory depends only on the run directory and the task, so a re-run after a kill
    finds the worker's own ``backup/`` again. It lies under ``$SEMMATCH_WORKER_SCRATCH`` (default:
    the system's temporary directory): put it on the worker's local disk.
    """
    run_dir = Path(run_dir)
    task = read_task(tf_config)
    if task.is_chief:
        return run_dir
    digest = hashlib.sha256(str(run_dir.resolve()).encode("utf-8")).hexdigest()[:12]
    root = Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir())
    return root / f"semmatch-worker-{task.type}-{task.index}-{digest}"


def train_multi_worker(config, run_dir: str | Path, *, verbose: int = 1, keep_scratch: bool = False) -> dict:
    """:func:`semmatch_tf.training.trainer.train` on one worker of a ``TF_CONFIG`` cluster.

    Creates the process's MultiWorkerMirroredStrategy first (TensorFlow allows it only before any
    other op), trains into :func:`worker_output_dir` and, on a non-chief worker, removes that
    scratch directory once training finished (``keep_scratch``: leave it, e.g. to compare a
    worker's weights with the chief's). ``config.training.distribution`` must be ``multi_worker``.
    Returns the test report (computed on every worker, written by the chief).
    """
    from semmatch_tf.training.runtime import multi_worker_strategy

    if config.training.distribution != "multi_worker":
        raise ValueError("train_multi_worker needs training.distribution: multi_worker, got "
                         f"{config.training.distribution!r}")
    output = worker_output_dir(run_dir)
    multi_worker_strategy()
    if Path(output) != Path(run_dir):
        follow_chief(run_dir, output)
    from semmatch_tf.training.trainer import train

    report = train(config, output, verbose=verbose)
    if Path(output) != Path(run_dir) and not keep_scratch:
        shutil.rmtree(output, ignore_errors=True)
    return report


def follow_chief(run_dir: str | Path, scratch: str | Path) -> None:
    """Make a non-chief's scratch directory start where the chief starts.

    Every worker must resume from the same epoch, or one finishes while the other waits in a
    collective (``Collective ops is aborted by: Socket closed``). A worker's own backup may be an
    epoch behind the chief's (killed between the two writes), so when the chief's run directory
    holds a resume state (``backup/``), the scratch directory becomes a copy of it (the weights and
    optimizer state are the same on every worker); when it holds none, the scratch directory is
    emptied and the worker starts afresh with the chief. The run directory must therefore be on
    storage every worker can read to resume (as Keras' BackupAndRestore needs in a cluster).
    """
    run_dir, scratch = Path(run_dir), Path(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    if (run_dir / "backup").is_dir():
        shutil.copytree(run_dir, scratch, ignore=shutil.ignore_patterns("run.lock", ".tmp*"))


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now (for a local cluster)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_cluster(workers: int, *, ports: Sequence[int] | None = None) -> list[str]:
    """One ``TF_CONFIG`` per worker of a cluster on this machine (127.0.0.1), worker 0 the chief.

    On N machines, write the same ``cluster`` with their host:port addresses and give each machine
    its own ``task.index``.
    """
    if workers < 1:
        raise ValueError(f"a cluster needs at least one worker, got {workers}")
    ports = list(ports) if ports is not None else free_ports(workers)
    if len(ports) != workers:
        raise ValueError(f"{workers} workers need {workers} ports, got {len(ports)}")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]
