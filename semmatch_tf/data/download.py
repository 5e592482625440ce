"""Fetch public releases for users: URL + sha256 + cache directory, atomic and verified.

Tests and benchmarks never download (they read ``$SEMMATCH_DATA_DIR``); this is for users on a
connected machine. A file is written to a temporary name beside its destination and renamed only
after its checksum matched, so a cache never holds a half-downloaded or corrupted file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str | None
    filename: str


#: Public releases. sha256 values are those recorded in ../shared/data/*/SOURCE.md for the same
#: upstream files; None means the hash is not known here, and the file is then kept unverified
#: (with a warning).
PUBLIC_DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "wands": tuple(RemoteFile(f"https://raw.githubusercontent.com/wayfair/WANDS/main/dataset/{name}", None, name)
                   for name in ("product.csv", "query.csv", "label.csv")),
    "esci": tuple(RemoteFile(f"https://github.com/amazon-science/esci-data/raw/main/shopping_queries_dataset/{name}",
                             None, name)
                  for name in ("shopping_queries_dataset_examples.parquet", "shopping_queries_dataset_products.parquet")),
    "qbqtc": (RemoteFile("https://raw.githubusercontent.com/CLUEbenchmark/QBQTC/main/dataset/dev.json",
                         "8f1bbc0d0aa1cefd9cfd5424d8e3060af81d8adfa15d2b0c6931417831f4e51b", "dev.json"),),
    "jsts": tuple(RemoteFile(f"https://raw.githubusercontent.com/yahoojapan/JGLUE/main/datasets/jsts-v1.3/{name}", sha, name)
                  for name, sha in (("train-v1.3.json", "db6bd653270ac9786759920413a48973164d322998f34dd4ae32202af5e66969"),
                                    ("valid-v1.3.json", "7c0bdcb381179f01096c635d058853d96da1e1248d23fe3f5c2beed5dc2d9b1a"))),
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("SEMMATCH_CACHE", Path.home() / ".cache" / "semmatch_tf"))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, sha256: str | None, cache: str | Path | None = None, filename: str | None = None,
             extract: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` into the cache (skipped when a verified copy is there); returns its path.

    With ``extract``, a zip or tar archive is unpacked into ``<file>.d/`` and that folder returned.
    Raises ``ValueError`` on a checksum mismatch (the bad file is deleted) and ``OSError`` naming the
    URL when the server fails.
    """
    folder = Path(cache) if cache is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (filename or Path(url.split("?")[0]).name)
    if target.exists() and (sha256 is None or sha256_of(target) == sha256):
        log.info("cached: %s", target)
    else:
        _fetch(url, target, sha256, timeout)
    return _extract(target) if extract else target


def _fetch(url: str, target: Path, sha256: str | None, timeout: float) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out, length=1 << 20)
            except (urllib.error.URLError, OSError) as error:
                raise OSError(f"download of {url} failed: {error}") from error
        actual = sha256_of(Path(temporary))
        if sha256 is not None and actual != sha256:
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
        if sha256 is None:
            log.warning("no known sha256 for %s; kept unverified (sha256 %s)", url, actual)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _extract(archive: Path) -> Path:
    destination = archive.with_name(archive.name + ".d")
    if destination.is_dir():
        return destination
    staging = Path(tempfile.mkdtemp(dir=archive.parent, prefix=f".{archive.name}."))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                bundle.extractall(staging, filter="data")
        else:
            raise ValueError(f"{archive}: not a zip or tar archive")
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def download_public(name: str, cache: str | Path | None = None) -> Path:
    """Download every file of a public release (see ``PUBLIC_DATASETS``); returns their folder."""
    if name not in PUBLIC_DATASETS:
        raise ValueError(f"unknown public dataset {name!r}; known: {sorted(PUBLIC_DATASETS)}")
    folder = (Path(cache) if cache is not None else default_cache_dir()) / name
    for remote in PUBLIC_DATASETS[name]:
        download(remote.url, remote.sha256, folder, remote.filename)
    return folder
