"""A catalogue index in shards: each shard an :class:`EmbeddingIndex`, searched together.

Big catalogues are embedded in parallel (``semmatch-tf embed-batch`` on Apache Beam writes one
shard per key group) and searched as one index: every shard's top-k, merged by score (equal
scores: the lower global row first, so results equal one exact search over all rows). Approximate
search is faiss, either an HNSW graph per shard (``kind="hnsw"``, :meth:`EmbeddingIndex.build_ann`;
shards build and search independently) or one IVF index over all rows (``kind="ivf"``,
``faiss.IndexIVFFlat``: k-means cells, ``nprobe`` of them searched; far quicker to build than HNSW
at a million rows). On load the shards' vectors are copied once into one array and every shard
keeps a view of its rows, so memory is one copy of the vectors plus the ANN structures.

Layout of a sharded index directory (what ``load_dense_index`` recognises by ``sharded.json``)::

    sharded.json                 format, dims, count, shard names and sizes, ann settings, source
    shard-00000-of-00004/        an EmbeddingIndex directory (meta.json, embeddings.npy, catalogue.parquet)
    ...
    ivf.faiss                    optional merged IVF index (global row numbers)

Examples:
    >>> import numpy as np, pandas as pd
    >>> from semmatch_tf.retrieval.sharded import ShardedIndex
    >>> vectors = np.eye(4, dtype=np.float32)
    >>> catalogue = pd.DataFrame({"product_id": list("abcd"), "title": list("ABCD")})
    >>> index = ShardedIndex.from_arrays(vectors, catalogue, shards=2)
    >>> index.search_arrays(vectors[2:3], 1)[1].tolist()
    [[2]]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.retrieval.index import (CatalogueRows, EmbeddingIndex, Ranking, _import_faiss, check_catalogue,
                                         read_json_object, write_directory_atomically, write_json)

MANIFEST, IVF = "sharded.json", "ivf.faiss"
FORMAT_VERSION = 1
ANN_KINDS = ("hnsw", "ivf")


def shard_name(number: int, total: int) -> str:
    return f"shard-{number:05d}-of-{total:05d}"


class ShardedIndex(CatalogueRows):
    """Shards of one catalogue's embeddings; exact or approximate (faiss) search over all of them.

    Args:
        shards: the shards, in order (global row numbers run through them in this order).
        meta: facts to keep in ``sharded.json`` (model, source, build seconds).
    """

    def __init__(self, shards: Sequence[EmbeddingIndex], meta: dict | None = None) -> None:
        if not shards:
            raise ValueError("a sharded index needs at least one shard")
        dims = {int(s.embeddings.shape[1]) for s in shards}
        if len(dims) != 1:
            raise ValueError(f"shards have different dimensions {sorted(dims)}")
        self.catalogue = check_catalogue(pd.concat([s.catalogue for s in shards], ignore_index=True), "shards")
        self.embeddings = np.concatenate([s.embeddings for s in shards])  # one copy; shards keep views
        self.offsets = np.cumsum([0] + [len(s) for s in shards])
        self.shards = []
        for shard, start, end in zip(shards, self.offsets[:-1], self.offsets[1:]):
            view = EmbeddingIndex(self.embeddings[start:end], shard.catalogue, shard.meta)
            view._ann = shard._ann
            self.shards.append(view)
        self.meta = {"format_version": FORMAT_VERSION, "kind": "sharded", **(meta or {}),
                     "dims": dims.pop(), "count": int(len(self.embeddings))}
        self._ivf = None

    @classmethod
    def from_arrays(cls, embeddings: np.ndarray, catalogue: pd.DataFrame, *, shards: int,
                    meta: dict | None = None) -> "ShardedIndex":
        """Split row-aligned ``embeddings`` / ``catalogue`` into ``shards`` contiguous shards."""
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        catalogue = check_catalogue(catalogue)
        bounds = np.linspace(0, len(catalogue), min(shards, len(catalogue)) + 1).astype(int)
        return cls([EmbeddingIndex(embeddings[a:b], catalogue.iloc[a:b]) for a, b in zip(bounds[:-1], bounds[1:])],
                   meta)

    # -- the interface Searcher uses (as EmbeddingIndex) ----------------------------------------------

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def has_ann(self) -> bool:
        return self._ivf is not None or all(s.has_ann for s in self.shards)

    def search(self, query_vectors: np.ndarray, k: int = 10, *, exact: bool = True) -> list[Ranking]:
        scores, indices = self.search_arrays(query_vectors, k, exact=exact)
        return [Ranking(i, s) for i, s in zip(indices, scores)]

    def search_arrays(self, query_vectors: np.ndarray, k: int, *, exact: bool = True
                      ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores [Q, k'], global rows [Q, k'])``, best first; ``exact=False`` uses the ANN."""
        queries = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if queries.shape[1] != self.embeddings.shape[1]:
            raise ValueError(f"query vectors have {queries.shape[1]} dims, the index {self.embeddings.shape[1]}")
        k = min(int(k), len(self))
        if k < 1:
            raise ValueError("k must be at least 1")
        if not exact and self._ivf is not None:
            scores, rows = self._ivf.search(queries, k)
            return scores.astype(np.float32), rows.astype(np.int64)
        if not exact and not self.has_ann:
            raise ValueError("this sharded index has no approximate index: call build_ann() first")
        parts = [shard.search_arrays(queries, min(k, len(shard)), exact=exact) for shard in self.shards]
        scores = np.concatenate([s for s, _ in parts], axis=1)
        rows = np.concatenate([r + start for (_, r), start in zip(parts, self.offsets[:-1])], axis=1)
        return merge_top_k(scores, rows, k)

    # -- approximate search ---------------------------------------------------------------------------
    def build_ann(self, kind: str = "hnsw", *, m: int = 32, ef_construction: int = 80, ef_search: int = 128,
                  nlist: int | None = None, nprobe: int = 32, train_size: int = 100_000,
                  seed: int = 0) -> "ShardedIndex":
        """``hnsw``: one HNSW graph per shard; ``ivf``: one IVF-flat index over every row
        (``nlist`` cells, default ~4 * sqrt(count), trained on at most ``train_size`` rows)."""
        if kind not in ANN_KINDS:
            raise ValueError(f"kind must be one of {ANN_KINDS}, got {kind!r}")
        started = time.perf_counter()
        if kind == "hnsw":
            self._ivf = None  # the approximate search uses the IVF whenever there is one
            for shard in self.shards:
                shard.build_ann(m=m, ef_construction=ef_construction, ef_search=ef_search)
            settings = {"m": m, "ef_construction": ef_construction, "ef_search": ef_search}
        else:
            self._ivf, settings = build_ivf(self.embeddings, nlist=nlist, nprobe=nprobe, train_size=train_size,
                                            seed=seed)
        self.meta["ann"] = {"library": "faiss", "kind": kind, **settings,
                            "build_seconds": round(time.perf_counter() - started, 3)}
        return self

    def set_search_depth(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Trade speed for recall after building or loading: HNSW ``efSearch`` or IVF ``nprobe``."""
        if ef_search is not None:
            for shard in self.shards:
                if shard._ann is not None:
                    shard._ann.hnsw.efSearch = int(ef_search)
            self.meta.setdefault("ann", {})["ef_search"] = int(ef_search)
        if nprobe is not None and self._ivf is not None:
            self._ivf.nprobe = int(nprobe)
            self.meta["ann"]["nprobe"] = int(nprobe)

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write every shard and the manifest, atomically (a temporary sibling renamed into place)."""
        names = [shard_name(i, len(self.shards)) for i in range(len(self.shards))]

        def write(tmp: Path) -> None:
            for name, shard in zip(names, self.shards):
                shard.save(tmp / name)
            if self._ivf is not None:
                _import_faiss().write_index(self._ivf, str(tmp / IVF))
            write_manifest(tmp, [{"name": n, "count": len(s)} for n, s in zip(names, self.shards)], self.meta)

        return write_directory_atomically(Path(directory), write)

    @classmethod
    def load(cls, directory: str | Path) -> "ShardedIndex":
        """Load a sharded index; a missing or inconsistent shard is an error naming it."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        shards = [EmbeddingIndex.load(directory / entry["name"]) for entry in manifest["shards"]]
        for entry, shard in zip(manifest["shards"], shards):
            if len(shard) != entry["count"]:
                raise ValueError(f"{directory / entry['name']}: {len(shard)} rows, {MANIFEST} says {entry['count']}; "
                                 "the index is corrupt: rebuild it")
        meta = {key: value for key, value in manifest.items() if key != "shards"}
        index = cls(shards, meta)
        if (directory / IVF).is_file():
            index._ivf = _import_faiss().read_index(str(directory / IVF))
            index._ivf.nprobe = int(meta.get("ann", {}).get("nprobe", 32))
        return index


def merge_top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the ``k`` best of several shards' candidates: score descending, row ascending."""
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def build_ivf(embeddings: np.ndarray, *, nlist: int | None, nprobe: int, train_size: int, seed: int):
    """A trained ``faiss.IndexIVFFlat`` (inner product) over ``embeddings`` and its settings."""
    faiss = _import_faiss()
    count, dims = embeddings.shape
    nlist = int(nlist or max(1, min(count // 39, round(4 * np.sqrt(count)))))  # faiss wants >= 39 rows per cell
    quantizer = faiss.IndexFlatIP(dims)
    ivf = faiss.IndexIVFFlat(quantizer, dims, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = embeddings
    if count > train_size:
        sample = embeddings[np.sort(np.random.default_rng(seed).choice(count, train_size, replace=False))]
    ivf.train(np.ascontiguousarray(sample))
    ivf.add(embeddings)
    ivf.nprobe = min(nprobe, nlist)
    return ivf, {"nlist": nlist, "nprobe": int(ivf.nprobe), "train_size": int(len(sample))}


def write_shard(directory: str | Path, name: str, vectors: np.ndarray, catalogue: pd.DataFrame,
                meta: dict | None = None) -> dict:
    """One shard directory (an :class:`EmbeddingIndex`), rows sorted by product id; its manifest entry."""
    catalogue = check_catalogue(catalogue)
    order = np.argsort(catalogue["product_id"].to_numpy(dtype=str), kind="stable")
    EmbeddingIndex(np.asarray(vectors)[order], catalogue.iloc[order], meta).save(Path(directory) / name)
    return {"name": name, "count": int(len(catalogue))}


def write_manifest(directory: str | Path, shards: Sequence[dict], meta: dict) -> None:
    """``sharded.json``: the shards in order (sorted by name) and the index's facts."""
    entries = sorted(({"name": str(s["name"]), "count": int(s["count"])} for s in shards), key=lambda s: s["name"])
    write_json(Path(directory) / MANIFEST, {**meta, "format_version": FORMAT_VERSION, "kind": "sharded",
                                            "count": sum(s["count"] for s in entries), "shards": entries})


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    manifest = read_json_object(path)
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("count"), int) for s in shards):
        raise ValueError(f"{path}: 'shards' must list {{name, count}} objects; the index is corrupt: rebuild it")
    for entry in shards:
        if "/" in entry["name"] or entry["name"].startswith(".") or not (directory / entry["name"]).is_dir():
            raise FileNotFoundError(f"{directory / entry['name']}: shard missing, but {path} lists it; "
                                    "the index is incomplete: rebuild it")
    return manifest


def is_sharded(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def load_dense_index(directory: str | Path) -> EmbeddingIndex | ShardedIndex:
    """The dense part of an index directory: sharded (``sharded.json``) or a single EmbeddingIndex."""
    return ShardedIndex.load(directory) if is_sharded(directory) else EmbeddingIndex.load(directory)


class ExportedEncoder:
    """Query/product embeddings from a bi-encoder SavedModel (``embed_query`` / ``embed_product``):
    the encoder of an index that ``semmatch-tf embed-batch`` built from an export."""

    def __init__(self, export_dir: str | Path, batch_size: int = 256) -> None:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 (the tokeniser's ops)

        self.export_dir, self.batch_size = str(export_dir), batch_size
        self._loaded = tf.saved_model.load(self.export_dir)
        missing = {"embed_query", "embed_product"} - set(self._loaded.signatures)
        if missing:
            raise ValueError(f"{export_dir}: not a bi-encoder export (no {sorted(missing)} signature)")

    def _embed(self, signature: str, texts: Sequence[str]) -> np.ndarray:
        import tensorflow as tf

        function = self._loaded.signatures[signature]
        parts = [function(text=tf.constant(list(texts[i:i + self.batch_size]), tf.string))["embedding"].numpy()
                 for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def embed_queries(self, texts: Sequence[str], **_) -> np.ndarray:
        return self._embed("embed_query", list(texts))

    def embed_products(self, texts: Sequence[str], **_) -> np.ndarray:
        return self._embed("embed_product", list(texts))
