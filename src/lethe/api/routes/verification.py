"""Two-person verification (:mod:`lethe.privacy.verification`): a search's candidates, the verifiers'
verdicts, marking a verified candidate identified; the admin's verification policy and users'
``verifier`` competence with its training date (:mod:`lethe.privacy.competence`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from lethe.http.auth import Admin, Operator, Reader
from lethe.http.params import RowId
from lethe.http.state import AppState, app_state
from lethe.privacy.verification import MAX_NOTE

router = APIRouter(prefix="/api", tags=["verification"])
State = Annotated[AppState, Depends(app_state)]


class VerdictBody(BaseModel):
    verdict: Literal["confirm", "reject"] = Field(description="Your own judgement of the candidate.")
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Why (audited, off the chain).")


class NoteBody(BaseModel):
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Audited, off the chain.")


class PolicyBody(BaseModel):
    required: Literal[1, 2] = Field(description="Distinct verifiers an action needs: 2, or 1 where exempt.")
    legal_reference: str | None = Field(
        default=None,
        max_length=500,
        description="The legal provision exempting this deployment (required to set 1).",
    )


class TrainingBody(BaseModel):
    trained_on: date = Field(description="The date of the user's training (AI literacy, Art. 4).")


@router.get("/searches/{seq}/candidates/{face_id}")
def candidate(seq: RowId, face_id: RowId, state: State, caller: Reader) -> dict[str, object]:
    """A candidate identification: `k of N verdicts given`; the others' verdicts (and, by default,
    the score) only once you gave your own verdict or the candidate is decided."""
    return _with_likelihood(state, state.engine.verification.candidate(seq, face_id, actor=caller.actor))


@router.get(
    "/searches/{seq}/candidates/{face_id}/probe",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The probe's face crop (JPEG)."}},
)
def probe_face(seq: RowId, face_id: RowId, state: State, caller: Reader) -> Response:
    """The face of the search's probe that was searched for, cut like a gallery crop, for a verifier
    to compare with the candidate: the `verifier` competence only (`409` otherwise), while the
    search log keeps the probe (a matched search, within the log retention; `404` after). Every view
    is audited (`probe.view`)."""
    jpeg = state.engine.candidate_probe_face(seq, face_id, actor=caller.actor)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.post("/searches/{seq}/candidates/{face_id}/verdict")
def verdict(seq: RowId, face_id: RowId, body: VerdictBody, state: State, caller: Reader) -> dict[str, object]:
    """Confirm or reject a candidate (the `verifier` competence, trained and not lapsed: `409`
    otherwise); one verdict per verifier (`409 conflict` for a second)."""
    return _with_likelihood(
        state,
        state.engine.verification.verdict(
            seq, face_id, verdict=body.verdict, note=body.note, actor=caller.actor
        ),
    )


@router.post("/searches/{seq}/candidates/{face_id}/identified")
def identified(
    seq: RowId, face_id: RowId, state: State, caller: Operator, body: NoteBody | None = None
) -> dict[str, object]:
    """Mark the person of a verified candidate identified (audited `verification.identified`);
    `409 refused` while the candidate is not verified."""
    note = body.note if body else None
    return state.engine.verification.mark_identified(seq, face_id, actor=caller.actor, note=note)


@router.get("/verification/policy")
def policy(state: State, _caller: Reader) -> dict[str, object]:
    """How many distinct verifiers an action needs, and the legal reference of an exemption."""
    return state.engine.verification.policy().as_dict()


@router.put("/verification/policy")
def set_policy(body: PolicyBody, state: State, caller: Admin) -> dict[str, object]:
    """Set the number of verifiers (admin; audited `verification.policy`): 1 needs the legal reference."""
    return state.engine.verification.set_required(
        body.required, legal_reference=body.legal_reference, actor=caller.actor
    ).as_dict()


@router.get("/users/{name}/competences")
def competences(name: str, state: State, _caller: Admin) -> dict[str, object]:
    """A user's competences with their training dates, held or lapsed."""
    verification = state.engine.verification
    today = verification.clock().date()
    return {"competences": [c.as_dict(today) for c in verification.competences.of(name)]}


@router.put("/users/{name}/competences/verifier")
def grant_verifier(name: str, body: TrainingBody, state: State, caller: Admin) -> dict[str, object]:
    """Record the user's `verifier` competence and training date (admin; audited `user.competence`);
    it lapses `LETHE_VERIFIER_TRAINING_DAYS` after that date."""
    verification = state.engine.verification
    held = verification.competences.grant(name, "verifier", trained_on=body.trained_on, actor=caller.actor)
    return held.as_dict(verification.clock().date())


@router.delete("/users/{name}/competences/verifier")
def revoke_verifier(name: str, state: State, caller: Admin) -> dict[str, object]:
    """Take the `verifier` competence from the user (admin; audited)."""
    revoked = state.engine.verification.competences.revoke(name, "verifier", actor=caller.actor)
    return {"user": name, "competence": "verifier", "revoked": revoked}


def _with_likelihood(state: AppState, view: dict[str, object]) -> dict[str, object]:
    """The candidate's view with its score's plain-language band and measured FPIR/FNIR, when the
    caller may see the score."""
    score = view.get("score")
    likely = state.engine.search.likelihood(float(score)).as_dict() if isinstance(score, float) else None
    return view | {"likelihood": likely}
