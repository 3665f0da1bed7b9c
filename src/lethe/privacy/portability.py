"""Data portability (GDPR Art. 20; issue 19 item 1): ``portability.zip`` in an access export, for the
requester's faces in sources whose lawful basis is consent or a contract (Art. 20(1)(a)), in a
documented, machine-readable format another service can read: **the portability archive format,
version 1** (docs/privacy.md; ``README.txt`` and ``schema.json`` inside every archive).

An access request is the way in: every access export whose faces include at least one in a consent
or contract source carries the archive beside ``index.html``; the export records why when there is
none. Faces in sources on another basis (legitimate interests, a public task, a legal obligation,
vital interests) are not portable (Art. 20(1)(a)); the archive's manifest lists each of them with
that reason, so the requester sees what was left out and why. Their photos are in the access copy.

Per photo of a portable face, the archive holds (``photo-N/``, N the number the access copy gives
the photo):

- ``photo.jpg``: the whole photo held, read again only while its sha256 is the one ingested, at its
  full size and without the outline of the access copy, with **every other person's face blurred**
  (Art. 20(4): the rights of others; the same faces as the access copy blurs, see
  :mod:`lethe.privacy.access_photos`), re-encoded with no metadata of the original;
- ``metadata.json``: the source (name, lawful basis, Art. 9(2) condition, purpose, jurisdiction),
  when the photo was taken and collected, where it was published, the face boxes (in the pixels
  of ``photo.jpg``), and for each face the consent record that covers it (id, text version and the
  text's sha256, when and how it was given) where the source records consents;
- ``templates.json``: the requester's biometric templates computed from the photo, with the model
  (name and sha256) that computed them: they compare only with templates of the same model.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from PIL import Image
from sqlalchemy import select

from lethe.catalog.consent_tables import ConsentFaceRow, ConsentRow, ConsentTextRow
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.errors import ImageError, NotFoundError
from lethe.ingest.roots import never_ingested
from lethe.privacy.access_photos import JPEG_QUALITY, redacted
from lethe.privacy.photos import held_photo
from lethe.storage import atomic_write
from lethe.types import Box

if TYPE_CHECKING:
    from lethe.store import Store

ARCHIVE_NAME = "portability.zip"
FORMAT = "lethe-portability"
VERSION = 1
#: GDPR Art. 20(1)(a): the lawful bases whose data is portable.
PORTABLE_BASES = ("consent", "contract")


def not_portable_reason(basis: str) -> str:
    return f"not portable: lawful basis {basis} (Art. 20(1)(a))"


def write_archive(
    store: Store, folder: Path, document: Mapping[str, Any], blurred: Mapping[int, Sequence[Box]]
) -> dict[str, Any]:
    """Write ``folder/portability.zip`` from the access ``document`` (what ``export.json`` holds) when
    any of its faces is portable; ``blurred``: photo number -> the other faces' boxes the access copy
    blurred. What the export records of it (``file`` is ``None`` when nothing is portable)."""
    faces = list(document["faces"])
    portable = [f for f in faces if f["lawful_basis"] in PORTABLE_BASES]
    left_out = [
        {
            "photo_number": f["photo_number"],
            "face_id": f["face_id"],
            "source": f["source"],
            "lawful_basis": f["lawful_basis"],
            "reason": not_portable_reason(f["lawful_basis"]),
        }
        for f in faces
        if f["lawful_basis"] not in PORTABLE_BASES
    ]
    summary: dict[str, Any] = {
        "file": None,
        "format": FORMAT,
        "version": VERSION,
        "portable_faces": len(portable),
        "not_portable_faces": len(left_out),
    }
    if not portable:
        summary["words"] = (
            "None of your photos comes from a source that holds them on your consent or under a "
            "contract with you, so there is no portability archive (GDPR Art. 20(1)(a))."
        )
        return summary
    held = _held(store, [f["face_id"] for f in portable])
    numbers = sorted({f["photo_number"] for f in portable})
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": document["generated_at"],
        "request_ref": document["request"]["ref"],
        "controller": store.settings.controller_name,
        "photos": [],
        "not_portable": left_out,
    }
    forbidden = never_ingested(store.settings, [store.keyring.master_path])
    files: list[tuple[str, bytes]] = []
    for number in numbers:
        mine = [f for f in portable if f["photo_number"] == number]
        name = f"photo-{number}"
        first = held[mine[0]["face_id"]]
        if number in blurred:  # the access copy read it and knows which faces to blur
            photo, note = _photo(store, first, [Box(*f["box"]) for f in mine], blurred[number], forbidden)
        else:
            photo, note = None, "the photo is no longer at the place it was collected from, or has changed"
        if photo is not None:
            files.append((f"{name}/photo.jpg", photo))
        files.append((f"{name}/metadata.json", _json(_metadata(number, mine, held, photo, note))))
        files.append((f"{name}/templates.json", _json({"faces": [_template(f) for f in mine]})))
        manifest["photos"].append(
            {
                "number": number,
                "photo": f"{name}/photo.jpg" if photo is not None else None,
                "metadata": f"{name}/metadata.json",
                "templates": f"{name}/templates.json",
                "faces": [f["face_id"] for f in mine],
            }
        )
    files = [
        ("README.txt", readme().encode()),
        ("schema.json", _json(schema())),
        ("manifest.json", _json(manifest)),
        *files,
    ]
    atomic_write(folder / ARCHIVE_NAME, lambda handle: _zip(handle, files), durable=False)
    photos = sum(1 for p in manifest["photos"] if p["photo"])
    summary |= {
        "file": ARCHIVE_NAME,
        "portable_photos": len(numbers),
        "words": (
            f"The file {ARCHIVE_NAME} holds {len(numbers)} photo(s) of you ({photos} readable) that a "
            "source holds on your consent or under a contract with you, each with your face's "
            "position, where the photo comes from, your consent record where there is one, and your "
            "template, in a documented format (README.txt and schema.json inside) that you may give "
            "to another service (GDPR Art. 20). Other people's faces are blurred in it too. "
            + (
                f"{len(left_out)} face(s) in sources on another lawful basis are not portable; the "
                "archive's manifest.json lists them and why."
                if left_out
                else ""
            )
        ).strip(),
    }
    return summary


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode()


def _zip(handle: BinaryIO, files: Sequence[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(handle, "w") as archive:
        for name, data in files:
            kind = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=kind)


def _held(store: Store, face_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """face id -> the photo's uri and sha256, and the consent record covering the face (or None)."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(FaceRow.id, ImageRow.uri, ImageRow.sha256)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .where(FaceRow.id.in_(list(face_ids)))
        ).all()
        consents = session.execute(
            select(ConsentFaceRow.face_id, ConsentRow, ConsentTextRow)
            .join(ConsentRow, ConsentFaceRow.consent_id == ConsentRow.id)
            .join(ConsentTextRow, ConsentRow.text_id == ConsentTextRow.id)
            .where(ConsentFaceRow.face_id.in_(list(face_ids)))
            .order_by(ConsentRow.id)
        ).all()
        by_face: dict[int, dict[str, Any]] = {}
        for face_id, consent, text in consents:
            by_face.setdefault(
                face_id,
                {
                    "consent_id": consent.id,
                    "text_version": text.version,
                    "text_sha256": text.sha256,
                    "given_at": _iso(consent.given_at),
                    "channel": consent.channel,
                    "withdrawn_at": _iso(consent.withdrawn_at),
                },
            )
    return {
        face_id: {"uri": uri, "sha256": sha256, "consent": by_face.get(face_id)}
        for face_id, uri, sha256 in rows
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _photo(
    store: Store,
    held: Mapping[str, Any],
    mine: Sequence[Box],
    others: Sequence[Box],
    forbidden: Sequence[Path],
) -> tuple[bytes | None, str | None]:
    """The photo with every other face blurred, full size, no outline, no metadata; or why not."""
    try:
        image = held_photo(store, held["uri"], held["sha256"], forbidden=forbidden)
    except (NotFoundError, ImageError) as exc:
        return None, f"the photo could not be read again: {exc}"
    out = io.BytesIO()
    Image.fromarray(redacted(image.pixels, mine, others)).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), None


def _metadata(
    number: int,
    mine: Sequence[Mapping[str, Any]],
    held: Mapping[int, Mapping[str, Any]],
    photo: bytes | None,
    note: str | None,
) -> dict[str, Any]:
    first = mine[0]
    size = None
    if photo is not None:
        with Image.open(io.BytesIO(photo)) as im:
            size = {"width": im.width, "height": im.height}
    return {
        "photo_number": number,
        "photo": "photo.jpg" if photo is not None else None,
        "photo_note": note,
        "photo_size": size,
        "source": {
            "name": first["source"],
            "lawful_basis": first["lawful_basis"],
            "art9_condition": first["art9_condition"],
            "purpose": first["purpose"],
            "jurisdiction": first["jurisdiction"],
        },
        "source_url": first["source_url"],
        "captured_at": first["captured_at"],
        "ingested_at": first["ingested_at"],
        "faces": [
            {
                "face_id": f["face_id"],
                "box": dict(zip(("left", "top", "right", "bottom"), f["box"], strict=True)),
                "consent": held[f["face_id"]]["consent"],
            }
            for f in mine
        ],
    }


def _template(item: Mapping[str, Any]) -> dict[str, Any]:
    template = item.get("template")
    if template is None:
        return {"face_id": item["face_id"], "model": None, "model_sha256": None, "length": 0, "values": []}
    return {
        "face_id": item["face_id"],
        "model": template["model"],
        "model_sha256": template["model_sha256"],
        "length": template["length"],
        "values": template["values"],
    }


def readme() -> str:
    return f"""Your portability archive (GDPR Article 20) - {FORMAT}, version {VERSION}

This archive holds the photos of you that we hold on your consent or under a contract
with you, in a format another service can read. Other people's faces are blurred in
every photo (Article 20(4)).

Files
  manifest.json        what the archive holds: format, version, when it was made, your
                       request's reference, the controller, one entry per photo, and
                       the faces that are not portable, each with the reason.
  schema.json          a JSON Schema (draft 2020-12) of manifest.json and of each
                       photo's metadata.json and templates.json.
  photo-N/photo.jpg    photo N (the number your access copy gives it), full size,
                       other people's faces blurred, no outline, no metadata of the
                       original file. Missing when the photo could no longer be read
                       (metadata.json says why).
  photo-N/metadata.json  the source (name, lawful basis, Article 9(2) condition,
                       purpose, jurisdiction), when the photo was taken and collected,
                       where it was published, and each of your faces in it: its box
                       (left, top, right, bottom, in pixels of photo.jpg) and the
                       consent record covering it (id, text version, the text's
                       SHA-256, when and how consent was given), or null.
  photo-N/templates.json  your biometric template for each face: a list of numbers
                       computed by the model named (with its SHA-256). A template is
                       comparable only with templates of the same model.

Dates are ISO 8601 in Coordinated Universal Time (UTC).

Faces in sources held on another lawful basis (legitimate interests, a public task, a
legal obligation, vital interests) are not portable (Article 20(1)(a)): manifest.json
lists them under "not_portable". Your access copy (index.html, access_copy.pdf,
export.json beside this archive) holds every photo.
"""


def schema() -> dict[str, Any]:
    """The JSON Schema of the archive's JSON files (``schema.json`` in every archive)."""
    nullable_text = {"type": ["string", "null"]}
    box = {
        "type": "object",
        "required": ["left", "top", "right", "bottom"],
        "properties": {k: {"type": "integer"} for k in ("left", "top", "right", "bottom")},
        "additionalProperties": False,
    }
    consent = {
        "type": ["object", "null"],
        "required": ["consent_id", "text_version", "text_sha256", "given_at", "channel", "withdrawn_at"],
        "properties": {
            "consent_id": {"type": "integer"},
            "text_version": {"type": "integer"},
            "text_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "given_at": {"type": "string", "format": "date-time"},
            "channel": {"type": "string"},
            "withdrawn_at": nullable_text,
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:lethe:{FORMAT}:{VERSION}",
        "title": f"{FORMAT} version {VERSION}",
        "description": "The JSON files of a Lethe portability archive: manifest.json (this schema's "
        "root), photo-N/metadata.json ($defs/metadata) and photo-N/templates.json ($defs/templates).",
        "type": "object",
        "required": [
            "format",
            "version",
            "generated_at",
            "request_ref",
            "controller",
            "photos",
            "not_portable",
        ],
        "properties": {
            "format": {"const": FORMAT},
            "version": {"const": VERSION},
            "generated_at": {"type": "string", "format": "date-time"},
            "request_ref": {"type": "string"},
            "controller": nullable_text,
            "photos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["number", "photo", "metadata", "templates", "faces"],
                    "properties": {
                        "number": {"type": "integer", "minimum": 1},
                        "photo": nullable_text,
                        "metadata": {"type": "string"},
                        "templates": {"type": "string"},
                        "faces": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                    },
                },
            },
            "not_portable": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["photo_number", "face_id", "source", "lawful_basis", "reason"],
                    "properties": {
                        "photo_number": {"type": "integer"},
                        "face_id": {"type": "integer"},
                        "source": {"type": "string"},
                        "lawful_basis": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
        "$defs": {
            "metadata": {
                "type": "object",
                "required": [
                    "photo_number",
                    "photo",
                    "photo_note",
                    "photo_size",
                    "source",
                    "source_url",
                    "captured_at",
                    "ingested_at",
                    "faces",
                ],  # fmt: skip
                "properties": {
                    "photo_number": {"type": "integer"},
                    "photo": nullable_text,
                    "photo_note": nullable_text,
                    "photo_size": {
                        "type": ["object", "null"],
                        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                    },
                    "source": {
                        "type": "object",
                        "required": ["name", "lawful_basis", "art9_condition", "purpose", "jurisdiction"],
                        "properties": {
                            "lawful_basis": {"enum": list(PORTABLE_BASES)},
                            "jurisdiction": {"type": "string", "pattern": "^[A-Z]{2}$"},
                        },
                    },
                    "source_url": nullable_text,
                    "captured_at": nullable_text,
                    "ingested_at": {"type": "string", "format": "date-time"},
                    "faces": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["face_id", "box", "consent"],
                            "properties": {"face_id": {"type": "integer"}, "box": box, "consent": consent},
                        },
                    },
                },
            },
            "templates": {
                "type": "object",
                "required": ["faces"],
                "properties": {
                    "faces": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["face_id", "model", "model_sha256", "length", "values"],
                            "properties": {
                                "face_id": {"type": "integer"},
                                "model": nullable_text,
                                "model_sha256": nullable_text,
                                "length": {"type": "integer"},
                                "values": {"type": "array", "items": {"type": "number"}},
                            },
                        },
                    }
                },
            },
        },
    }
