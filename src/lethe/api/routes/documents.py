"""Signed documents: the technical file for a data-protection officer or an administrator, and the
public key that checks every signature Lethe makes, for anyone without an account
(:mod:`lethe.privacy.technical_file`, :mod:`lethe.privacy.signatures`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from lethe.http.auth import Principal, require
from lethe.http.state import AppState, app_state
from lethe.privacy import signatures, technical_file

router = APIRouter(prefix="/api", tags=["documents"])
State = Annotated[AppState, Depends(app_state)]
#: Who may generate the technical file: those who answer for compliance.
DocumentReader = Annotated[Principal, require("admin", "dpo")]


@router.get("/technical-file")
def technical_file_get(state: State, caller: DocumentReader) -> dict[str, object]:
    """The technical documentation (AI Act Annex IV), the instructions for use (Art. 13) and the EU
    database registration fields (Annex VIII), generated now from the installation, with the
    signature record of each document's JSON and HTML and the public key (admin, dpo; audited
    `report.technical_file`)."""
    return technical_file.generate(state.engine.store, actor=caller.actor)


@router.get("/signing-key")
def signing_key(state: State) -> dict[str, str]:
    """The Ed25519 public key that checks this installation's signed documents (erasure receipts,
    access copies, the technical file): hex, PEM and its SHA-256 fingerprint. No login."""
    return signatures.public_key_info(state.engine.keyring)
