"""Fetch public releases for users: URL + sha256 + cache directory, atomic and verified.

Tests and benchmarks never download (they read ``$SEMMATCH_DATA_DIR``); this is for users on a
connected machine. A file is written to a temporary name beside its destination and renamed only
after its checksum matched, so a cache never holds a half-downloaded or corrupted file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    url: str
    sha256: str | None
    filename: str


#: Public releases. sha256 values are those recorded in ../shared/data/*/SOURCE.md for the same
#: upstream files; None means the hash is not known here: the first download's hash is then
#: recorded beside the file (trust on first use) and every later use is checked against it, so a
#: file planted in the cache or changed afterwards is never used as it is.
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


#: Extraction refuses archives that expand past this many times their size (a zip bomb) or bytes.
MAX_EXPANSION_RATIO = 200
MAX_EXTRACTED_BYTES = 16 * 2**30


def download(url: str, sha256: str | None, cache: str | Path | None = None, filename: str | None = None,
             extract: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` into the cache (skipped when a verified copy is there); returns its path.

    With ``extract``, a zip or tar archive is unpacked into ``<file>.d/`` and that folder returned.
    Raises ``ValueError`` on a checksum mismatch (the bad file is deleted), on a file name that is
    not a plain name, or on an archive that would expand too far, is damaged or has an unsafe member
    (a path or link outside its folder, a device file); ``OSError`` naming the URL when the server
    fails or the body is cut short.
    """
    folder = Path(cache) if cache is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _plain_name(filename or Path(url.split("?")[0]).name)
    if target.exists() and _verified(target, sha256):
        log.info("cached: %s", target)
    else:
        _fetch(url, target, sha256, timeout)
    return _extract(target) if extract else target


def _plain_name(name: str) -> str:
    """A file name with no directory part, so that nothing is written outside the cache."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"download file name {name!r} must be a plain file name (no directories, not hidden)")
    return name


def _record_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.sha256")


def _verified(target: Path, sha256: str | None) -> bool:
    """A cached file is used when it matches the known hash, or, without one, the hash recorded when
    it was downloaded (a file with no record was not downloaded by us)."""
    expected = sha256
    if expected is None:
        record = _record_path(target)
        expected = record.read_text().strip() if record.is_file() else None
    return expected is not None and sha256_of(target) == expected


def _fetch(url: str, target: Path, sha256: str | None, timeout: float) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out, length=1 << 20)
                    expected = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                    received = out.tell()
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                raise OSError(f"download of {url} failed: {error or type(error).__name__}") from error
        if expected is not None and expected.isdigit() and int(expected) != received:
            # http.client's read(amt) returns what arrived when the server closes early
            raise OSError(f"download of {url} failed: got {received} of {expected} bytes (connection closed early)")
        actual = sha256_of(Path(temporary))
        if sha256 is not None and actual != sha256:
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
        if sha256 is None:
            log.warning("no known sha256 for %s; recorded %s for later checks (trust on first use)", url, actual)
            _write_replacing(_record_path(target), actual + "\n")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_replacing(path: Path, text: str) -> None:
    """Write through a new temporary file renamed over ``path``: a symlink planted at ``path`` is
    replaced, never followed (``write_text`` would write into whatever it points to)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


SOURCE_FILE = ".source-sha256"


def _extract(archive: Path) -> Path:
    """Unpack into ``<archive>.d/``; an existing folder is reused only if it came from this very
    archive (its hash is recorded inside), else it is rebuilt."""
    destination = archive.with_name(archive.name + ".d")
    digest = sha256_of(archive)
    if destination.is_dir() and not destination.is_symlink():
        source = destination / SOURCE_FILE
        if source.is_file() and source.read_text().strip() == digest:
            return destination
        shutil.rmtree(destination)
    elif destination.exists() or destination.is_symlink():  # a file or link where our folder goes
        destination.unlink()
    staging = Path(tempfile.mkdtemp(dir=archive.parent, prefix=f".{archive.name}."))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as bundle:
                    _check_expansion(archive, sum(member.file_size for member in bundle.infolist()))
                    bundle.extractall(staging)  # member names are made relative and stripped of ".."
            elif tarfile.is_tarfile(archive):
                with tarfile.open(archive) as bundle:
                    _check_expansion(archive, sum(member.size for member in bundle.getmembers()))
                    bundle.extractall(staging, filter="data")
            else:
                raise ValueError(f"{archive}: not a zip or tar archive")
        except tarfile.FilterError as error:  # a member outside the folder, a link out of it, a device file
            raise ValueError(f"{archive}: unsafe member refused: {error}") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
            raise ValueError(f"{archive}: damaged archive: {error}") from None
        (staging / SOURCE_FILE).write_text(digest + "\n")
        os.replace(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _check_expansion(archive: Path, unpacked: int) -> None:
    limit = min(MAX_EXTRACTED_BYTES, max(archive.stat().st_size, 1) * MAX_EXPANSION_RATIO)
    if unpacked > limit:
        raise ValueError(f"{archive}: would expand to {unpacked} bytes, more than the {limit}-byte limit "
                         f"({MAX_EXPANSION_RATIO}x its size, at most {MAX_EXTRACTED_BYTES}); refusing a possible zip bomb")


def download_public(name: str, cache: str | Path | None = None) -> Path:
    """Download every file of a public release (see ``PUBLIC_DATASETS``); returns their folder."""
    if name not in PUBLIC_DATASETS:
        raise ValueError(f"unknown public dataset {name!r}; known: {sorted(PUBLIC_DATASETS)}")
    folder = (Path(cache) if cache is not None else default_cache_dir()) / name
    for remote in PUBLIC_DATASETS[name]:
        download(remote.url, remote.sha256, folder, remote.filename)
    return folder
