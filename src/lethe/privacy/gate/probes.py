"""A data-subject request's personal data: the requester's contact address and photos with their
templates, stored sealed (master key) while the request is open and deleted when it closes (only
the photos' hashes remain)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestEventRow, RequestProbeBlobRow, RequestProbeRow, RequestRow
from lethe.errors import PrivacyError
from lethe.privacy import audit

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
) -> int:
    """The request row with its sealed contact, each photo with its template and face count, its
    first event and audit entry, in one transaction. Returns the request id."""
    keyring = store.keyring
    with store.catalog.session() as session, session.begin():
        row = RequestRow(
            ref=secrets.token_hex(8),
            kind=kind,
            state="received",
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
                to_state="received",
                note=f"opened via {channel}",
            )
        )
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
