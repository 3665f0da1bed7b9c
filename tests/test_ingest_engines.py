"""What every ingest engine shares: the worker kit (how a worker elsewhere builds the driver's
pipeline), the split of settings between driver and workers, and the engine options' errors."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.config import Settings
from lethe.engine import Lethe
from lethe.errors import ModelError
from lethe.imaging import decode_image
from lethe.ingest.kit import DRIVER_SETTINGS, WORKER_SETTINGS, WorkerKit
from lethe.pipeline import build_pipeline

from conftest import backend_env, child_env, consent_source, make_settings


def test_every_setting_is_either_sent_to_workers_or_kept_by_the_driver() -> None:
    fields = set(Settings.model_fields)
    unclassified = fields - WORKER_SETTINGS - DRIVER_SETTINGS
    assert not unclassified, (
        f"classify {sorted(unclassified)} in src/lethe/ingest/kit.py: WORKER_SETTINGS when the pipeline "
        "or the decoder reads it (Ray workers get it), DRIVER_SETTINGS otherwise"
    )
    assert not WORKER_SETTINGS & DRIVER_SETTINGS
    assert fields >= WORKER_SETTINGS | DRIVER_SETTINGS


@pytest.mark.usefixtures("sface_model")
@pytest.mark.parametrize("detector", ["hog", "yunet"])
def test_a_worker_kit_rebuilds_the_drivers_pipeline_without_its_data_folder(
    detector: str, tmp_path: Path, fixtures_dir: Path, request: pytest.FixtureRequest
) -> None:
    extra: dict[str, object] = {"detector": detector, "model_cache_dir": tmp_path / "driver" / "models"}
    if detector == "yunet":
        pytest.importorskip("cv2", reason="YuNet needs opencv (pip install 'lethe[yunet]')")
        extra["yunet_model_path"] = request.getfixturevalue("yunet_model")
    settings = make_settings(tmp_path / "driver", **extra)
    driver = build_pipeline(settings)
    kit = WorkerKit.pack(settings)
    assert set(kit.settings) == WORKER_SETTINGS and len(kit.files) == (4 if detector == "yunet" else 3)
    shutil.rmtree(tmp_path / "driver")  # a worker on another machine has no such model cache
    worker = pickle.loads(pickle.dumps(kit)).build()
    image = decode_image(
        (fixtures_dir / "group_labelled" / "two_people.jpg").read_bytes(), max_pixels=10**8
    ).pixels
    ours, theirs = worker.faces(image), driver.faces(image)
    assert len(ours) == len(theirs) == 2
    assert [f.box for f in ours] == [f.box for f in theirs]
    np.testing.assert_allclose([f.embedding for f in ours], [f.embedding for f in theirs], atol=1e-6)


@pytest.mark.usefixtures("default_models")
def test_a_worker_whose_install_differs_from_the_drivers_refuses_to_start(tmp_path: Path) -> None:
    kit = WorkerKit.pack(make_settings(tmp_path / "driver"))
    other = dataclasses.replace(kit, fingerprint=kit.fingerprint | {"dlib-bin": "19.24.0"})
    with pytest.raises(ModelError, match="dlib-bin .* here, 19.24.0 on the driver"):
        other.build()


def test_address_without_the_ray_engine_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["ingest", "events", str(tmp_path), "--address", "auto", "--json"])
    assert result.exit_code == 2 and "--address needs --engine ray" in result.output


def test_the_ray_engine_without_ray_names_the_extra_to_install(tmp_path: Path, fixtures_dir: Path) -> None:
    """A real CLI run in a Python where ``import ray`` fails, as on an install without the extra."""
    data = tmp_path / "data"
    env = child_env()
    env.update(LETHE_DATA_DIR=str(data), **backend_env(data))
    cli = "import sys; sys.modules['ray'] = None; from lethe.cli import main; sys.argv[0] = 'lethe'; main()"
    with Lethe(make_settings(data)) as engine:
        engine.add_source(consent_source())
    folder = str(fixtures_dir / "identities" / "joe_biden")
    args = [sys.executable, "-c", cli, "ingest", "events", folder, "--engine", "ray", "--json"]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert "pip install 'lethe[ray]'" in result.stderr
