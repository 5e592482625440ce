"""Multi-worker training: two worker processes on 127.0.0.1 with TF_CONFIG (MultiWorkerMirroredStrategy).

Each case starts two real ``semmatch-tf``-equivalent worker processes (``train_multi_worker``, the
function ``semmatch-tf train`` calls for ``distribution: multi_worker``) and checks what the
README promises: identical weights on both workers, only the chief writes the run directory, and a
killed worker fails the job, after which the same command resumes it to the unkilled result.
Tiny models, a few steps; every process has a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO

BILSTM = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 600},
    "text": {"vocab_size": 500, "min_frequency": 1, "query_length": 8, "product_length": 16},
    "model": {"family": "bilstm", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16, "dropout": 0.1},
    "training": {"epochs": 3, "batch_size": 64, "optimizer": "adam", "learning_rate": 0.005,
                 "early_stopping_patience": None, "seed": 5, "distribution": "multi_worker"},
}
BERT = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 240},
    "text": {"vocab_size": 500, "min_frequency": 1},
    "model": {"family": "bert", "bert": {"size": "tiny", "sequence_length": 24}},
    "training": {"epochs": 1, "batch_size": 32, "optimizer": "adamw", "learning_rate": 1e-3,
                 "early_stopping_patience": None, "seed": 5, "distribution": "multi_worker"},
}

# One worker: train, then write a digest of its weights where the test can read it.
WORKER = """
import json, sys
from semmatch_tf.distributed import train_multi_worker, worker_output_dir
from semmatch_tf.training.config_files import load_config
config = load_config(sys.argv[1])
report = train_multi_worker(config, sys.argv[2], verbose=0, keep_scratch=True)
print("OUTPUT", worker_output_dir(sys.argv[2]), flush=True)
"""
WORKER_TIMEOUT = 600  # per two-worker run; ~1-2 min on an idle 2-core machine, several when it is shared


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_workers(tmp: Path, config: Path, run_dir: Path, count: int = 2) -> list[subprocess.Popen]:
    from semmatch_tf.distributed import local_cluster

    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    processes = []
    for index, tf_config in enumerate(local_cluster(count)):
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
               "SEMMATCH_WORKER_SCRATCH": str(scratch), "CUDA_VISIBLE_DEVICES": ""}
        log = open(tmp / f"worker{index}.log", "w", encoding="utf-8")
        processes.append(subprocess.Popen([sys.executable, "-c", WORKER, str(config), str(run_dir)], cwd=REPO,
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def wait_all(processes: list[subprocess.Popen], timeout: float = WORKER_TIMEOUT) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
    return codes


def logs(tmp: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8")[-3000:] for p in sorted(tmp.glob("worker*.log")))


def outputs(tmp: Path) -> list[Path]:
    found = []
    for path in sorted(tmp.glob("worker*.log")):
        lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.startswith("OUTPUT ")]
        found.append(Path(lines[-1].split(" ", 1)[1]))
    return found


def weights(run_dir: Path) -> list[np.ndarray]:
    """Every weight array saved in ``run_dir/model.keras``, read from the file itself (h5py)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        data = archive.read("model.weights.h5")
    arrays = []
    with h5py.File(io.BytesIO(data), "r") as weights_file:
        weights_file.visititems(lambda name, item: arrays.append((name, np.asarray(item)))
                                if isinstance(item, h5py.Dataset) else None)
    return [array for _, array in sorted(arrays, key=lambda pair: pair[0])]


def train_two_workers(tmp: Path, config: dict) -> tuple[Path, list[Path]]:
    config_path = write_config(tmp / "config.yaml", config)
    run_dir = tmp / "run"
    processes = start_workers(tmp, config_path, run_dir)
    codes = wait_all(processes)
    assert codes == [0, 0], logs(tmp)
    return run_dir, outputs(tmp)


@pytest.fixture(scope="module")
def bilstm_pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mw_bilstm")
    started = time.monotonic()
    run_dir, dirs = train_two_workers(tmp, BILSTM)
    return tmp, run_dir, dirs, time.monotonic() - started


# -- TF_CONFIG handling (no TensorFlow) -------------------------------------------------------------
def test_tf_config_is_read_and_checked():
    from semmatch_tf.distributed import is_chief, local_cluster, read_task, worker_output_dir

    chief, worker = local_cluster(2, ports=[20001, 20002])
    assert read_task(chief).is_chief and not read_task(worker).is_chief and read_task(worker).workers == 2
    assert is_chief(chief) and not is_chief(worker)
    named = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}})
    assert not read_task(named).is_chief, "worker 0 is not the chief when the cluster names one"
    assert worker_output_dir("/runs/x", chief) == Path("/runs/x")
    scratch = worker_output_dir("/runs/x", worker)
    assert scratch != Path("/runs/x") and scratch == worker_output_dir("/runs/x", worker), "stable across re-runs"
    for bad, message in (("{", "not valid JSON"), ('{"cluster": {}}', "'task'"),
                         (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
                          "not in cluster")):
        with pytest.raises(ValueError, match=message):
            read_task(bad)


# -- two real workers -------------------------------------------------------------------------------
def test_two_bilstm_workers_hold_identical_weights_and_only_the_chief_writes(bilstm_pair):
    tmp, run_dir, (chief_dir, worker_dir), seconds = bilstm_pair
    assert chief_dir == run_dir and worker_dir.parent == tmp / "scratch"
    chief, worker = weights(run_dir), weights(worker_dir)
    assert len(chief) == len(worker) > 5
    for a, b in zip(chief, worker):
        np.testing.assert_array_equal(a, b)  # all-reduced gradients: bit-identical on both workers
    assert sum(float(np.abs(w).sum()) for w in chief) > 0
    # the chief's run directory is complete; nothing else was written outside the worker's scratch
    for name in ("model.keras", "vocabulary.txt", "report.json", "history.json", "checkpoints/best.weights.h5"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "backup").exists()
    assert sorted(p.name for p in tmp.iterdir()) == ["config.yaml", "run", "scratch", "worker0.log", "worker1.log"]
    assert [p.name for p in (tmp / "scratch").iterdir()] == [worker_dir.name]
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 3 and history["loss"][-1] < history["loss"][0]
    assert seconds < WORKER_TIMEOUT


@pytest.mark.slow  # ~40 s: the BiLSTM two-worker test covers the strategy in the default run
def test_two_tiny_bert_workers_hold_identical_weights(tmp_path):
    run_dir, (chief_dir, worker_dir) = train_two_workers(tmp_path, BERT)
    chief, worker = weights(run_dir), weights(worker_dir)
    assert len(chief) == len(worker) > 20
    for a, b in zip(chief, worker):
        np.testing.assert_array_equal(a, b)
    assert (run_dir / "model.keras").is_file() and not any((tmp_path / "scratch").glob("*/checkpoints/../run.lock"))


@pytest.mark.slow  # ~1.5 min: two workers, a kill and a resume; two-worker training itself stays in the default run
def test_a_killed_worker_fails_the_job_and_the_same_command_resumes_it(tmp_path, bilstm_pair):
    """kill -9 of worker 1 after the first epoch: worker 0 fails (non-zero exit, bounded time);
    re-running both resumes from their backups and ends with the unkilled run's weights."""
    config_path = write_config(tmp_path / "config.yaml", BILSTM)
    run_dir = tmp_path / "run"
    processes = start_workers(tmp_path, config_path, run_dir)
    history = run_dir / "history.csv"
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline and processes[1].poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:  # header + epoch 1
            break
        time.sleep(0.2)
    assert processes[1].poll() is None, "worker 1 finished before it could be killed: " + logs(tmp_path)
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    code = processes[0].wait(timeout=WORKER_TIMEOUT)
    failed_after = time.monotonic() - killed_at
    processes[1].wait()
    assert code != 0, "the surviving worker must fail, not hang or finish alone"
    assert not (run_dir / "model.keras").exists() and (run_dir / "backup").is_dir()

    for log in tmp_path.glob("worker*.log"):
        log.rename(log.with_suffix(".killed"))
    codes = wait_all(start_workers(tmp_path, config_path, run_dir))
    assert codes == [0, 0], logs(tmp_path)
    chief_dir, worker_dir = outputs(tmp_path)
    _, unkilled_run, _, _ = bilstm_pair
    for resumed, again, unkilled in zip(weights(chief_dir), weights(worker_dir), weights(unkilled_run)):
        np.testing.assert_array_equal(resumed, again)
        np.testing.assert_allclose(resumed, unkilled, rtol=0, atol=1e-6)
    print(f"surviving worker failed {failed_after:.1f} s after the kill")
