"""Downloads for users (file:// URLs here: no network): hashes checked on every use, trust on first
use when the upstream hash is unknown, plain file names only, fresh extractions, no zip bombs."""

from __future__ import annotations

import zipfile

import pytest

from semmatch_tf.data.download import download, sha256_of


def served(tmp_path, name: str, data: bytes) -> str:
    source = tmp_path / "upstream"
    source.mkdir(exist_ok=True)
    (source / name).write_bytes(data)
    return (source / name).as_uri()


def test_unknown_hash_is_recorded_and_a_planted_or_changed_file_is_not_used(tmp_path):
    url = served(tmp_path, "label.csv", b"query,product\nreal,row\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "label.csv").write_bytes(b"planted by someone else\n")  # no record: not ours
    path = download(url, None, cache)
    assert path.read_bytes() == b"query,product\nreal,row\n"
    assert (cache / ".label.csv.sha256").read_text().strip() == sha256_of(path)
    path.write_bytes(b"changed afterwards\n")
    assert download(url, None, cache).read_bytes() == b"query,product\nreal,row\n"


@pytest.mark.parametrize("name", ["../escape.csv", "sub/dir.csv", ".hidden", "..", "a\\b.csv"])
def test_file_names_cannot_leave_the_cache(tmp_path, name):
    url = served(tmp_path, "x.csv", b"x\n")
    with pytest.raises(ValueError, match="plain file name"):
        download(url, None, tmp_path / "cache", filename=name)
    assert not (tmp_path / "escape.csv").exists()


def _zip(path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path.read_bytes()


def test_a_stale_extraction_folder_is_rebuilt_from_the_archive(tmp_path):
    """A ``.d`` folder left by another archive (or by hand) is not reused unchecked."""
    cache = tmp_path / "cache"
    (cache / "set.zip.d").mkdir(parents=True)
    (cache / "set.zip.d" / "data.txt").write_bytes(b"stale\n")
    archive = _zip(tmp_path / "a.zip", {"data.txt": b"fresh\n"})
    folder = download(served(tmp_path, "set.zip", archive), None, cache, extract=True)
    assert (folder / "data.txt").read_bytes() == b"fresh\n"
    assert download(served(tmp_path, "set.zip", archive), None, cache, extract=True) == folder  # now reused


def test_an_archive_that_expands_too_far_is_refused(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (20 * 2**20)})  # ~20 KB -> 20 MB
    with pytest.raises(ValueError, match="zip bomb"):
        download(served(tmp_path, "bomb.zip", bomb), None, tmp_path / "cache", extract=True)
    assert not (tmp_path / "cache" / "bomb.zip.d").exists()
