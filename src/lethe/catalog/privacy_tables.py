"""Tables of the privacy layer (migration 0003): requests, candidates, probes, suppression,
orders, erasure jobs, erased-photo tombstones and per-source keys; identity verifications and the
contact confirmation (migration 0010)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lethe.catalog.tables import Base, BigId, UTCDateTime


class SourceKeyRow(Base):
    """A source's data key, wrapped by the master key. Deleting the row crypto-shreds the source."""

    __tablename__ = "source_key"

    source_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestRow(Base):
    __tablename__ = "request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel: Mapped[str] = mapped_column(String(40))
    contact: Mapped[bytes] = mapped_column(LargeBinary)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Portal requests (migration 0010): SHA-256 of the one-time code sent to the contact address,
    #: when it came back, and how many wrong codes were tried.
    confirm_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    confirm_attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    #: The language the requester is written to in (migration 0018); unset: LETHE_DEFAULT_LANGUAGE.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class RequestMessageRow(Base):
    """A message to a requester (migration 0018, :mod:`lethe.privacy.communications`): its kind,
    language, channel and outcome (``draft``: for the DPO to send by hand; ``pending``, ``failed``:
    to be sent, retried; ``sent``), and its body with the body's SHA-256. Never the address."""

    __tablename__ = "request_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12), index=True)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generated_by: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = {"sqlite_autoincrement": True}


class RequestVerificationRow(Base):
    """One check of a requester's identity (migration 0010): how, by whom, when, and the verifier's
    attestation that the person checked is the person in the photos. The note is free text (it may
    name a document): it stays here, off the audit chain."""

    __tablename__ = "request_verification"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id"), index=True)
    method: Mapped[str] = mapped_column(String(30))
    verified_by: Mapped[str] = mapped_column(String(200))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attested: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class RequestEventRow(Base):
    __tablename__ = "request_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class RequestProbeRow(Base):
    """A photo the requester supplied: only its hash and face count outlive the request."""

    __tablename__ = "request_probe"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    faces: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class RequestProbeBlobRow(Base):
    """The encrypted photo and template; the row is deleted when the request closes."""

    __tablename__ = "request_probe_blob"

    probe_id: Mapped[int] = mapped_column(BigId, ForeignKey("request_probe.id"), primary_key=True)
    photo: Mapped[bytes] = mapped_column(LargeBinary)
    template: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The model that made ``template``; another model's probe is embedded again from ``photo``.
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RequestCandidateRow(Base):
    __tablename__ = "request_candidate"

    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("request.id"), primary_key=True)
    face_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(10))
    round: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str | None] = mapped_column(String(12), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SuppressionRow(Base):
    """An objection: the person's templates (encrypted), used only to keep them out."""

    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("request.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    templates: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    #: The model that made ``templates`` (lethe.model_ids).
    model_sha256: Mapped[str] = mapped_column(String(64))
    #: "objection": out of ingest and search; "restriction" (Art. 18): hidden from search only.
    scope: Mapped[str] = mapped_column(String(20), server_default="objection")

    __table_args__ = {"sqlite_autoincrement": True}


class LegalOrderRow(Base):
    __tablename__ = "legal_order"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    then_delete: Mapped[bool] = mapped_column(Boolean)
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(20))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    proof: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class ErasureJobRow(Base):
    """The intent of an erasure, committed before any deletion so a crash resumes it."""

    __tablename__ = "erasure_job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reason: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    order_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    face_ids: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    receipt: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class ErasedImageRow(Base):
    """A photo whose every face was erased: its hash only, so re-ingest does not bring it back."""

    __tablename__ = "erased_image"

    source_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OversightStopRow(Base):
    """A global stop of identification (AI Act Art. 14(4)(e)), migration 0015: in force while
    ``resumed_at`` is empty; the rows stay as the history of stops."""

    __tablename__ = "oversight_stop"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stopped_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_by: Mapped[str] = mapped_column(String(200))
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    resumed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class SearchUseRow(Base):
    """A use (a case) that groups an operator's searches (issue 18, migration 0016): open while
    ``closed_at`` is empty; ``close_reason`` is ``closed`` or ``timeout``. Its purpose and case
    reference are the erasable texts of the audit entry ``opened_seq`` (``use.open``)."""

    __tablename__ = "search_use"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_seq: Mapped[int | None] = mapped_column(BigId, nullable=True)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime())
    searches: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}


class SearchLogRow(Base):
    """One search of a use (migration 0016): its audit entry ``seq``, the probe's hash, and only when
    it matched the probe sealed under the log key until ``probe_expires_at`` (the log retention);
    ``probe`` is emptied (the bytes gone) when it expires. Written by the privacy gate only."""

    __tablename__ = "search_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigId, unique=True)
    use_id: Mapped[int] = mapped_column(BigId, ForeignKey("search_use.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    probe_sha256: Mapped[str] = mapped_column(String(64))
    matched: Mapped[bool] = mapped_column(Boolean)
    probe: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    probe_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    probe_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = {"sqlite_autoincrement": True}
