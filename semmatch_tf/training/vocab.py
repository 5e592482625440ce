"""The vocabulary of a run: what it is learned from, and writing it once / checking it on a resume.

Shared by the cross-encoder trainer (:mod:`semmatch_tf.training.trainer`) and the bi-encoder
trainer (:mod:`semmatch_tf.training.contrastive`); it imports neither.
"""

from __future__ import annotations

from pathlib import Path

from semmatch_tf import runs
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.text.vocabulary import load_vocabulary, vocabulary_hash


def training_texts(dataset: PairDataset) -> list[str]:
    """The distinct queries and product texts of a split: what a vocabulary is learned from."""
    frame = dataset.frame
    return frame["query"].drop_duplicates().tolist() + frame["product"].drop_duplicates().tolist()


def settle_vocabulary(run_dir: Path, vocabulary: list[str], *, resuming: bool | None = None) -> list[str]:
    """Write the run's ``vocabulary.txt`` once, before the first epoch; on a resume, check it.

    A run is resuming when ``run_dir/backup`` exists (unless ``resuming`` says). Then the saved file is the only vocabulary
    the run can use: the backed-up weights are indexed by its token ids. Rather than quietly load
    it, the vocabulary built again (re-learned from the split, or the checkpoint's) must equal it,
    else this raises: a difference means the training data, the text settings or the learner
    changed since the kill, and the resumed run would be another run under the same name (with
    ids that no longer mean what the weights learned). Learning is deterministic, so an unchanged
    run always passes.
    """
    path = run_dir / runs.VOCABULARY
    if not (resuming if resuming is not None else (run_dir / "backup").exists()):
        runs.atomic_write_text(path, "".join(f"{token}\n" for token in vocabulary))
        return vocabulary
    if not path.is_file():
        raise ValueError(f"{run_dir} holds an interrupted run but no {runs.VOCABULARY}: "
                         f"delete {run_dir / 'backup'} to start afresh")
    saved = load_vocabulary(path)
    if saved != list(vocabulary):
        raise ValueError(f"cannot resume {run_dir}: its {runs.VOCABULARY} ({vocabulary_hash(saved)[:12]}) differs from "
                         f"the vocabulary built again now ({vocabulary_hash(vocabulary)[:12]}), so the training data "
                         f"or text settings changed; delete {run_dir / 'backup'} to start afresh")
    return saved
