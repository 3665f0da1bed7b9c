"""Signed documents: the public key that checks every signature Lethe makes, for anyone without an
account (:mod:`lethe.privacy.signatures`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from lethe.http.state import AppState, app_state
from lethe.privacy import signatures

router = APIRouter(prefix="/api", tags=["documents"])
State = Annotated[AppState, Depends(app_state)]


@router.get("/signing-key")
def signing_key(state: State) -> dict[str, str]:
    """The Ed25519 public key that checks this installation's signed documents (erasure receipts,
    access copies, the technical file): hex, PEM and its SHA-256 fingerprint. No login."""
    return signatures.public_key_info(state.engine.keyring)
