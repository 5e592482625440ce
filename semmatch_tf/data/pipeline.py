"""tf.data pipelines from judged pairs to batches of token ids, tokenized inside the graph.

The order of operations is chosen for speed on small CPUs: tokenise once, ``cache`` the ids (the
expensive regex and WordPiece work then runs only in the first epoch), shuffle the cached ids,
batch, optionally augment, prefetch. Training batches use ``drop_remainder`` because a partial last
batch has a new static shape and re-traces the LSTM (about 15 s on this CPU).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np
import tensorflow as tf

from semmatch_tf.data.padding import trim_packed_padding
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.text.preprocessor import PairPreprocessor
from semmatch_tf.text.vocabulary import SPECIAL_TOKENS, UNK

Target = Literal["class", "grade"]


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How to batch pairs.

    Attributes:
        batch_size: pairs per batch.
        target: "class" yields integer class ids (softmax head); "grade" yields grades mapped onto
            [0, 1] (graded sigmoid head).
        shuffle: shuffle each epoch (training).
        drop_remainder: drop the last partial batch (training; avoids a re-trace).
        cache: keep tokenised ids in memory after the first pass.
        token_dropout: augmentation; probability of replacing each real token with [UNK] (training).
        length_buckets: if given, batch products of similar length together and pad each batch only
            to its bucket's bound, and queries to the batch's longest rounded up to 4 tokens (fewer
            padded LSTM steps; the BiLSTM masks padding, so outputs do not change); otherwise pad
            to the fixed lengths.
        seed: shuffle and augmentation seed.
        trim_padding: for packed BERT inputs (``token_ids`` / ``segment_ids`` / ``padding_mask``),
            cut each batch to its longest sequence rounded up to a multiple of 8: attention cost
            grows with the padded length, and most product pairs are far shorter than the cap.
    """

    batch_size: int = 64
    target: Target = "class"
    shuffle: bool = False
    drop_remainder: bool = False
    cache: bool = True
    token_dropout: float = 0.0
    length_buckets: tuple[int, ...] | None = None
    seed: int = 0
    trim_padding: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.target not in ("class", "grade"):
            raise ValueError(f"target must be 'class' or 'grade', got {self.target!r}")
        if not 0.0 <= self.token_dropout < 1.0:
            raise ValueError(f"token_dropout must be in [0, 1), got {self.token_dropout}")


def targets_of(dataset: PairDataset, target: Target) -> np.ndarray:
    """The training target of each pair: class ids, or grades normalised onto [0, 1]."""
    if target == "class":
        return dataset.frame["label"].to_numpy(np.int32)
    return dataset.labels.normalise(dataset.frame["grade"].to_numpy()).astype(np.float32)


def string_dataset(dataset: PairDataset) -> tf.data.Dataset:
    """``{"query": str, "product": str}`` elements, one per pair, in frame order."""
    return tf.data.Dataset.from_tensor_slices({
        "query": dataset.frame["query"].to_numpy(dtype=str).astype(object),
        "product": dataset.frame["product"].to_numpy(dtype=str).astype(object),
    })


def make_dataset(dataset: PairDataset, preprocessor, options: PipelineOptions,
                 *, with_targets: bool = True, sample_weights: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of ``(features, target[, weight])`` for ``Model.fit``.

    ``preprocessor`` is any layer that maps ``{"query": strings, "product": strings}`` to a dict of
    fixed-shape tensors (the BiLSTM's :class:`PairPreprocessor`, a BERT pair packer, ...); length
    bucketing needs a :class:`PairPreprocessor`.
    """
    data = _tokenized(dataset, preprocessor, options, with_targets, sample_weights)
    if options.shuffle:
        data = data.shuffle(min(len(dataset), 50_000), seed=options.seed, reshuffle_each_iteration=True)
    data = _batched(data, preprocessor, options)
    if options.token_dropout > 0:
        data = data.map(_token_dropout_fn(options), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def make_epoch_stream(dataset: PairDataset, preprocessor, options: PipelineOptions, *, epochs: int,
                      first_epoch: int = 0) -> tuple[tf.data.Dataset, int]:
    """Training batches of epochs ``first_epoch .. epochs - 1`` as one stream; ``(data, steps)``.

    For ``Model.fit(data, steps_per_epoch=steps, epochs=epochs)`` with ``initial_epoch`` =
    ``first_epoch``. Each epoch is a pure function of ``(options.seed, epoch)``: its shuffle is
    seeded with the epoch number and token dropout is drawn by stateless ops keyed by the batch's
    number in the whole run. A run resumed at epoch k in a new process therefore gets exactly the
    batches an unkilled run gets from epoch k (``make_dataset``'s reshuffling and its
    ``tf.random.Generator`` would start again from epoch 0's order and draws). Every epoch is
    ``steps = len(dataset) // batch_size`` batches: with length buckets one pass leaves partial
    buckets behind, so the epoch's order is repeated to fill the last few batches.
    """
    steps = len(dataset) // options.batch_size
    if steps < 1 or not 0 <= first_epoch <= epochs:
        raise ValueError(f"{len(dataset)} pairs make no batch of {options.batch_size}, or epoch {first_epoch} "
                         f"is outside 0..{epochs}")
    tokenized = _tokenized(dataset, preprocessor, options, True, None)
    buffer = min(len(dataset), 50_000)

    def one_epoch(epoch):
        data = tokenized
        if options.shuffle:
            data = data.shuffle(buffer, seed=epoch_seed(options.seed, epoch), reshuffle_each_iteration=False)
        data = _batched(data.repeat(), preprocessor, options).take(steps)
        if options.token_dropout > 0:
            data = data.enumerate(start=epoch * steps).map(_stateless_token_dropout_fn(options))
        return data

    # One pipeline per epoch, built with the epoch as a Python int: a tensor shuffle seed breaks
    # TF's seed pairing when the global seed is 0 (``tf.random.set_seed(0)``: "symbolic tensor as a
    # Python bool"), and these are the same seeds and batches a flat_map over the epochs gave.
    parts = [one_epoch(epoch) for epoch in range(first_epoch, max(epochs, first_epoch + 1))]
    stream = functools.reduce(tf.data.Dataset.concatenate, parts)
    if first_epoch == epochs:
        stream = stream.take(0)  # nothing left to train: an empty stream of the right element spec
    return stream.prefetch(tf.data.AUTOTUNE), steps


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: distinct per (seed, epoch)."""
    return int(seed) * 1_000_003 + int(epoch)


def _tokenized(dataset: PairDataset, preprocessor, options: PipelineOptions, with_targets: bool,
               sample_weights: np.ndarray | None) -> tf.data.Dataset:
    """Single tokenised pairs (with targets and weights), in frame order, cached when asked."""
    features = string_dataset(dataset)
    columns: tuple = (features,)
    if with_targets:
        columns += (tf.data.Dataset.from_tensor_slices(targets_of(dataset, options.target)),)
        if sample_weights is not None:
            columns += (tf.data.Dataset.from_tensor_slices(sample_weights.astype(np.float32)),)
    data = tf.data.Dataset.zip(columns) if len(columns) > 1 else features
    data = _tokenize(data, preprocessor, options, len(columns) > 1)
    data = data.apply(tf.data.experimental.assert_cardinality(len(dataset)))
    return data.cache() if options.cache else data


def _batched(data: tf.data.Dataset, preprocessor, options: PipelineOptions) -> tf.data.Dataset:
    data = _batch(data, preprocessor, options)
    if options.trim_padding and _is_packed(data):
        data = data.map(_trim_to_longest, num_parallel_calls=tf.data.AUTOTUNE)
    return data


#: A model call's fixed cost for :func:`length_sorted_batches`' cuts of trimmed (BERT) batches, in
#: characters x rows. Measured on MiniLM over 2 CPU cores: a call costs about 10 ms beyond its work,
#: the work about 0.13 ms per token and row, i.e. a call ~ 75 token-rows, and English product text
#: runs ~3.5 characters a token. Rerank latency was flat between 200 and 400; where a token is
#: fewer characters (Chinese) it errs towards fewer, fuller batches, i.e. towards plain cuts.
TRIMMED_CALL_COST = 256


def length_sorted_batches(lengths: np.ndarray, batch_size: int, call_cost: float | None = None) -> list[np.ndarray]:
    """Row indices in batches of at most ``batch_size``, longest first: for inference over many texts.

    Batching texts of similar length lets each batch be trimmed to its own longest row (packed BERT
    inputs), so far fewer padding tokens go through attention and the feed-forward layers; longest
    first shows the peak memory on the first batch. Callers put outputs back with the indices.
    ``lengths`` may be any cheap proxy for the token count, such as characters.

    Without ``call_cost`` the sorted rows are cut every ``batch_size``. With it (for models whose
    batches are trimmed), the cuts minimise the work of the whole run, a batch costing its rows times
    its longest length plus ``call_cost`` (a model call's fixed cost, in the same length-times-rows
    units): one re-ranking request of 100 titles from 9 to 40 tokens then runs as a few batches of
    similar lengths, not one batch padded to 40 (``benchmarks/NOTES.md``). Many texts still come in
    full batches, since neighbours in length order differ little.

    Examples:
        >>> [rows.tolist() for rows in length_sorted_batches(np.array([5, 40, 6, 38]), 4)]
        [[1, 3, 2, 0]]
        >>> [rows.tolist() for rows in length_sorted_batches(np.array([5, 40, 6, 38]), 4, call_cost=20)]
        [[1, 3], [2, 0]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    if call_cost is None:
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    starts = cheapest_cuts(np.asarray(lengths, np.float64)[order], batch_size, float(call_cost))
    return [order[start:end] for start, end in zip(starts, [*starts[1:], len(order)])]


def cheapest_cuts(longest_first: np.ndarray, batch_size: int, call_cost: float) -> list[int]:
    """Start positions of the batches that minimise ``sum(rows * longest + call_cost)`` over
    lengths sorted longest first (an exact dynamic programme over contiguous batches of at most
    ``batch_size`` rows: a batch's longest row is its first)."""
    n = len(longest_first)
    best, start_of = np.zeros(n + 1), np.zeros(n + 1, np.int64)
    for end in range(1, n + 1):
        first = max(0, end - batch_size)
        starts = np.arange(first, end)
        costs = best[first:end] + (end - starts) * longest_first[first:end] + call_cost
        start_of[end] = first + int(np.argmin(costs))
        best[end] = costs[start_of[end] - first]
    cuts, end = [], n
    while end > 0:
        end = int(start_of[end])
        cuts.append(end)
    return cuts[::-1]


def _tokenize(data: tf.data.Dataset, preprocessor: PairPreprocessor, options: PipelineOptions,
              has_targets: bool) -> tf.data.Dataset:
    """Tokenise in batches of 1024 (vectorised TF Text ops), then unbatch to single pairs."""
    ragged = options.length_buckets is not None

    def tokenize(*element):
        features = preprocessor(element[0], ragged=True) if ragged else preprocessor(element[0])
        return (features, *element[1:]) if has_targets else features

    wrap = (lambda *e: e) if has_targets else (lambda e: e)
    return (data.batch(1024).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .unbatch().map(wrap))


def _batch(data: tf.data.Dataset, preprocessor: PairPreprocessor, options: PipelineOptions) -> tf.data.Dataset:
    if options.length_buckets is None:
        return data.batch(options.batch_size, drop_remainder=options.drop_remainder)
    bounds = sorted(b for b in options.length_buckets if b < preprocessor.product_length)

    def clip(*element):
        features = element[0]
        clipped = {**features, "query": features["query"][: preprocessor.query_length],
                   "product": features["product"][: preprocessor.product_length]}
        return (clipped, *element[1:]) if len(element) > 1 else clipped

    def product_length(*element):
        return tf.shape(element[0]["product"])[0]

    # Queries are short and vary little: pad each batch to its longest, rounded up to 4 tokens.
    query_bounds = list(range(4, preprocessor.query_length, 4))

    def pad(*element):
        features = element[0]
        padded = {**features, "query": _pad_to_bucket(features["query"], query_bounds, preprocessor.query_length),
                  "product": _pad_to_bucket(features["product"], bounds, preprocessor.product_length)}
        return (padded, *element[1:]) if len(element) > 1 else padded

    return data.map(clip).bucket_by_sequence_length(
        product_length, bucket_boundaries=[b + 1 for b in bounds],
        bucket_batch_sizes=[options.batch_size] * (len(bounds) + 1),
        padded_shapes=None, pad_to_bucket_boundary=False, drop_remainder=options.drop_remainder,
    ).map(pad)


def _is_packed(data: tf.data.Dataset) -> bool:
    spec = data.element_spec
    features = spec[0] if isinstance(spec, tuple) else spec
    return isinstance(features, dict) and "padding_mask" in features


def _trim_to_longest(*element):
    trimmed = trim_packed_padding(element[0])
    return (trimmed, *element[1:]) if len(element) > 1 else trimmed


def _pad_to_bucket(ids: tf.Tensor, bounds: list[int], cap: int) -> tf.Tensor:
    """Pad to the smallest bucket bound >= the batch's longest sequence (few distinct shapes)."""
    longest = tf.shape(ids)[1]
    candidates = tf.constant(bounds + [cap], tf.int32)
    target = tf.reduce_min(tf.boolean_mask(candidates, candidates >= longest))
    return tf.pad(ids, [[0, 0], [0, target - longest]])


def _token_dropout_fn(options: PipelineOptions):
    unk = SPECIAL_TOKENS.index(UNK)
    first_real = len(SPECIAL_TOKENS)
    rng = tf.random.Generator.from_seed(options.seed)

    def drop(ids: tf.Tensor) -> tf.Tensor:
        hit = (rng.uniform(tf.shape(ids)) < options.token_dropout) & (ids >= first_real)
        return tf.where(hit, tf.constant(unk, ids.dtype), ids)

    def augment(features, *rest):
        return ({**features, "query": drop(features["query"]), "product": drop(features["product"])}, *rest)

    return augment


def _stateless_token_dropout_fn(options: PipelineOptions):
    """Token dropout of ``(batch number, element)``: the draws depend on the seed and the batch
    number only, never on what ran before (so neither on threads nor on a resumed process)."""
    unk = SPECIAL_TOKENS.index(UNK)
    first_real = len(SPECIAL_TOKENS)

    def drop(ids: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        hit = (tf.random.stateless_uniform(tf.shape(ids), seed=seed) < options.token_dropout) & (ids >= first_real)
        return tf.where(hit, tf.constant(unk, ids.dtype), ids)

    def augment(index, element):
        features, *rest = element
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.constant(options.seed, tf.int64), index]), 2)
        return ({**features, "query": drop(features["query"], seeds[0]), "product": drop(features["product"], seeds[1])},
                *rest)

    return augment
