"""The consent commands of the command-line contract (../shared/CONTRACT.md): an ``enrolled_only``
source, ``lethe consent add`` and ``lethe consent withdraw``, driven as a user's script would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli import run

CONSENT_SOURCE = [
    "--basis", "consent", "--art9", "explicit_consent", "--purpose", "find my photos",
    "--jurisdiction", "FR", "--retention-days", "30", "--mode", "enrolled_only",
]  # fmt: skip

pytestmark = pytest.mark.usefixtures("default_models")


def _json(result: object) -> dict[str, object]:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    payload: dict[str, object] = json.loads(result.stdout)  # type: ignore[attr-defined]
    return payload


def test_consent_add_ingest_withdraw(tmp_path: Path, fixtures_dir: Path) -> None:
    data = tmp_path / "data"
    photos = tmp_path / "event"
    shutil.copytree(fixtures_dir / "group_labelled", photos)
    added = _json(run(data, "source", "add", "gala", *CONSENT_SOURCE, "--json"))
    assert added["source"] == "gala" and added["mode"] == "enrolled_only"

    selfie = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    consent = _json(
        run(data, "consent", "add", "gala", "--photo", str(selfie), "--contact", "k@example.org", "--json")
    )
    assert consent["source"] == "gala" and isinstance(consent["consent"], int)

    report = _json(run(data, "ingest", "gala", str(photos), "--json"))
    assert report["faces"] == 1  # Kit Harington in kit_with_rose.jpg; Rose Leslie, Obama, Biden discarded
    assert report["discarded"] >= 6  # type: ignore[operator]  # 1 + at least 3 + 2 others

    ledger = _json(run(data, "consent", "list", "--json"))
    assert [(c["consent"], c["faces"], c["withdrawn_at"]) for c in ledger["consents"]] == [  # type: ignore[union-attr, index]
        (consent["consent"], 1, None)
    ]
    assert _json(run(data, "consent", "list", "--offset", "1", "--json"))["consents"] == []
    assert len(_json(run(data, "consent", "list", "--limit", "1", "--json"))["consents"]) == 1  # type: ignore[arg-type]
    withdrawn = _json(run(data, "consent", "withdraw", str(consent["consent"]), "--json"))
    assert withdrawn["withdrawn"] is True and withdrawn["erased_faces"] == 1
    again = run(data, "consent", "withdraw", str(consent["consent"]), "--json")
    assert again.returncode != 0 and "already withdrawn" in again.stderr and again.stdout == ""


def test_consent_add_refuses_an_all_faces_source_with_one_line(tmp_path: Path, fixtures_dir: Path) -> None:
    data = tmp_path / "data"
    args = [*CONSENT_SOURCE[:-1], "all_faces"]
    _json(run(data, "source", "add", "archive", *args, "--json"))
    selfie = fixtures_dir / "identities" / "kit_harington" / "john1.jpeg"
    refused = run(data, "consent", "add", "archive", "--photo", str(selfie), "--contact", "k@x.org", "--json")
    assert refused.returncode == 4 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0 and "enrolled_only" in refused.stderr
