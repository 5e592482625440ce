"""Beyond one machine: multi-worker training (TF_CONFIG, chief-only writes) and local clusters.

Batch scoring and catalogue embedding on Apache Beam live in :mod:`semmatch_tf.batch`; the sharded
catalogue index in :mod:`semmatch_tf.retrieval.sharded`.
"""

from semmatch_tf.distributed.workers import (
    WorkerTask,
    is_chief,
    local_cluster,
    read_task,
    train_multi_worker,
    worker_output_dir,
)

__all__ = ["WorkerTask", "is_chief", "local_cluster", "read_task", "train_multi_worker", "worker_output_dir"]
