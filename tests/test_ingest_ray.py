"""Distributed ingest on a real local Ray cluster: the same results and guarantees as local ingest.

The cluster (a head node with two CPUs) is started once for the module. The tests connect to it by
address, as a driver on one of its nodes would, or through Ray Client (``ray://``), as a driver
outside it would; the CLI test starts a Ray instance of its own, as ``lethe ingest --engine ray``
does without ``--address``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lethe.catalog.tables import FacelessImageRow, FaceRow, ImageRow
from lethe.cli import app
from lethe.config import Settings
from lethe.engine import Lethe

from conftest import backend_env, consent_source, make_settings, mixed_folder, use_data_dir

pytest.importorskip("ray", reason="Ray is not installed (pip install 'lethe[ray]')")
# One cluster for the module: keep its tests on one xdist worker (`pytest -n 2 --dist loadgroup`).
# `make test` runs them in a pass of their own, after the parallel one: starting a Ray cluster while
# both cores are busy with the other test worker missed Ray's fixed start-up deadlines in CI.
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.ray]

LETHE = Path(sys.executable).with_name("lethe")


_CLIENT_PROBE = "import ray, sys; ray.init(sys.argv[1]); assert ray.get(ray.remote(lambda: 1).remote()) == 1"


def _start_head() -> tuple[Any, str]:
    """A one-node cluster and its Ray Client address, once a client has run a task through it."""
    from ray.cluster_utils import Cluster

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        client_port = probe.getsockname()[1]
    head = {"num_cpus": 2, "include_dashboard": False, "ray_client_server_port": client_port}
    for attempt in range(3):
        try:
            cluster = Cluster(initialize_head=True, head_node_args=head)
            break
        except Exception as exc:
            # Ray waits a fixed 30 s for its raylet to register; with both cores busy with the other
            # test worker that start-up was missed once in CI. Clear what started and try again.
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"], check=False)
    client = f"ray://127.0.0.1:{client_port}"
    # Twice on a fresh clone the head's client proxy failed to start the per-client server ("SpecificServer
    # startup failed", then every connection to it failed): a client that ran a task is the proof it works.
    probe_run = subprocess.run(
        [sys.executable, "-c", _CLIENT_PROBE, client],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if probe_run.returncode != 0:
        cluster.shutdown()
        raise RuntimeError(f"the Ray Client proxy at {client} ran no task: {probe_run.stderr[-500:]}")
    return cluster, client


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, str]]:
    """(the head node's address, its Ray Client address ``ray://...``)."""
    for attempt in range(3):
        try:
            cluster, client = _start_head()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield cluster.address, client
    finally:
        cluster.shutdown()


@pytest.fixture
def ray_cluster(ray_head: tuple[str, str]) -> str:
    return ray_head[0]


def ray_settings(data_dir: Path, address: str, actors: int = 1) -> Settings:
    """One actor unless a test needs more: each one loads the models, which takes seconds."""
    return make_settings(data_dir, ingest_engine="ray", ray_address=address, ray_actors=actors)


def catalogued(data_dir: Path) -> dict[str, tuple[int, int, list[tuple[tuple[int, ...], np.ndarray]]]]:
    """sha256 -> (width, height, [(box, template)] ordered by box): everything ingest decided."""
    with Lethe(make_settings(data_dir)) as lethe, lethe.catalog.session() as session:
        images = session.execute(select(ImageRow.id, ImageRow.sha256, ImageRow.width, ImageRow.height)).all()
        faces = session.execute(
            select(FaceRow.id, FaceRow.image_id, FaceRow.box_left, FaceRow.box_top, FaceRow.box_right,
                   FaceRow.box_bottom)
        ).all()  # fmt: skip
        templates = lethe.catalog.face_templates([f.id for f in faces])
    by_image: dict[int, list[tuple[tuple[int, ...], np.ndarray]]] = {i.id: [] for i in images}
    for f in faces:
        by_image[f.image_id].append((tuple(f[2:]), templates[f.id]))
    return {i.sha256: (i.width, i.height, sorted(by_image[i.id], key=lambda face: face[0])) for i in images}


def recorded(lethe: Lethe) -> list[str]:
    """The hashes of every photo the catalog knows: stored with faces, or noted as holding none."""
    with lethe.catalog.session() as session:
        return [*session.scalars(select(ImageRow.sha256)), *session.scalars(select(FacelessImageRow.sha256))]


def test_ray_ingest_stores_what_local_ingest_stores_and_a_rerun_adds_nothing(
    ray_cluster: str, gallery: Path, fixtures_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with Lethe(ray_settings(data, ray_cluster, actors=2)) as lethe:
        lethe.add_source(consent_source())
        report = lethe.ingest("events", fixtures_dir)
        assert report.errors == [] and report.skipped == 0
        ids = np.sort(lethe.index.ids()).tolist()
        again = lethe.ingest("events", fixtures_dir)
        assert (again.images, again.faces, again.errors) == (0, 0, [])
        assert again.skipped == report.images
        assert np.sort(lethe.index.ids()).tolist() == ids
        assert len(recorded(lethe)) == report.images
        assert lethe.catalog.count_images() == report.images - report.no_face
        faceless = set(recorded(lethe)) - set(catalogued(data))
    with Lethe(make_settings(gallery)) as lethe:
        assert faceless == set(recorded(lethe)) - set(catalogued(gallery))
    ours, local = catalogued(data), catalogued(gallery)  # the gallery: local ingest, 2 processes
    assert report.images - report.no_face == len(local)
    assert report.faces == sum(len(v[2]) for v in local.values())
    assert set(ours) == set(local)
    for sha, (width, height, faces) in ours.items():
        assert (width, height) == local[sha][:2]
        assert [box for box, _ in faces] == [box for box, _ in local[sha][2]]
        for (_, mine), (_, theirs) in zip(faces, local[sha][2], strict=True):
            np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_errors_and_duplicates_are_per_file_as_in_local_ingest(
    ray_head: tuple[str, str], fixtures_dir: Path, tmp_path: Path
) -> None:
    """Through Ray Client (``ray://``), as a driver outside the cluster would connect."""
    client = ray_head[1]
    folder = mixed_folder(fixtures_dir, tmp_path / "mixed")
    shutil.copyfile(folder / "1-good.jpg", folder / "6-copy.jpg")
    reports = {}
    for name, settings in (
        ("local", make_settings(tmp_path / "local")),
        ("ray", ray_settings(tmp_path / "ray", client)),
    ):
        with Lethe(settings) as lethe:
            lethe.add_source(consent_source())
            reports[name] = lethe.ingest("events", folder)
    ray, local = reports["ray"], reports["local"]
    assert (ray.images, ray.faces, ray.skipped) == (2, 2, 1)
    assert (ray.images, ray.faces, ray.skipped, ray.errors) == (
        local.images, local.faces, local.skipped, local.errors,
    )  # fmt: skip
    assert {Path(e["path"]).name for e in ray.errors} == {"2-truncated.jpg", "3-text.png", "4-empty.jpg"}
    with Lethe(ray_settings(tmp_path / "ray", client)) as lethe:
        again = lethe.ingest("events", folder)  # the bad files are tried again, the good ones skipped
    assert (again.images, again.skipped, len(again.errors)) == (0, 3, 3)


def test_an_interrupted_ray_ingest_resumed_stores_every_photo_once(
    ray_cluster: str, test_data: Path, tmp_path: Path
) -> None:
    lfw = test_data / "lfw"
    if not lfw.is_dir():
        pytest.skip(f"LFW not found under {test_data}")
    folder = tmp_path / "photos"
    photos = [p for person in sorted(lfw.iterdir())[:40] for p in sorted(person.glob("*.jpg"))][:90]
    for photo in photos:
        (folder / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, folder / photo.parent.name / photo.name)
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest() for p in photos}
    settings = ray_settings(tmp_path / "data", ray_cluster)

    def interrupt(done: int, total: int) -> None:
        if done >= 70:  # after the first commit (64 photos), with chunks still in flight: Ctrl-C
            raise KeyboardInterrupt

    with Lethe(settings) as lethe:
        lethe.add_source(consent_source())
        with pytest.raises(KeyboardInterrupt):
            lethe.ingest("events", folder, progress=interrupt)
    with Lethe(settings) as lethe:  # as the next process would open it
        committed = len(recorded(lethe))
        assert 0 < committed < len(distinct)
        report = lethe.ingest("events", folder)
        assert report.errors == [] and report.skipped == committed + len(photos) - len(distinct)
        assert report.images == len(distinct) - committed
        assert sorted(recorded(lethe)) == sorted(distinct)  # every photo exactly once
        assert np.array_equal(np.sort(lethe.index.ids()), np.sort(lethe.catalog.face_ids()))


def test_a_cluster_that_does_not_answer_is_a_one_line_error(
    fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    use_data_dir(monkeypatch, data)
    with Lethe(make_settings(data)) as engine:
        engine.add_source(consent_source())
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    folder = str(fixtures_dir / "identities" / "joe_biden")
    result = CliRunner().invoke(
        app, ["ingest", "events", folder, "--engine", "ray", "--address", address, "--json"]
    )
    assert result.exit_code == 2 and f"cannot reach the Ray cluster at {address}" in result.output


def test_cli_ingest_with_the_ray_engine_starts_its_own_ray_instance(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LETHE_", "RAY_ADDRESS"))}
    env.update(LETHE_DATA_DIR=str(data), LETHE_ACTOR="tests", **backend_env(data))  # who acts (docs/cli.md)

    def lethe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LETHE), *args], capture_output=True, text=True, env=env, timeout=300)

    with Lethe(make_settings(data)) as engine:
        engine.add_source(consent_source())
    folder = str(fixtures_dir / "identities" / "joe_biden")
    result = lethe("ingest", "events", folder, "--engine", "ray", "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds exactly the one JSON object
    assert report["images"] >= 2 and report["faces"] >= 2 and report["errors"] == []
    again = json.loads(lethe("ingest", "events", folder, "--engine", "ray", "--json").stdout)
    assert (again["images"], again["skipped"]) == (0, report["images"])
