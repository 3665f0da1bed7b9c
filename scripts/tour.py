"""The command-line tour that `make tour` runs (the web UI's tour is in README.md, `make run`).

Registers a source with its lawful basis, ingests a folder of real photos, and searches it with one
photo of a person. Photos: the shared fixtures when ``LETHE_TEST_DATA`` points at them, otherwise the
public example photos inside the ``face_recognition`` source package, fetched from PyPI with pip.
Each step is the plain ``lethe`` command, printed before it runs, so you can repeat it by hand.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LETHE = Path(sys.executable).with_name("lethe")
CACHE = REPO / ".cache" / "tour"


def photos() -> tuple[Path, Path]:
    """(folder to ingest, probe photo)."""
    shared = Path(os.environ.get("LETHE_TEST_DATA", REPO.parent / "shared" / "data")) / "fixtures"
    if (shared / "identities").is_dir():
        return shared, shared / "identities" / "barack_obama" / "obama.jpg"
    folder = CACHE / "test_images"
    if not folder.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        print("fetching example photos (the face_recognition 1.3.0 source package) from PyPI ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "face_recognition==1.3.0", "-d", str(CACHE)],
            check=True,
        )  # fmt: skip
        archive = next(CACHE.glob("face_recognition-1.3.0.tar.gz"))
        folder.mkdir()
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if "/tests/test_images/" in member.name and member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        (folder / Path(member.name).name).write_bytes(extracted.read())
    return folder, folder / "obama.jpg"


def lethe(*args: str, check: bool = True) -> int:
    print(f"\n$ lethe {shlex.join(args)}", flush=True)
    return subprocess.run([str(LETHE), *args], check=check).returncode


def main() -> None:
    os.environ.setdefault("LETHE_DATA_DIR", str(REPO / "data" / "tour"))
    # Who acts: every action is audited under a name (docs/cli.md, "Who acts").
    os.environ.setdefault("LETHE_ACTOR", "tour")
    folder, probe = photos()
    print(f"data folder: {os.environ['LETHE_DATA_DIR']}\nacting as: {os.environ['LETHE_ACTOR']}")
    print(f"photos: {folder}")
    lethe(
        "source", "add", "tour", "--basis", "consent", "--art9", "explicit_consent",
        "--purpose", "Lethe tour: find my photos", "--jurisdiction", "FR", "--retention-days", "30",
        check=False,
    )  # fmt: skip
    # A consent source indexes only the people who enrolled (mode enrolled_only): enrol one guest,
    # then the ingest stores their faces and discards everyone else's without storing them.
    lethe("consent", "add", "tour", "--photo", str(probe), "--contact", "guest@example.org", check=False)
    lethe("ingest", "tour", str(folder))
    lethe("source", "list")
    lethe("search", str(probe), "--purpose", "tour: find this person's photos", "--top", "10")
    print("\nNext: `lethe --help`, and README.md for the tour explained.")


if __name__ == "__main__":
    main()
