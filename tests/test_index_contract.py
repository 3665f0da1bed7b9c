"""Contract suite for :class:`lethe.index.VectorIndex` backends, plus backend-specific checks and a
FAISS-vs-Milvus congruence check (same data, same answers within ANN tolerance).

To add a backend, append one :class:`Backend` to ``BACKENDS``: a factory that opens the index stored
in a directory, and optionally a function returning the bytes the backend stores for one id (so the
suite can prove those bytes vanish from disk on removal). Milvus runs on milvus-lite, a database
folder inside the test's directory; indexes a test opens are closed when it ends. With
``LETHE_TEST_MILVUS_URI`` set (``http://host:19530``) the suite also runs against that Milvus server,
one collection per test, dropped afterwards.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from lethe.catalog import Catalog
from lethe.config import Settings
from lethe.errors import ConfigError, SealedDataError, VectorIndexError
from lethe.index import FaissIndex, MilvusIndex, VectorIndex, index_for
from lethe.index._sealed import CHUNK_BYTES, ProcessKeySealer, SealedReader
from lethe.index._sidecar import read_meta
from lethe.index._sizing import SCAN_BUDGET_CODES, default_nprobe, nlist_for
from lethe.index.faiss_index import INDEX_FILE, META_FILE, set_threads
from lethe.index.milvus.index import segment_rows
from lethe.index.milvus.purge import has_level0
from lethe.keyring import KeyRing
from lethe.types import EMBEDDING_DIM, l2_normalise

DIM = EMBEDDING_DIM
N_IDENTITIES = 50
PER_IDENTITY = 16  # 800 vectors: enough to train a small IVF, small enough to run in a second


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[Path], VectorIndex]
    #: bytes the backend keeps on disk for ``face_id`` (raw row, SQ code...), or None if unknown.
    stored_bytes: Callable[[Any, int, np.ndarray], bytes] | None = None
    #: what a reader holding the key finds in the backend's folder (FAISS files are sealed).
    readable: Callable[[Path], bytes] | None = None


def _flat_bytes(index: Any, face_id: int, vector: np.ndarray) -> bytes:
    return vector.astype(np.float32).tobytes()


def _ivf_code_bytes(index: Any, face_id: int, vector: np.ndarray) -> bytes:
    """The SQ8 code stored for ``face_id`` inside its inverted list."""
    ivf = index._index
    for list_no in range(ivf.nlist):
        size = ivf.invlists.list_size(list_no)
        if not size:
            continue
        ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(list_no), size)
        hits = np.flatnonzero(ids == face_id)
        if hits.size:
            codes = faiss.rev_swig_ptr(ivf.invlists.get_codes(list_no), size * ivf.code_size)
            start = int(hits[0]) * ivf.code_size
            return bytes(codes[start : start + ivf.code_size])
    raise AssertionError(f"id {face_id} not in any list")


_OPENED: list[MilvusIndex] = []
MILVUS_SERVER = os.environ.get("LETHE_TEST_MILVUS_URI")


def _milvus(directory: Path, **options: Any) -> MilvusIndex:
    index = MilvusIndex(directory, DIM, **options)
    _OPENED.append(index)
    return index


def _milvus_server(directory: Path, **options: Any) -> MilvusIndex:
    if not MILVUS_SERVER:
        pytest.skip("no Milvus server for the tests (set LETHE_TEST_MILVUS_URI)")
    name = "lethe_test_" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    return _milvus(directory, uri=MILVUS_SERVER, collection=name, **options)


@pytest.fixture(autouse=True)
def _close_milvus() -> Iterator[None]:
    """Each milvus-lite folder runs a server in this process until its last handle closes; a test
    collection on a real server is dropped."""
    yield
    while _OPENED:
        index = _OPENED.pop()
        if not index.lite and index._client is not None:  # noqa: SLF001 - test clean-up
            index._client.drop_collection(index.collection)  # noqa: SLF001
        index.close()


def _faiss_readable(directory: Path) -> bytes:
    """The FAISS folder as its key opens it: the index file decrypted (this process's key), the
    sidecar as it is."""
    path = directory / INDEX_FILE
    plain = b""
    if path.exists():
        with open(path, "rb") as fh:
            plain = SealedReader(fh, ProcessKeySealer(), str(path)).read(1 << 40)
    meta = directory / META_FILE
    return plain + (meta.read_bytes() if meta.exists() else b"")


BACKENDS = [
    Backend("faiss-flat", lambda d: FaissIndex(d, DIM, kind="flat"), _flat_bytes, _faiss_readable),
    Backend("faiss-ivf", lambda d: FaissIndex(d, DIM, kind="ivf"), _ivf_code_bytes, _faiss_readable),
    # milvus-lite keeps float32 rows in parquet data files and FLAT index files
    Backend("milvus", _milvus, _flat_bytes),
    Backend("milvus-server", _milvus_server),  # its files are not ours to read
]


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


def _sources(ids: np.ndarray) -> np.ndarray:
    """Five sources, 1..5, assigned by id."""
    return (ids % 5 + 1).astype(np.int64)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Clustered 'faces': noisy copies around identity centres, ids sparse and non-positional."""
    rng = np.random.default_rng(1234)
    centres = l2_normalise(rng.normal(size=(N_IDENTITIES, DIM)))
    noise = rng.normal(scale=0.35 / np.sqrt(DIM), size=(N_IDENTITIES, PER_IDENTITY, DIM))
    vectors = l2_normalise((centres[:, None, :] + noise).reshape(-1, DIM))
    ids = (np.arange(vectors.shape[0], dtype=np.int64) * 7 + 1_000_003).astype(np.int64)
    order = rng.permutation(ids.size)
    return ids[order], vectors[order]


def _filled(backend: Backend, directory: Path, data: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    index = backend.open(directory)
    index.add(*data)
    return index


def _dir_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


# ---------------------------------------------------------------------------------------- contract
def test_satisfies_protocol(backend: Backend, tmp_path: Path) -> None:
    assert isinstance(backend.open(tmp_path), VectorIndex)


def test_self_is_top1(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    assert len(index) == ids.size
    results = index.search(vecs[:100], 5)
    assert len(results) == 100
    for face_id, hits in zip(ids[:100], results, strict=True):
        assert 1 <= len(hits) <= 5
        assert hits[0][0] == face_id
        assert hits[0][1] == pytest.approx(1.0, abs=0.02)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)


def test_ids_stable_after_removing_others(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    gone, kept = ids[::2], ids[1::2]
    assert index.remove(gone) == gone.size
    assert len(index) == kept.size
    np.testing.assert_array_equal(index.ids(), np.sort(kept))
    assert int(gone[0]) not in index.ids()
    assert int(kept[0]) in index.ids()
    results = index.search(vecs[1::2], 10)
    assert [hits[0][0] for hits in results] == kept.tolist()
    returned = {i for hits in results for i, _ in hits}
    assert returned.isdisjoint(set(gone.tolist()))


def test_remove_unknown_returns_zero(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, _ = data
    index = _filled(backend, tmp_path, data)
    assert index.remove(np.array([1, 2, 3], dtype=np.int64)) == 0
    assert index.remove(np.array([ids[0], ids[0], 5], dtype=np.int64)) == 1
    assert index.remove(np.array([ids[0]], dtype=np.int64)) == 0
    assert len(index) == ids.size - 1


@pytest.mark.parametrize(
    "bad_ids, bad_vecs",
    [
        ("dup_existing", None),
        ("dup_in_batch", None),
        ("negative", None),
        ("float", None),
        ("short", None),
        (None, "wrong_dim"),
        (None, "nan"),
        (None, "not_normalised"),
        (None, "ints"),
    ],
)
def test_bad_input_refused(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray], bad_ids: Any, bad_vecs: Any
) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, (ids[:-3], vecs[:-3]))
    new_ids, new_vecs = ids[-3:].copy(), vecs[-3:].copy()
    new_ids = {
        "dup_existing": np.array([ids[-1], ids[-2], ids[0]]),
        "dup_in_batch": np.array([ids[-1], ids[-1], ids[-2]]),
        "negative": np.array([-1, ids[-1], ids[-2]]),
        "float": new_ids.astype(np.float64),
        "short": new_ids[:2],
        None: new_ids,
    }[bad_ids]
    if bad_vecs == "wrong_dim":
        new_vecs = l2_normalise(np.ones((3, DIM + 1)))
    elif bad_vecs == "nan":
        new_vecs[1, 0] = np.nan
    elif bad_vecs == "not_normalised":
        new_vecs = new_vecs * 3
    elif bad_vecs == "ints":
        new_vecs = np.ones((3, DIM), dtype=np.int32)
    with pytest.raises(VectorIndexError):
        index.add(new_ids, new_vecs)
    assert len(index) == ids.size - 3  # nothing half-added
    with pytest.raises(VectorIndexError):
        index.search(l2_normalise(np.ones((1, DIM + 1))), 3)


def test_allow_filter(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    allow = ids[::37]
    for hits in index.search(vecs[:20], 10, allow=allow):
        assert hits, "allowed ids exist, so every query finds some"
        assert {i for i, _ in hits} <= set(allow.tolist())
    # an allowed self is still found first
    allowed_rows = np.isin(ids, allow)
    results = index.search(vecs[allowed_rows], 3, allow=allow)
    assert [hits[0][0] for hits in results] == ids[allowed_rows].tolist()
    assert index.search(vecs[:2], 5, allow=np.empty(0, dtype=np.int64)) == [[], []]


def test_deny_filter(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    deny = ids[:50]
    for face_id, hits in zip(ids[:50], index.search(vecs[:50], 10, deny=deny), strict=True):
        assert hits
        assert hits[0][0] != face_id
        assert {i for i, _ in hits}.isdisjoint(set(deny.tolist()))
    both = index.search(vecs[:10], 10, allow=ids[:100], deny=ids[:10])
    for hits in both:
        assert {i for i, _ in hits} <= set(ids[10:100].tolist())


def test_persistence_roundtrip(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    index.remove(ids[:10])
    index.save()
    before = index.search(vecs[:40], 5)
    reopened = backend.open(tmp_path)
    assert len(reopened) == ids.size - 10
    np.testing.assert_array_equal(reopened.ids(), index.ids())
    after = reopened.search(vecs[:40], 5)
    assert [[i for i, _ in h] for h in after] == [[i for i, _ in h] for h in before]
    for h_after, h_before in zip(after, before, strict=True):
        np.testing.assert_allclose([s for _, s in h_after], [s for _, s in h_before], atol=1e-5)
    assert reopened.stats()["count"] == ids.size - 10
    # adding after reopen keeps working
    reopened.add(ids[:10], vecs[:10])
    assert reopened.search(vecs[:1], 1)[0][0][0] == ids[0]


def test_a_second_handle_sees_what_another_saved(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Two processes on one index (the service and the CLI): a save by one is picked up by the
    other, so it neither searches nor later saves a stale copy."""
    ids, vecs = data
    writer = _filled(backend, tmp_path, data)
    writer.save()
    reader = backend.open(tmp_path)
    assert reader.reload_if_changed() is False
    writer.remove(ids[:5])
    writer.save()
    assert reader.reload_if_changed() is True
    np.testing.assert_array_equal(reader.ids(), writer.ids())
    assert all(i not in ids[:5].tolist() for h in reader.search(vecs[:5], 3) for i, _ in h)


def test_generation_names_each_save_and_a_second_handle_sees_it(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A search's audit entry names the index state it searched (issue 18): every save gets a new
    generation, a handle that reloads another's save reports that one, and a reopened index its last."""
    ids, _ = data
    writer = _filled(backend, tmp_path, data)
    writer.save()
    first = writer.generation
    assert first
    reader = backend.open(tmp_path)
    assert reader.generation == first
    writer.remove(ids[:2])
    writer.save()
    assert writer.generation not in (None, first)
    reader.reload_if_changed()
    assert reader.generation == writer.generation


def test_removed_bytes_leave_disk(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    if backend.stored_bytes is None:
        pytest.skip("backend cannot say which bytes it stores")
    ids, vecs = data
    index = _filled(backend, tmp_path, data)
    index.save()
    victim, survivor = 3, 4
    victim_bytes = backend.stored_bytes(index, int(ids[victim]), vecs[victim])
    survivor_bytes = backend.stored_bytes(index, int(ids[survivor]), vecs[survivor])
    readable = backend.readable or _dir_bytes  # FAISS: what its key opens (the file is sealed)
    assert victim_bytes in readable(tmp_path), "the check must be able to see stored bytes"
    assert index.remove(ids[victim : victim + 1]) == 1
    index.save()
    on_disk = readable(tmp_path)
    assert survivor_bytes in on_disk
    assert victim_bytes not in on_disk
    assert vecs[victim].tobytes() not in on_disk
    assert not list(tmp_path.rglob("*.tmp")), "no temp files left"
    if isinstance(index, FaissIndex):
        assert {p.name for p in tmp_path.iterdir()} == {INDEX_FILE, META_FILE}
    assert index.search(vecs[victim : victim + 1], 1)[0][0][0] != ids[victim]
    assert index.search(vecs[survivor : survivor + 1], 1)[0][0][0] == ids[survivor]


def test_rebuild_replaces_content(
    backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vecs = data
    index = _filled(backend, tmp_path, (ids[:100], vecs[:100]))
    index.rebuild(ids[100:], vecs[100:])
    assert len(index) == ids.size - 100
    assert int(ids[0]) not in index.ids()
    assert index.search(vecs[100:101], 1)[0][0][0] == ids[100]
    assert backend.open(tmp_path).stats()["count"] == ids.size - 100  # rebuild saved


def test_empty_index(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    _, vecs = data
    index = backend.open(tmp_path)
    assert len(index) == 0
    assert index.search(vecs[:3], 5) == [[], [], []]
    assert index.ids().dtype == np.int64 and index.ids().size == 0
    assert index.remove(np.array([1], dtype=np.int64)) == 0
    assert index.stats()["count"] == 0
    index.save()
    assert len(backend.open(tmp_path)) == 0


def test_stats_and_meta(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, _ = data
    index = _filled(backend, tmp_path, data)
    index.save()
    stats = index.stats()
    assert stats["count"] == ids.size
    assert isinstance(stats["file_bytes"], int) and stats["file_bytes"] >= 0
    if backend.stored_bytes is not None:  # its files are local: they are counted
        assert stats["file_bytes"] > 0
    assert {"backend", "kind", "count", "file_bytes", "unsourced"} <= stats.keys()
    assert stats["unsourced"] == ids.size  # added without sources


def test_deny_sources(backend: Backend, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    """Restricted sources are filtered inside the search, also combined with allow/deny, after a
    removal (the cached FAISS selector must follow), across a reopen and a rebuild."""
    ids, vecs = data
    sources = _sources(ids)
    index = backend.open(tmp_path)
    index.add(ids, vecs, sources=sources)
    hidden = np.array([2, 4], dtype=np.int64)
    shown = ~np.isin(sources, hidden)
    for face_id, visible, hits in zip(
        ids[:60], shown[:60], index.search(vecs[:60], 10, deny_sources=hidden), strict=True
    ):
        assert len(hits) == 10
        assert set(sources[np.isin(ids, [i for i, _ in hits])].tolist()).isdisjoint({2, 4})
        assert (hits[0][0] == face_id) == bool(visible)
    assert index.stats()["unsourced"] == 0
    # combined with deny and allow
    deny = ids[shown][:5]
    for hits in index.search(vecs[:20], 10, deny=deny, deny_sources=hidden):
        got = {i for i, _ in hits}
        assert got.isdisjoint(set(deny.tolist())) and got <= set(ids[shown].tolist())
    allow = ids[:100]
    for hits in index.search(vecs[:20], 10, allow=allow, deny_sources=hidden):
        assert {i for i, _ in hits} <= set(ids[:100][shown[:100]].tolist())
    # an unknown source hides nothing; an empty list neither
    first = index.search(vecs[:5], 3)
    assert index.search(vecs[:5], 3, deny_sources=np.array([99], dtype=np.int64)) == first
    assert index.search(vecs[:5], 3, deny_sources=np.empty(0, dtype=np.int64)) == first
    # after a removal the filter still holds, and over a reopen
    index.remove(ids[shown][:10])
    index.save()
    reopened = backend.open(tmp_path)
    for index_ in (index, reopened):
        for hits in index_.search(vecs[:20], 10, deny_sources=hidden):
            assert {i for i, _ in hits} <= set(ids[shown][10:].tolist())
    # rebuild carries the sources
    reopened.rebuild(ids, vecs, sources=sources)
    for hits in reopened.search(vecs[:20], 10, deny_sources=np.array([1], dtype=np.int64)):
        assert 1 not in set(sources[np.isin(ids, [i for i, _ in hits])].tolist())
    with pytest.raises(VectorIndexError):
        reopened.add(np.array([1, 2], dtype=np.int64), vecs[:2], sources=np.array([1], dtype=np.int64))
    with pytest.raises(VectorIndexError):
        reopened.add(np.array([1], dtype=np.int64), vecs[:1], sources=np.array([-3], dtype=np.int64))


# ------------------------------------------------------------------------------- faiss specific
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_faiss_meta_sidecar(kind: str, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    index = FaissIndex(tmp_path, DIM, kind=kind)  # type: ignore[arg-type]
    index.add(*data)
    index.save()
    meta = read_meta(tmp_path / META_FILE)
    assert meta is not None
    assert meta["count"] == data[0].size and meta["kind"] == kind and meta["dim"] == DIM
    assert (meta["nprobe"] is None) == (kind == "flat")


def test_faiss_auto_picks_by_size(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    settings = Settings(index="faiss", index_kind="auto", index_exact_max_faces=500)
    index = index_for(settings, tmp_path)
    assert isinstance(index, FaissIndex)
    assert index.stats()["kind"] == "flat"
    index.add(ids[:600], vecs[:600])
    assert index.stats()["kind"] == "flat"  # plain adds never switch structure
    index.rebuild(ids, vecs)
    stats = index.stats()
    assert stats["kind"] == "ivf" and stats["count"] == ids.size
    assert 1 <= int(stats["nprobe"]) <= int(stats["nlist"])  # type: ignore[call-overload]
    index.add(np.array([1], dtype=np.int64), vecs[:1])  # trained IVF accepts adds
    assert {i for i, _ in index.search(vecs[:1], 2)[0]} == {1, int(ids[0])}
    assert index_for(settings, tmp_path).stats()["kind"] == "ivf"
    index.rebuild(ids[:400], vecs[:400])
    assert index.stats()["kind"] == "flat"


@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.parametrize("damage", ["garbage", "truncate", "bitflip", "empty"])
def test_faiss_corrupt_file(
    kind: str, damage: str, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    index = FaissIndex(tmp_path, DIM, kind=kind)  # type: ignore[arg-type]
    index.add(*data)
    index.save()
    path = tmp_path / INDEX_FILE
    raw = bytearray(path.read_bytes())
    if damage == "garbage":
        raw = bytearray(b"not a faiss index" * 10)
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "bitflip":
        raw[len(raw) // 3] ^= 0x01  # a flip inside the vector data FAISS alone would not notice
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.raises(VectorIndexError, match="corrupt|unreadable|cannot be parsed"):
        FaissIndex(tmp_path, DIM, kind=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_faiss_files_hold_no_template_in_clear(
    kind: str, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Issue 16: a copied index folder reveals no template without the key. Neither a vector nor
    its stored code (IVF-SQ8) appears in any file under the folder, while the key opens them all."""
    ids, vecs = data
    index = FaissIndex(tmp_path, DIM, kind=kind)  # type: ignore[arg-type]
    index.add(ids, vecs, sources=_sources(ids))
    index.save()
    stored = _flat_bytes if kind == "flat" else _ivf_code_bytes
    needles = [stored(index, int(i), v) for i, v in zip(ids, vecs, strict=True)]
    needles += [v.tobytes() for v in vecs] + [v[:8].tobytes() for v in vecs[:100]]
    readable = _faiss_readable(tmp_path)
    assert all(n in readable for n in needles[: ids.size]), "the check can see what it looks for"
    on_disk = _dir_bytes(tmp_path)
    assert [n for n in needles if n in on_disk] == []
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_faiss_file_under_another_key_is_a_sealed_data_error(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Two data folders, two real key rings: an index file copied from one does not open in the
    other, with a SealedDataError that says why."""
    rings = []
    for name in ("a", "b"):
        catalog = Catalog(f"sqlite:///{tmp_path / name}.sqlite3")
        rings.append((catalog, KeyRing(tmp_path / f"keys-{name}", catalog)))
    try:
        index = FaissIndex(tmp_path / "index", DIM, kind="flat", sealer=rings[0][1])
        index.add(*data)
        index.save()
        assert len(FaissIndex(tmp_path / "index", DIM, sealer=rings[0][1])) == data[0].size
        with pytest.raises(SealedDataError, match="another master key"):
            FaissIndex(tmp_path / "index", DIM, sealer=rings[1][1])
        with pytest.raises(SealedDataError, match="another master key"):
            FaissIndex(tmp_path / "index", DIM)  # no key ring: this process's own key
    finally:
        for catalog, _ in rings:
            catalog.close()


@pytest.mark.parametrize("damage", ["cut_at_chunk", "chunk_dropped", "chunks_swapped", "appended", "header"])
def test_faiss_sealed_file_altered_between_chunks_is_refused(damage: str, tmp_path: Path) -> None:
    """Damage a bit flip cannot show: whole chunks cut, dropped, swapped or added, the header's
    wrapped key altered. Each is refused on load."""
    vecs = l2_normalise(np.random.default_rng(5).normal(size=(3000, DIM)))  # 1.5 MB: 2 chunks
    index = FaissIndex(tmp_path, DIM, kind="flat")
    index.add(np.arange(3000, dtype=np.int64), vecs)
    index.save()
    path = tmp_path / INDEX_FILE
    raw = path.read_bytes()
    header = 8 + 4 + 2 + int.from_bytes(raw[12:14], "little")
    size = CHUNK_BYTES + 16
    chunks = [raw[i : i + size] for i in range(header, len(raw), size)]
    assert len(chunks) == 2
    if damage == "cut_at_chunk":
        raw = raw[: header + size]
    elif damage == "chunk_dropped":
        raw = raw[:header] + chunks[1]
    elif damage == "chunks_swapped":
        raw = raw[:header] + chunks[1] + chunks[0]
    elif damage == "appended":
        raw = raw + chunks[1]
    else:
        raw = raw[: header - 1] + bytes([raw[header - 1] ^ 1]) + raw[header:]
    path.write_bytes(raw)
    error = SealedDataError if damage == "header" else VectorIndexError
    with pytest.raises(error, match="corrupt|another master key"):
        FaissIndex(tmp_path, DIM, kind="flat")


def test_faiss_reads_the_former_unsealed_format_and_says_so(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A data folder from before sealing: its plaintext file still opens (the Store then saves it
    sealed at once, test_data_at_rest.py), and the next save replaces it with a sealed one."""
    ids, vecs = data
    write_unsealed(tmp_path, ids, vecs)
    index = FaissIndex(tmp_path, DIM, kind="flat")
    assert index.plaintext_on_disk and len(index) == ids.size
    assert index.search(vecs[:1], 1)[0][0][0] == ids[0]
    index.save()
    assert not index.plaintext_on_disk
    assert vecs[0].tobytes() not in _dir_bytes(tmp_path)
    assert not FaissIndex(tmp_path, DIM).plaintext_on_disk


def write_unsealed(directory: Path, ids: np.ndarray, vecs: np.ndarray) -> None:
    """An index file of the former unsealed format (FAISS file, source ids, ``LETHEIX2`` trailer)."""
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(vecs.astype(np.float32), ids.astype(np.int64))
    body = faiss.serialize_index(flat).tobytes()
    sources = np.full(ids.size, -1, dtype="<i8").tobytes()
    digest = hashlib.sha256(body + sources).digest()
    trailer = struct.pack("<8sQQ32s", b"LETHEIX2", len(body), len(sources), digest)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / INDEX_FILE).write_bytes(body + sources + trailer)


def test_faiss_dim_mismatch_on_load(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    index = FaissIndex(tmp_path, DIM)
    index.add(*data)
    index.save()
    with pytest.raises(VectorIndexError, match="dim"):
        FaissIndex(tmp_path, 64)


def test_faiss_selectors_use_external_ids(tmp_path: Path) -> None:
    """IDMap2 must apply selectors to caller ids, not positions -- also after a removal shifts rows."""
    vecs = l2_normalise(np.random.default_rng(0).normal(size=(6, DIM)))
    ids = np.array([500, 10, 7_000_000_000, 3, 42, 99], dtype=np.int64)
    index = FaissIndex(tmp_path, DIM, kind="flat")
    index.add(ids, vecs)
    index.remove(np.array([10], dtype=np.int64))
    hits = index.search(vecs[2:3], 5, allow=np.array([3, 7_000_000_000], dtype=np.int64))[0]
    assert [i for i, _ in hits][0] == 7_000_000_000 and {i for i, _ in hits} == {3, 7_000_000_000}
    hits = index.search(vecs[2:3], 5, deny=np.array([7_000_000_000, 0, 1, 2], dtype=np.int64))[0]
    assert {i for i, _ in hits} == {500, 3, 42, 99}


def test_faiss_stale_temp_files_cleaned(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    stale = tmp_path / f".{INDEX_FILE}.abc123.tmp"
    stale.write_bytes(data[1][0].tobytes())
    index = FaissIndex(tmp_path, DIM)
    assert stale.exists()  # opening alone leaves it: it may be another process's save in progress
    assert index.remove_stale_temps() == 1
    assert not stale.exists()


def test_set_threads() -> None:
    before = faiss.omp_get_max_threads()
    set_threads(1)
    assert faiss.omp_get_max_threads() == 1
    set_threads(before)
    with pytest.raises(VectorIndexError):
        set_threads(0)


# ------------------------------------------------------------------------------ milvus specific
def test_milvus_structure_by_size(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vecs = data
    index = _milvus(tmp_path, exact_max=500)
    index.add(ids[:600], vecs[:600])
    assert index.stats()["kind"] == "flat"  # plain adds never switch structure
    index.rebuild(ids, vecs, sources=_sources(ids))
    stats = index.stats()
    assert stats["kind"] == "ivf" and stats["index_type"] == "IVF_SQ8" and stats["count"] == ids.size
    assert 1 <= int(stats["nprobe"]) <= int(stats["nlist"])  # type: ignore[call-overload]
    assert [h[0][0] for h in index.search(vecs[:50], 3)] == ids[:50].tolist()
    assert _milvus(tmp_path, exact_max=500).stats()["kind"] == "ivf"  # another handle sees it
    index.rebuild(ids[:400], vecs[:400])
    assert index.stats()["kind"] == "flat"


def test_milvus_interrupted_purge_resumes_on_open(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A removal whose save never came (a crash) is purged when the index is next opened."""
    ids, vecs = data
    index = _milvus(tmp_path)
    index.add(ids, vecs)
    index.save()
    assert index.remove(ids[7:8]) == 1
    index.close()  # no save: the deleted row's bytes are still in milvus-lite's files
    assert vecs[7].tobytes() in _dir_bytes(tmp_path)
    reopened = _milvus(tmp_path)
    assert vecs[7].tobytes() not in _dir_bytes(tmp_path)
    assert len(reopened) == ids.size - 1 and int(ids[7]) not in reopened.ids()


def test_milvus_removal_killed_before_its_deletes_is_finished_on_open(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Found by the crash soak: a process killed inside ``remove`` after noting the ids but before
    sending every delete. The next open failed ("removed vectors are still stored after the
    purge": rewriting the partitions carried the undeleted rows over); it now deletes them first."""
    ids, vecs = data
    index = _milvus(tmp_path)
    index.add(ids, vecs)
    index.save()
    index._meta["pending_ids"] = ids[5:10].tolist()  # noqa: SLF001 - the state remove() leaves
    index._write_meta(new_generation=False)  # noqa: SLF001 - ... when killed before any delete
    index.close()
    _OPENED.remove(index)
    reopened = _milvus(tmp_path)
    assert len(reopened) == ids.size - 5
    assert not np.isin(ids[5:10], reopened.ids()).any()
    assert not any(v.tobytes() in _dir_bytes(tmp_path) for v in vecs[5:10])


def test_milvus_collection_left_half_created_is_made_again(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A process killed inside a rebuild, after the collection was created but before its index
    and partitions were (found by the crash harness): the next open makes it again, empty."""
    ids, vecs = data
    index = _milvus(tmp_path)
    index.add(ids, vecs)
    index.save()
    client = index._client  # noqa: SLF001 - put the collection in the state a crash leaves
    client.drop_collection(index.collection)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", index._pm.DataType.INT64, is_primary=True)  # noqa: SLF001
    schema.add_field("vector", index._pm.DataType.FLOAT_VECTOR, dim=DIM)  # noqa: SLF001
    schema.add_field("source_id", index._pm.DataType.INT64)
    client.create_collection(index.collection, schema=schema)
    index.close()
    _OPENED.remove(index)
    reopened = _milvus(tmp_path)
    assert len(reopened) == 0
    reopened.add(ids[:10], vecs[:10])
    assert reopened.search(vecs[3:4], 1)[0][0][0] == int(ids[3])


def test_milvus_folder_of_a_half_dropped_collection_is_removed(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """A process killed while milvus-lite deleted a collection's folder leaves part of it, without
    the schema file (found by the crash harness): the remains are deleted and the index opens."""
    ids, vecs = data
    index = _milvus(tmp_path)
    index.add(ids, vecs)
    index.save()
    assert index._lite is not None  # noqa: SLF001
    folder = Path(index._lite.path) / "collections" / index.collection  # noqa: SLF001
    index.close()
    _OPENED.remove(index)
    schemas = list(folder.rglob("schema.json"))
    assert schemas and vecs[5].tobytes() in _dir_bytes(tmp_path)
    for schema in schemas:
        schema.unlink()  # as far as milvus-lite's rmtree got
    reopened = _milvus(tmp_path)
    assert len(reopened) == 0
    assert vecs[5].tobytes() not in _dir_bytes(tmp_path)  # the remains held the vectors


def test_milvus_without_the_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"lethe\[milvus\]"):
        MilvusIndex(tmp_path, DIM)


def test_milvus_lite_path_must_end_in_db(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.db"):
        MilvusIndex(tmp_path, DIM, uri=str(tmp_path / "faces.milvus"))


# ------------------------------------------------------------------------------ congruence
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_faiss_and_milvus_agree(kind: str, tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    """The same gallery in both backends gives the same answers: identical for exact search, within
    ANN tolerance for IVF-SQ8 (each quantises and partitions on its own)."""
    ids, vecs = data
    sources = _sources(ids)
    options: dict[str, Any] = {"kind": kind}
    faiss_index = FaissIndex(tmp_path / "faiss", DIM, **options)
    milvus_index = _milvus(tmp_path / "milvus", **options)
    for index in (faiss_index, milvus_index):
        index.rebuild(ids, vecs, sources=sources)
        index.remove(ids[:40])
        index.save()
    np.testing.assert_array_equal(faiss_index.ids(), milvus_index.ids())
    queries = l2_normalise(vecs[:200] + np.random.default_rng(7).normal(scale=0.03, size=vecs[:200].shape))
    hidden = np.array([3], dtype=np.int64)
    for options in ({}, {"deny_sources": hidden}, {"allow": ids[::3], "deny": ids[3::9]}):
        a = faiss_index.search(queries, 10, **options)
        b = milvus_index.search(queries, 10, **options)
        if kind == "flat":
            assert [[i for i, _ in h] for h in a] == [[i for i, _ in h] for h in b]
            np.testing.assert_allclose(
                [[s for _, s in h] for h in a], [[s for _, s in h] for h in b], atol=1e-5
            )
        else:
            overlap = np.mean(
                [len({i for i, _ in x} & {i for i, _ in y}) / 10 for x, y in zip(a, b, strict=True)]
            )
            assert overlap >= 0.9, overlap
            assert np.mean([x[0][0] == y[0][0] for x, y in zip(a, b, strict=True)]) >= 0.97
            np.testing.assert_allclose([h[0][1] for h in a], [h[0][1] for h in b], atol=0.02)


@pytest.mark.parametrize(
    ("version", "level0"),
    [("v2.3.5", False), ("v2.4.0", True), ("2.6.1-rc", True), ("v3.0.0", True), ("?", True)],
)
def test_milvus_l0_compaction_only_where_the_server_has_it(version: str, level0: bool) -> None:
    assert has_level0(version) is level0


def test_default_nprobe_keeps_the_scan_bounded_as_galleries_grow() -> None:
    assert default_nprobe(4000, 1_000_000) == 250  # nlist/16: 62.5k codes scanned (measured at 1M)
    assert default_nprobe(12649, 10_000_000) == 126  # capped near 100k codes (measured at 10M)
    assert default_nprobe(40, 2000) == 16  # small indexes still probe 16 lists (all of them here: 40)


# ---------------------------------------------------------------------------------- sizing
def test_both_backends_size_ivf_by_one_policy(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    """The same gallery in both backends: each trains nlist for the rows of one IVF structure (the
    whole FAISS index; one Milvus segment) and probes ``default_nprobe(nlist, gallery size)`` lists,
    kept across a reopen."""
    ids, vecs = data
    n = int(ids.size)
    backends: list[tuple[Callable[[], VectorIndex], int]] = [
        (lambda: FaissIndex(tmp_path / "faiss", DIM, exact_max=500), n),
        (lambda: _milvus(tmp_path / "milvus", exact_max=500), segment_rows(n)),
    ]
    for open_, rows in backends:
        nlist = nlist_for(rows)
        expected = {"kind": "ivf", "nlist": nlist, "nprobe": default_nprobe(nlist, n)}
        open_().rebuild(ids, vecs)
        reopened = open_()
        assert {key: reopened.stats()[key] for key in expected} == expected


@pytest.mark.parametrize("rows", [50, 800, 39 * 16, 20_000, 100_000])
def test_an_ivf_structure_of_the_same_rows_gets_the_same_nlist(rows: int) -> None:
    """A FAISS index of ``rows`` vectors and a Milvus collection whose segments hold ``rows`` each
    (one per hash partition) train the same number of lists."""
    assert nlist_for(segment_rows(16 * rows)) == nlist_for(rows)


@pytest.mark.parametrize("n", [200_000, 1_000_000, 3_000_000, 10_000_000])
def test_both_layouts_keep_one_scan_budget(n: int) -> None:
    """Codes one query scans (nprobe x rows per list, over every structure) at the default nprobe:
    about the same budget whether the gallery is one FAISS structure or Milvus segments of at most
    100k rows (the old Milvus rule, nlist/16 per segment, scanned 625k codes at 10M)."""
    for nlist in (nlist_for(n), nlist_for(segment_rows(n))):
        scanned = default_nprobe(nlist, n) * n / nlist
        assert scanned <= max(SCAN_BUDGET_CODES * 1.3, 16 * n / nlist), (n, nlist, scanned)
