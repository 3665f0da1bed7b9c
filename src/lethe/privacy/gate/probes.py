"""A data-subject request's personal data: the requester's contact address and photos with their
templates, stored sealed (master key) while the request is open and deleted when it closes (only
the photos' hashes remain); and the message that asks a portal requester to confirm the contact
address, left in the outbox for the operator's mailer (``LETHE_CONTACT_OUTBOX_DIR``) until the code
comes back or the request expires."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestEventRow, RequestProbeBlobRow, RequestProbeRow, RequestRow
from lethe.errors import PrivacyError
from lethe.privacy import audit
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.store import Store


def contact_aad(request_id: int) -> bytes:
    return f"request-contact:{request_id}".encode()


def probe_aad(probe_id: int) -> bytes:
    return f"request-probe:{probe_id}".encode()


def open_request(
    store: Store,
    *,
    kind: str,
    photos: Sequence[bytes],
    templates: Sequence[np.ndarray],
    faces: Sequence[int],
    contact: str,
    channel: str,
    actor: str,
    received: datetime,
    due: datetime,
    confirm_code: str | None = None,
    confirm_hash: str | None = None,
    confirm_until: datetime | None = None,
    language: str | None = None,
) -> int:
    """The request row with its sealed contact, each photo with its template and face count, its
    first event and audit entry, in one transaction. Returns the request id. With ``confirm_code``
    the request is ``unconfirmed`` and the message carrying the code is written to the outbox
    inside the transaction (no request is stored whose message could not be written)."""
    keyring = store.keyring
    with store.catalog.session() as session, session.begin():
        row = RequestRow(
            ref=secrets.token_hex(8),
            kind=kind,
            state="unconfirmed" if confirm_code else "received",
            confirm_hash=confirm_hash,
            language=language,
            received_at=received,
            due_at=due,
            channel=channel,
            contact=b"",
            outcome=None,
        )
        session.add(row)
        session.flush()
        row.contact = keyring.seal_master(contact.encode(), contact_aad(row.id))
        for photo, template, count in zip(photos, templates, faces, strict=True):
            probe = RequestProbeRow(
                request_id=row.id, sha256=hashlib.sha256(photo).hexdigest(), faces=count, added_at=received
            )
            session.add(probe)
            session.flush()
            aad = probe_aad(probe.id)
            session.add(
                RequestProbeBlobRow(
                    probe_id=probe.id,
                    photo=keyring.seal_master(photo, aad + b":photo"),
                    template=keyring.seal_master(
                        np.asarray(template, np.float32).tobytes(), aad + b":template"
                    ),
                    model_sha256=store.model_sha256,
                )
            )
        session.add(
            RequestEventRow(
                request_id=row.id,
                at=received,
                actor=actor,
                from_state=None,
                to_state=row.state,
                note=f"opened via {channel}",
            )
        )
        if confirm_code:
            _write_message(store, row.id, row.ref, contact, confirm_code, confirm_until or due)
        audit.append(
            session,
            actor=actor,
            action="request.open",
            details={"request_id": row.id, "kind": kind, "photos": len(photos), "channel": channel},
            at=received,
        )
        return row.id


def replace_template(store: Store, probe_id: int, template: np.ndarray) -> None:
    """A probe's template made again by the configured embedder (its photo is kept while the request
    is open)."""
    with store.catalog.session() as session, session.begin():
        blob = session.get(RequestProbeBlobRow, probe_id)
        if blob is None:
            raise PrivacyError(f"probe {probe_id} holds no photo any more")
        vector = np.asarray(template, np.float32).tobytes()
        blob.template = store.keyring.seal_master(vector, probe_aad(probe_id) + b":template")
        blob.model_sha256 = store.model_sha256


def drop(session: Session, request_id: int, at: datetime) -> int:
    """Delete the requester's photos and templates inside the caller's transaction (the request
    closes in it); their hashes stay. Returns the number of photos."""
    probes = session.scalars(select(RequestProbeRow).where(RequestProbeRow.request_id == request_id)).all()
    for probe in probes:
        blob = session.get(RequestProbeBlobRow, probe.id)
        if blob is not None:
            session.delete(blob)
        probe.deleted_at = at
    return len(probes)


def outbox(store: Store) -> Path:
    """The folder the operator's mailer reads (``LETHE_CONTACT_OUTBOX_DIR``, default ``outbox/`` in the
    data folder)."""
    configured = store.settings.contact_outbox_dir
    return configured.expanduser() if configured is not None else store.settings.data_dir / "outbox"


def _message_path(store: Store, request_id: int) -> Path:
    return outbox(store) / f"request-{request_id}.json"


#: The portal's status page, where the requester asks about a request with its reference and code.
STATUS_PATH = "/portal/status"


def _write_message(store: Store, request_id: int, ref: str, contact: str, code: str, until: datetime) -> None:
    path = f"/portal?reference={ref}&code={code}"
    message = {
        "to": contact,
        "subject": f"Confirm your request {ref}",
        "body": (
            "Someone asked, with this address, for a data-subject request about photos held by this "
            f"service (reference {ref}). If it was you, confirm it with the code {code} on the portal "
            f"page ({path}) before {until:%Y-%m-%d %H:%M} UTC. If it was not you, ignore this message: "
            "the request and its photos are then deleted. Keep the code: with the reference, the status "
            f"page ({STATUS_PATH}) tells you where your request stands."
        ),
        "reference": ref,
        "code": code,
        "confirm_path": path,
        "status_path": STATUS_PATH,
        "expires_at": until.isoformat(),
    }
    atomic_write(_message_path(store, request_id), json.dumps(message, indent=2).encode())


def drop_message(store: Store, request_id: int) -> bool:
    """Delete the request's waiting confirmation message (it holds the contact address), if the mailer
    has not taken it yet. Whether one was there."""
    private_dir(outbox(store))
    try:
        _message_path(store, request_id).unlink()
    except FileNotFoundError:
        return False
    return True
