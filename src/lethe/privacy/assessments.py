"""The DPIA (GDPR Art. 35), the FRIA (EU AI Act Art. 27) and the record of processing activities
(GDPR Art. 30), generated from the running system, answered where only a person can answer, signed
by a data-protection officer, and flagged **stale** when what they rest on changes (issue 19).

- **Generated, never typed.** Each document is built at each reading from the live facts
  (:mod:`lethe.privacy.assessment_facts`: sources, model, thresholds and their measured error rates,
  oversight, usage, the rights workflow, the measures in force, the recipients of the disclosure
  ledger) by :mod:`lethe.privacy.assessment_documents`.
- **Blanks.** What needs a person (the necessity justification, the consultation of data subjects,
  the residual risk, ...) is a question shown as "To be answered by the controller" until a DPO
  answers it (:meth:`Assessments.answer`). Answers are versioned (the newest in force, every version
  kept) and audited ``assessment.answer`` with the document, the question, the version and the
  answer's sha256: never the answer's text, which is kept off the chain and off the logs.
- **Signing.** A DPO signs a document whose questions are all answered (:meth:`Assessments.sign`):
  who, when, the sha256 of the document as generated then (kept with it), and the fingerprint of the
  material facts (:func:`lethe.privacy.assessment_facts.material`, plus the version of each answer;
  the recipients count for the Art. 30 record only). Audited ``assessment.sign``.
- **Staleness.** A signed document whose material facts now differ from those signed is ``stale``,
  and says what changed: ``match threshold 0.525 -> 0.55 since signed on 7 December 2026``.
  Unsigned: ``not signed``.

:func:`pack_files` gives the evidence pack's files for the three documents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lethe.catalog.assessment_tables import AssessmentAnswerRow, AssessmentSignatureRow
from lethe.catalog.repository import now_utc
from lethe.errors import ConflictError, InputError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.access_words import long_date
from lethe.privacy.assessment_documents import BLANK, QUESTIONS, Question, applicable, art30, dpia, fria
from lethe.privacy.assessment_facts import gather, material
from lethe.privacy.assessment_staleness import changes
from lethe.privacy.pages import render

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lethe.store import Store

Builder = Callable[[dict[str, Any]], tuple[dict[str, dict[str, Any]], list[Question]]]

#: name -> (title, law, builder, file name in the evidence pack).
DOCUMENTS: dict[str, tuple[str, str, Builder, str]] = {
    "dpia": ("Data protection impact assessment", "GDPR Art. 35", dpia, "dpia"),
    "fria": ("Fundamental rights impact assessment", "EU AI Act Art. 27", fria, "fria"),
    "art30": ("Record of processing activities", "GDPR Art. 30(1)", art30, "record_of_processing_art30"),
}
MIN_ANSWER, MAX_ANSWER = 3, 20_000


def document_names() -> str:
    return ", ".join(DOCUMENTS)


def _check(document: str) -> str:
    if document not in DOCUMENTS:
        raise NotFoundError(f"no document {document!r}: the documents are {document_names()}")
    return document


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def fingerprint(facts: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(facts)).hexdigest()


def document_sha256(doc: dict[str, Any]) -> str:
    """The sha256 of a document's content: everything but when it was generated and its signature."""
    content = {k: v for k, v in doc.items() if k not in ("generated_at", "generated_words", "signature")}
    return hashlib.sha256(canonical(content)).hexdigest()


class Assessments:
    """The three documents of one store (see the module). The clock is a parameter so that tests
    move time instead of sleeping."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.store = store
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------------

    def material(self, document: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """The facts a signature of ``document`` vouches for, now: the material facts (the recipients
        for the Art. 30 record only) and the version of each answer."""
        facts = dict(base if base is not None else material(self.store))
        if document != "art30":
            facts.pop("recipients", None)
        with self.store.catalog.session() as session:
            facts["answers"] = {q: a.version for q, a in _answers(session, document).items()}
        return facts

    def status(self, document: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Whether ``document`` is signed, and whether what it rests on changed since (``stale``,
        with the changes in words)."""
        _check(document)
        with self.store.catalog.session() as session:
            signed = _signature(session, document)
        if signed is None:
            return {"state": "not_signed", "stale": False, "words": "not signed", "changes": []}
        now = self.material(document, base)
        then = json.loads(signed.facts)
        changed = changes(then, now) if fingerprint(now) != signed.fingerprint else []
        day = long_date(signed.signed_at)
        words = (
            f"{'; '.join(changed)} since signed on {day}"
            if changed
            else f"signed on {day}, nothing changed since"
        )
        return {
            "state": "stale" if changed else "signed",
            "stale": bool(changed),
            "words": words,
            "changes": changed,
            "signed_by": signed.signed_by,
            "signed_at": signed.signed_at.isoformat(),
            "signed_words": day,
            "document_sha256": signed.document_sha256,
            "fingerprint_signed": signed.fingerprint,
            "fingerprint_now": fingerprint(now),
        }

    def listing(self) -> list[dict[str, Any]]:
        """Each document with its title, law, unanswered questions and signature status (without
        generating the documents: cheap enough for a dashboard)."""
        base = material(self.store)
        out = []
        for name, (title, law, _, _) in DOCUMENTS.items():
            with self.store.catalog.session() as session:
                answered = _answers(session, name)
            blanks = [q.id for q in applicable(name, base) if q.id not in answered]
            out.append(
                {"document": name, "title": title, "law": law, "blanks": blanks}
                | {"signature": self.status(name, base)}
            )
        return out

    def document(self, document: str) -> dict[str, Any]:
        """``document`` generated now from the live facts and the answers in force, with its
        signature status (see :mod:`lethe.privacy.assessment_documents` for its shape)."""
        title, law, build, _ = DOCUMENTS[_check(document)]
        facts = gather(self.store, now=self.clock())
        sections, questions = build(facts)
        with self.store.catalog.session() as session:
            answers = _answers(session, document)
        listed = [_question(q, answers.get(q.id)) for q in questions]
        doc = {
            "document": document,
            "title": title,
            "law": law,
            "controller": facts["controller"],
            "generated_at": facts["generated_at"],
            "generated_words": facts["generated_words"],
            "sections": sections,
            "questions": listed,
            "blanks": [q["id"] for q in listed if q["answer"] is None],
        }
        return doc | {"signature": self.status(document, facts["material"])}

    def html(self, document: str, doc: dict[str, Any] | None = None) -> str:
        """``document`` as a standalone, styled HTML page (the evidence pack's)."""
        doc = doc or self.document(document)
        return render("assessment.html", doc=doc, questions=_by_id(doc), blank=BLANK, editable=False)

    def body(self, doc: dict[str, Any], *, editable: bool) -> str:
        """The document's body (the DPO page wraps it); ``editable`` adds an answer form to each
        question."""
        return render("assessment_body.html", doc=doc, questions=_by_id(doc), blank=BLANK, editable=editable)

    def answer_history(self, document: str) -> list[dict[str, Any]]:
        """Every version of every answer of ``document``, oldest first."""
        with self.store.catalog.session() as session:
            rows = session.scalars(
                select(AssessmentAnswerRow)
                .where(AssessmentAnswerRow.document == _check(document))
                .order_by(AssessmentAnswerRow.id)
            ).all()
            return [_answer_dict(r) for r in rows]

    # -- writing ---------------------------------------------------------------------------------

    def answer(self, document: str, question: str, text: str, *, actor: str) -> dict[str, Any]:
        """Answer (or answer again) ``question`` of ``document``: a new version, audited
        ``assessment.answer`` with the answer's sha256, never its text."""
        known = {q.id for q in QUESTIONS[_check(document)]}
        if question not in known:
            raise NotFoundError(
                f"the {document} has no question {question!r}: its questions are {', '.join(sorted(known))}"
            )
        answer = (text or "").strip()
        if not MIN_ANSWER <= len(answer) <= MAX_ANSWER:
            raise InputError(f"an answer is {MIN_ANSWER} to {MAX_ANSWER} characters, got {len(answer)}")
        now = self.clock()
        try:
            with self.store.catalog.session() as session, session.begin():
                version = 1 + (
                    session.scalar(
                        select(func.max(AssessmentAnswerRow.version)).where(
                            AssessmentAnswerRow.document == document, AssessmentAnswerRow.question == question
                        )
                    )
                    or 0
                )
                details = {
                    "document": document,
                    "question": question,
                    "version": version,
                    "answer_sha256": hashlib.sha256(answer.encode()).hexdigest(),
                }
                entry = audit.append(
                    session, actor=actor, action="assessment.answer", details=details, at=now
                )
                row = AssessmentAnswerRow(
                    document=document,
                    question=question,
                    version=version,
                    answer=answer,
                    answered_by=actor,
                    answered_at=now,
                    audit_seq=entry.seq,
                )
                session.add(row)
                session.flush()
                return _answer_dict(row)
        except IntegrityError as exc:
            raise ConflictError(f"question {question!r} was answered at the same moment: try again") from exc

    def sign(self, document: str, *, actor: str) -> dict[str, Any]:
        """Sign ``document`` as generated now (every question answered), audited
        ``assessment.sign`` with its sha256 and the fingerprint of what it rests on."""
        doc = self.document(document)
        if doc["blanks"]:
            raise PrivacyError(
                f"the {document} cannot be signed while {len(doc['blanks'])} question(s) wait for the "
                f"controller's answer: {', '.join(doc['blanks'])}"
            )
        facts = self.material(document)
        sha, mark = document_sha256(doc), fingerprint(facts)
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            details = {
                "document": document,
                "document_sha256": sha,
                "fingerprint": mark,
                "was": doc["signature"]["state"],
            }
            entry = audit.append(session, actor=actor, action="assessment.sign", details=details, at=now)
            session.add(
                AssessmentSignatureRow(
                    document=document,
                    signed_by=actor,
                    signed_at=now,
                    document_sha256=sha,
                    fingerprint=mark,
                    facts=canonical(facts).decode(),
                    content=canonical(doc | {"signature": None}).decode(),
                    audit_seq=entry.seq,
                )
            )
        return {"document": document, "signed_by": actor, "signed_at": now.isoformat()} | {
            "document_sha256": sha,
            "fingerprint": mark,
            "audit_seq": entry.seq,
        }

    def signed_document(self, document: str) -> dict[str, Any] | None:
        """The document exactly as it was signed last, or None."""
        with self.store.catalog.session() as session:
            signed = _signature(session, _check(document))
        return json.loads(signed.content) if signed is not None else None


def _by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["id"]: q for q in doc["questions"]}


def _signature(session: Session, document: str) -> AssessmentSignatureRow | None:
    return session.scalars(
        select(AssessmentSignatureRow)
        .where(AssessmentSignatureRow.document == document)
        .order_by(AssessmentSignatureRow.id.desc())
        .limit(1)
    ).first()


def _answers(session: Session, document: str) -> dict[str, AssessmentAnswerRow]:
    """question -> its newest answer."""
    newest: dict[str, AssessmentAnswerRow] = {}
    rows = session.scalars(
        select(AssessmentAnswerRow)
        .where(AssessmentAnswerRow.document == document)
        .order_by(AssessmentAnswerRow.version)
    )
    for row in rows:
        newest[row.question] = row
    return newest


def _answer_dict(row: AssessmentAnswerRow) -> dict[str, Any]:
    return {
        "document": row.document,
        "question": row.question,
        "version": row.version,
        "answer": row.answer,
        "answered_by": row.answered_by,
        "answered_at": row.answered_at.isoformat(),
    }


def _question(q: Question, row: AssessmentAnswerRow | None) -> dict[str, Any]:
    return {
        "id": q.id,
        "section": q.section,
        "law": q.law,
        "question": q.text,
        "answer": row.answer if row else None,
        "shown": row.answer if row else BLANK,
        "version": row.version if row else 0,
        "answered_by": row.answered_by if row else None,
        "answered_at": row.answered_at.isoformat() if row else None,
        "answered_words": long_date(row.answered_at) if row else None,
    }


def pack_files(store: Store, *, now: datetime) -> dict[str, bytes]:
    """The evidence pack's files of this part: for each document its HTML and JSON as generated
    ``now`` with its signature status (``dpia.html``, ``dpia.json``, ``fria.*``,
    ``record_of_processing_art30.*``), and the document as last signed (``*_signed.json``) where one
    was signed."""
    assessments = Assessments(store, clock=lambda: now)
    files: dict[str, bytes] = {}
    for name, (_, _, _, stem) in DOCUMENTS.items():
        doc = assessments.document(name)
        files[f"{stem}.json"] = json.dumps(doc, indent=2, default=str).encode()
        files[f"{stem}.html"] = assessments.html(name, doc).encode()
        signed = assessments.signed_document(name)
        if signed is not None:
            files[f"{stem}_signed.json"] = json.dumps(signed, indent=2, default=str).encode()
    return files
