"""Documentation and public API are part of the product: pinned here."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import lethe
from lethe.config import Settings
from lethe.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`LETHE_{name.upper()}`" not in text]
    assert missing == []


def test_public_api_is_curated() -> None:
    assert sorted(lethe.__all__) == [
        "Lethe",
        "LetheError",
        "Match",
        "SearchResult",
        "Settings",
        "SourceSpec",
        "__version__",
    ]
    for name in lethe.__all__:
        assert hasattr(lethe, name)


def test_no_other_public_name_leaks_from_the_package() -> None:
    """httpx's check: once every exported name has been used (they load on first use), the
    package's public attributes are exactly ``__all__``, apart from its own submodules (Python
    binds ``lethe.engine`` when it is imported). A helper imported into ``__init__`` without a
    leading underscore fails here."""
    for name in lethe.__all__:
        getattr(lethe, name)
    public = {
        name
        for name, value in vars(lethe).items()
        if not name.startswith("_")
        and not (isinstance(value, ModuleType) and value.__name__ == f"lethe.{name}")
    }
    assert public == set(lethe.__all__) - {"__version__"}
    assert set(lethe.__all__) <= set(dir(lethe))
    assert not hasattr(lethe, "engine_internals")  # unknown names are still AttributeErrors


def test_settings_precedence(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LETHE_MATCH_THRESHOLD=0.5\nLETHE_WORKERS=3\n")
    assert Settings().match_threshold == 0.5
    monkeypatch.setenv("LETHE_MATCH_THRESHOLD", "0.7")
    assert Settings().match_threshold == 0.7 and Settings().workers == 3
    assert Settings(match_threshold=0.8).match_threshold == 0.8


def test_invalid_settings_are_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_WORKERS", "many")
    monkeypatch.setenv("LETHE_DETECTOR", "magic")
    with pytest.raises(ConfigError, match="LETHE_WORKERS") as caught:
        Settings.load()
    assert "LETHE_DETECTOR" in str(caught.value)


def test_milvus_settings_with_the_faiss_index_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An operator who set where Milvus is but not LETHE_INDEX=milvus would otherwise run on a local
    FAISS index without noticing (the review's "ambiguous configuration is refused")."""
    monkeypatch.setenv("LETHE_MILVUS_URI", str(tmp_path / "milvus.db"))
    with pytest.raises(ConfigError, match="LETHE_MILVUS_URI set but LETHE_INDEX is faiss"):
        Settings.load()
    monkeypatch.setenv("LETHE_INDEX", "milvus")
    assert Settings.load().milvus_uri == str(tmp_path / "milvus.db")
