"""The LFW evaluation code on a small LFW-shaped folder built from the photo fixtures (real models),
so that it cannot rot; the real run on LFW is in bench/ and docs/benchmarks.md."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.config import Settings
from lethe.errors import InputError
from lethe.evaluation import Pair, evaluate, evaluate_lfw, read_pairs, roc_points, tar_at_far

PEOPLE = {
    "Barack_Obama": ["barack_obama/obama.jpg", "barack_obama/obama1.jpg", "barack_obama/obama2.jpg"],
    "Kit_Harington": [
        "kit_harington/john1.jpeg",
        "kit_harington/john2.jpeg",
        "kit_harington/johnsnow_test1.jpg",
    ],
    "Alex_Lacamoire": ["alex_lacamoire/alex_lacamoire1.jpg", "alex_lacamoire/img1.jpg"],
    "Rose_Leslie": ["rose_leslie/img1.jpg", "rose_leslie/img2.jpg"],
    "Joe_Biden": ["joe_biden/biden.jpg", "joe_biden/biden2.jpg"],
    "Dog": [],
}


@pytest.fixture(scope="module")
def mini_lfw(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """2 folds x (2 matched + 2 mismatched pairs); one photo holds no face (a detection failure)."""
    root = tmp_path_factory.mktemp("mini")
    for name, files in PEOPLE.items():
        folder = root / "lfw" / name
        folder.mkdir(parents=True)
        for i, rel in enumerate(files, start=1):
            shutil.copy(fixtures_dir / "identities" / rel, folder / f"{name}_{i:04d}.jpg")
    shutil.copy(fixtures_dir / "no_face" / "dog.jpg", root / "lfw" / "Dog" / "Dog_0001.jpg")
    (root / "lfw_protocol").mkdir()
    (root / "lfw_protocol" / "pairs.txt").write_text(
        "2\t2\n"
        "Barack_Obama\t1\t2\nKit_Harington\t1\t2\n"
        "Barack_Obama\t1\tKit_Harington\t1\nAlex_Lacamoire\t1\tRose_Leslie\t1\n"
        "Rose_Leslie\t1\t2\nJoe_Biden\t1\t2\n"
        "Joe_Biden\t1\tBarack_Obama\t3\nDog\t1\tKit_Harington\t3\n"
    )
    return root


def test_protocol_parsing(mini_lfw: Path) -> None:
    pairs = read_pairs(mini_lfw)
    assert len(pairs) == 8
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False, True, True, False, False]
    assert pairs[0].b.name == "Barack_Obama_0002.jpg"


def test_missing_photo_or_bad_header_is_refused(mini_lfw: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(mini_lfw, broken)
    (broken / "lfw" / "Joe_Biden" / "Joe_Biden_0002.jpg").unlink()
    with pytest.raises(InputError, match="missing"):
        read_pairs(broken)
    (broken / "lfw_protocol" / "pairs.txt").write_text("ten folds\n")
    with pytest.raises(InputError, match="protocol"):
        read_pairs(broken)


def test_real_models_on_the_mini_protocol(mini_lfw: Path, tmp_path: Path) -> None:
    result = evaluate_lfw(mini_lfw, Settings(data_dir=tmp_path / "data", workers=1))
    assert result.folds == 2 and result.pairs == 8
    assert result.detection_failures == 1  # the dog
    # Every pair with faces is right; the dog's pair counts as an error: 3/4 in fold 1.
    assert result.fold_accuracies == [1.0, 0.75]
    assert result.accuracy == pytest.approx(0.875)


def test_failed_pairs_count_as_errors_not_skipped() -> None:
    a, b, c = Path("a"), Path("b"), Path("c")
    vectors = {a: np.array([1.0, 0.0], np.float32), b: np.array([1.0, 0.0], np.float32), c: None}
    pairs = [Pair(a, b, True, 0), Pair(a, c, True, 0), Pair(a, b, True, 1), Pair(a, c, False, 1)]
    result = evaluate(pairs, vectors)
    assert result.fold_accuracies == [0.5, 0.5]


def test_tar_at_far_counts_failed_pairs_as_rejected() -> None:
    # 2,000 impostors: FAR 1e-3 allows 2 false accepts. Genuine: 6 above the 3rd impostor, 1 below,
    # 1 failed (NaN) that can never be accepted.
    impostor = np.linspace(0.0, 0.5, 2000)
    impostor[-3:] = [0.80, 0.90, 0.95]
    genuine = np.array([0.99, 0.97, 0.96, 0.955, 0.85, 0.81, 0.70, np.nan])
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    tar, threshold = tar_at_far(scores, labels, 1e-3)
    assert 0.80 < threshold < 0.81  # just above the 3rd-best impostor: 2 impostors accepted
    assert tar == pytest.approx(6 / 8)
    far, rates = roc_points(scores, labels)
    assert np.all(np.diff(far) >= 0) and rates[-1] == pytest.approx(7 / 8)  # the NaN pair never


def test_flip_changes_templates_but_keeps_the_person(mini_lfw: Path, tmp_path: Path) -> None:
    plain = evaluate_lfw(mini_lfw, Settings(data_dir=tmp_path / "data", workers=1))
    flipped = evaluate_lfw(mini_lfw, Settings(data_dir=tmp_path / "data", workers=1, embed_flip=True))
    assert flipped.fold_accuracies == plain.fold_accuracies
    finite = ~np.isnan(plain.scores)
    assert not np.allclose(plain.scores[finite], flipped.scores[finite])
    assert np.abs(plain.scores[finite] - flipped.scores[finite]).max() < 0.05


def test_cli_contract(mini_lfw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_DATA_DIR", str(tmp_path / "data"))
    plot = tmp_path / "roc.png"
    result = CliRunner().invoke(
        app, ["eval", "lfw", "--data", str(mini_lfw), "--workers", "1", "--plot", str(plot), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["folds"] == 2 and payload["detection_failures"] == 1
    assert payload["accuracy"] == pytest.approx(0.875) and payload["std"] == pytest.approx(0.125)
    assert 0.0 <= payload["tar_at_far_1e-3"] <= 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_plots_without_matplotlib_name_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An optional dependency missing is a ConfigError naming the extra, like every other one."""
    from lethe.errors import ConfigError
    from lethe.evaluation import plot_roc_det

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra has
    with pytest.raises(ConfigError, match=r"lethe\[plots\]"):
        plot_roc_det({}, tmp_path / "roc.png")
    assert not (tmp_path / "roc.png").exists()
