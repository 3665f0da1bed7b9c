"""Regulator's orders: a jurisdiction stop restricts every source of a country at once.

``stop`` marks the sources ``restricted`` in one transaction: from that commit on, search never
returns their faces and ingest refuses them. With ``then_delete`` their faces are erased (and the
sources' keys shredded) once no verified access request still needs them (an unverified one never
holds an order back); until then the order stays
``pending_delete`` and :func:`complete_pending` retries it (the service runs it on a schedule). The
order, its execution and the proof (counts before and after) are recorded and audited. A stop on a
country where no source is registered restricts nothing: its answer carries a ``warning``.

``lift`` ends an order in force (the regulator withdrew it, or it was issued in error): the sources
it covers become ``active`` again, searchable and open to ingest, except those another order still
in force covers (only orders restrict sources). Its deletion cancelled if it had not run; an order
whose deletion ran (``completed``, or an erasure job planned for it) cannot be lifted: the faces
are gone. Audited as ``order.lift`` with the stated reason kept off the chain.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from lethe.catalog.privacy_tables import ErasureJobRow, LegalOrderRow, RequestCandidateRow, RequestRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.sources import ISO3166_ALPHA2

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lethe.privacy.gate import Gate

#: States of an order that restricts its sources now.
IN_FORCE = ("executed", "pending_delete")


class Orders:
    """A regulator's jurisdiction orders over a store: stop, complete, list (erasure and key
    shredding through the gate)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.store = gate.store

    def stop(
        self, jurisdiction: str, *, then_delete: bool, actor: str, reference: str | None = None
    ) -> dict[str, object]:
        country = jurisdiction.strip().upper()
        if country not in ISO3166_ALPHA2:
            raise InputError(f"{jurisdiction!r} is not an ISO 3166-1 alpha-2 country code")
        at = now_utc()
        with self.store.catalog.session() as session, session.begin():
            sources = session.scalars(select(SourceRow).where(SourceRow.jurisdiction == country)).all()
            restricted = [s for s in sources if s.status == "active"]
            for source in restricted:
                source.status = "restricted"
            order = LegalOrderRow(
                kind="jurisdiction_stop",
                jurisdiction=country,
                then_delete=then_delete,
                reference=reference,
                issued_by=actor,
                issued_at=at,
                state="pending_delete" if then_delete else "executed",
            )
            session.add(order)
            session.flush()
            proof = {
                "sources": [s.id for s in sources],
                "newly_restricted": [s.id for s in restricted],
                "faces_hidden": _face_count(session, [s.id for s in sources]),
                "executed_at": at.isoformat(),
            }
            order.proof = json.dumps(proof)
            audit.append(
                session,
                actor=actor,
                action="order.stop",
                details={
                    "order_id": order.id,
                    "jurisdiction": country,
                    "then_delete": then_delete,
                    "sources_restricted": len(restricted),
                },
                at=at,
            )
            order_id = order.id
        result: dict[str, object] = {
            "order_id": order_id,
            "sources_restricted": len(restricted),
            "state": order.state,
        }
        if not sources:  # a typo in the country code, or sources not registered yet: say so
            result["warning"] = no_source_warning(country)
        if then_delete:
            result |= self.complete(order_id, actor=actor)
        return result

    def in_force_for(self, jurisdiction: str) -> list[int]:
        """The ids of the stop orders in force on a country."""
        with self.store.catalog.session() as session:
            return list(
                session.scalars(
                    select(LegalOrderRow.id).where(
                        LegalOrderRow.jurisdiction == jurisdiction.upper(), LegalOrderRow.state.in_(IN_FORCE)
                    )
                )
            )

    def cover(self, source_id: int, order_ids: list[int], *, actor: str) -> None:
        """A source registered in a stopped country (created restricted) joins the orders in force
        there: lifting them frees it, completing them erases its faces too."""
        at = now_utc()
        with self.store.catalog.session() as session, session.begin():
            for order in session.scalars(select(LegalOrderRow).where(LegalOrderRow.id.in_(order_ids))):
                proof = json.loads(order.proof or "{}")
                proof["sources"] = sorted({*proof.get("sources", []), source_id})
                order.proof = json.dumps(proof)
            audit.append(
                session,
                actor=actor,
                action="order.cover",
                details={"source_id": source_id, "order_ids": sorted(order_ids)},
                at=at,
            )

    def complete(self, order_id: int, *, actor: str) -> dict[str, object]:
        """Erase the stopped sources' faces if no open access request still needs them (under the
        write lock throughout: an order is never lifted while its deletion runs)."""
        with self.store.writing():
            return self._complete(order_id, actor=actor)

    def _complete(self, order_id: int, *, actor: str) -> dict[str, object]:
        with self.store.catalog.session() as session:
            order = session.get(LegalOrderRow, order_id)
            if order is None:
                raise NotFoundError(f"no order {order_id}")
            if order.state != "pending_delete":
                return {"state": order.state}
            source_ids = list(json.loads(order.proof or "{}").get("sources", []))
            blocking = _blocking_requests(session, source_ids)
            if blocking:
                return {"state": "pending_delete", "waiting_for_requests": blocking}
            face_ids = list(
                session.scalars(
                    select(FaceRow.id)
                    .join(ImageRow, FaceRow.image_id == ImageRow.id)
                    .where(ImageRow.source_id.in_(source_ids))
                )
            )
        receipt = self.gate.erase(face_ids, reason="jurisdiction order", actor=actor, order_id=order_id)
        self.gate.shred(source_ids)
        at = now_utc()
        with self.store.catalog.session() as session, session.begin():
            order = session.get(LegalOrderRow, order_id)
            if order is None:
                raise NotFoundError(f"no order {order_id}")
            for source in session.scalars(select(SourceRow).where(SourceRow.id.in_(source_ids))):
                source.status = "deleted"
            remaining = _face_count(session, source_ids)
            proof = json.loads(order.proof or "{}") | {
                "erased_faces": len(receipt.erased_faces),
                "erased_images": len(receipt.erased_images),
                "erasure_job": receipt.job_id,
                "keys_shredded": source_ids,
                "faces_remaining": remaining,
                "completed_at": at.isoformat(),
            }
            order.proof, order.state, order.completed_at = json.dumps(proof), "completed", at
            audit.append(
                session,
                actor=actor,
                action="order.complete",
                details={
                    "order_id": order_id,
                    "erased_faces": len(receipt.erased_faces),
                    "faces_remaining": remaining,
                },
                at=at,
            )
        self.store.catalog.checkpoint()
        return {"state": "completed", "erased_faces": len(receipt.erased_faces), "faces_remaining": remaining}

    def lift(self, order_id: int, *, reason: str, actor: str) -> dict[str, object]:
        """End an order in force: the sources it covers become active again (searchable, open to
        ingest), except those another order in force covers. ``PrivacyError`` once its deletion ran
        (the faces are gone) or when it was lifted already; ``NotFoundError`` for no such order."""
        reason = reason.strip()
        if len(reason) < 10:
            raise InputError("lifting an order needs a stated reason (at least 10 characters)")
        at = now_utc()
        with self.store.writing(), self.store.catalog.session() as session, session.begin():
            order = session.get(LegalOrderRow, order_id)
            if order is None:
                raise NotFoundError(f"no order {order_id}")
            erasing = session.scalar(
                select(ErasureJobRow.id).where(ErasureJobRow.order_id == order_id).limit(1)
            )
            if order.state == "completed" or erasing is not None:
                raise PrivacyError(
                    f"order {order_id} cannot be lifted: its deletion ran, the faces of its sources are gone"
                )
            if order.state not in IN_FORCE:
                raise PrivacyError(f"order {order_id} is {order.state}; only an order in force can be lifted")
            proof = json.loads(order.proof or "{}")
            covered = set(proof.get("sources", []))
            others: set[int] = set()
            for other in session.scalars(
                select(LegalOrderRow).where(LegalOrderRow.state.in_(IN_FORCE), LegalOrderRow.id != order_id)
            ):
                others.update(json.loads(other.proof or "{}").get("sources", []))
            restricted = session.scalars(
                select(SourceRow).where(SourceRow.id.in_(covered), SourceRow.status == "restricted")
            ).all()
            freed = sorted(s.id for s in restricted if s.id not in others)
            for source in restricted:
                if source.id in freed:
                    source.status = "active"
            kept = sorted(s.id for s in restricted if s.id not in freed)
            was = order.state
            order.state = "lifted"
            order.proof = json.dumps(
                proof | {"lifted_at": at.isoformat(), "lifted_by": actor, "sources_reactivated": freed,
                         "sources_kept_restricted": kept}
            )  # fmt: skip
            audit.append(
                session,
                actor=actor,
                action="order.lift",
                details={"order_id": order_id, "was": was, "sources_reactivated": len(freed),
                         "sources_kept_restricted": len(kept)},
                at=at,
                texts={"note": reason},
            )  # fmt: skip
        return {"order_id": order_id, "state": "lifted", "sources_reactivated": len(freed),
                "sources_kept_restricted": len(kept)}  # fmt: skip

    def complete_pending(self, *, actor: str = "system") -> list[dict[str, object]]:
        with self.store.catalog.session() as session:
            ids = list(
                session.scalars(select(LegalOrderRow.id).where(LegalOrderRow.state == "pending_delete"))
            )
        return [{"order_id": i} | self.complete(i, actor=actor) for i in ids]

    def list_orders(self) -> list[dict[str, object]]:
        """Every order with its state and proof; ``warning`` where it covers no source."""
        with self.store.catalog.session() as session:
            return [
                {
                    "id": o.id,
                    "kind": o.kind,
                    "jurisdiction": o.jurisdiction,
                    "then_delete": o.then_delete,
                    "reference": o.reference,
                    "issued_by": o.issued_by,
                    "issued_at": o.issued_at.isoformat(),
                    "state": o.state,
                    "completed_at": o.completed_at.isoformat() if o.completed_at else None,
                    "proof": json.loads(o.proof) if o.proof else None,
                    "warning": None
                    if json.loads(o.proof or "{}").get("sources")
                    else no_source_warning(o.jurisdiction),
                }
                for o in session.scalars(select(LegalOrderRow).order_by(LegalOrderRow.id))
            ]


def no_source_warning(country: str) -> str:
    return f"no source has jurisdiction {country}"


def _face_count(session: Session, source_ids: list[int]) -> int:
    if not source_ids:
        return 0
    return int(
        session.scalar(
            select(func.count(FaceRow.id))
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .where(ImageRow.source_id.in_(source_ids))
        )
        or 0
    )


def _blocking_requests(session: Session, source_ids: list[int]) -> list[int]:
    """Verified access requests that may still need these sources' faces: those not run yet (they
    might find the person there) and those with an undecided or confirmed candidate there.

    A request whose requester's identity is not verified holds nothing back (an anonymous portal
    submission, confirmed or not, could otherwise stall a regulator's order for as long as its
    sender liked); nor does one whose candidates there were all rejected by a reviewer. Three
    queries, whatever the number of requests."""
    waiting = list(
        session.scalars(
            select(RequestRow.id)
            .where(RequestRow.kind == "access", RequestRow.state.in_(("verified", "in_review")))
            .order_by(RequestRow.id)
        )
    )
    if not waiting or not source_ids:
        return []
    searched = set(
        session.scalars(
            select(RequestCandidateRow.request_id)
            .where(RequestCandidateRow.request_id.in_(waiting))
            .distinct()
        )
    )
    touching = set(
        session.scalars(
            select(RequestCandidateRow.request_id)
            .join(FaceRow, FaceRow.id == RequestCandidateRow.face_id)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .where(
                RequestCandidateRow.request_id.in_(waiting),
                ImageRow.source_id.in_(source_ids),
                or_(RequestCandidateRow.decision.is_(None), RequestCandidateRow.decision == "confirmed"),
            )
            .distinct()
        )
    )
    return [r for r in waiting if r not in searched or r in touching]
