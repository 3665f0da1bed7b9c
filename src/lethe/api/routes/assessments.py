"""The DPIA, the FRIA and the Art. 30 record (:mod:`lethe.privacy.assessments`): the dpo and admin
roles read them; only a dpo answers their questions and signs them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from lethe.http.auth import Principal, require
from lethe.http.state import AppState, app_state
from lethe.privacy.assessments import MAX_ANSWER, Assessments

router = APIRouter(prefix="/api/assessments", tags=["assessments"])
State = Annotated[AppState, Depends(app_state)]
Reader = Annotated[Principal, require("admin", "dpo")]
Dpo = Annotated[Principal, require("dpo")]


class Answer(BaseModel):
    answer: str = Field(min_length=1, max_length=MAX_ANSWER, description="The answer (kept off the logs).")


def _assessments(state: AppState) -> Assessments:
    return Assessments(state.engine.store)


@router.get("")
def assessment_list(state: State, _caller: Reader) -> dict[str, object]:
    """The three documents (`dpia`, `fria`, `art30`): each with its unanswered questions (`blanks`) and
    its `signature` (`state`: `not_signed`, `signed` or `stale`; `changes`: what changed since signed)."""
    return {"documents": _assessments(state).listing()}


@router.get("/{document}")
def assessment_get(document: str, state: State, _caller: Reader) -> dict[str, object]:
    """One document generated now from the running system: `sections` keyed by the lettered point of
    the article (e.g. `a_systematic_description`), `questions` (`answer` null while blank), `blanks`
    and `signature`. `404` for an unknown document."""
    return _assessments(state).document(document)


@router.get("/{document}/answers")
def assessment_answers(document: str, state: State, _caller: Reader) -> dict[str, object]:
    """Every version of every answer of the document, oldest first."""
    return {"answers": _assessments(state).answer_history(document)}


@router.put("/{document}/answers/{question}")
def assessment_answer(
    document: str, question: str, body: Answer, state: State, caller: Dpo
) -> dict[str, object]:
    """Answer a question (dpo): a new version, audited `assessment.answer` with the answer's sha256.
    `404` for an unknown document or question, `422` for an answer under 3 characters."""
    return _assessments(state).answer(document, question, body.answer, actor=caller.actor)


@router.post("/{document}/sign")
def assessment_sign(document: str, state: State, caller: Dpo) -> dict[str, object]:
    """Sign the document as generated now (dpo): `409` while a question is unanswered. Records who,
    when, the document's sha256 and the fingerprint of the facts it rests on; audited
    `assessment.sign`."""
    return _assessments(state).sign(document, actor=caller.actor)
