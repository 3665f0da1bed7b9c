"""A registered source's life after ``source add``: edit its declaration, suspend and resume it,
delete it. The CLI (``lethe source edit|suspend|resume|delete``), the API and the sources page all
call :class:`SourceLifecycle` (``engine.source_lifecycle``).

- **edit**: the purpose, the retention period and the declaration fields a data-protection officer
  answers for (Art. 6 basis, Art. 9(2) condition, legal reference, legitimate-interests assessment,
  collection) are changed, re-validated as ``source add`` validates them (with its warnings, refused
  under ``LETHE_STRICT_DECLARATIONS``), and audited as ``source.edit`` with the values before and
  after (the purpose, free text, off the chain). The name, jurisdiction and mode stay: they decide
  which orders cover the source and which faces it stored. A changed retention applies to the
  photos already stored at the next retention sweep (``lethe retention run``, or the service's
  maintenance pass).
- **suspend**: the status ``suspended``, the machinery a regulator's stop order uses (a source whose
  status is not ``active`` is never searched and refuses ingest): its faces leave search results
  from that commit on, ingest into it is refused, and rights requests still reach its faces (access,
  erasure, objection look at every source). **resume** makes it ``active`` again, or ``restricted``
  where a stop order on its country is in force (the order then covers it, and lifting the order
  frees it). A stop order leaves a suspended source suspended, and lifting one never resumes it.
- **delete**: needs the source's name typed again; refused while a verified access request may
  still need its faces (as a stop order with deletion waits). The status becomes ``deleted`` first
  (no search, no ingest), then the gate erases every face, template, crop and photo record of the
  source with an erasure receipt and shreds its key (:mod:`lethe.privacy.gate.sources`). The source
  row stays, as the record that it existed and was deleted. Run again, a deletion finishes what a
  crash interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import select

from lethe.catalog.repository import now_utc
from lethe.catalog.tables import SourceRow
from lethe.errors import ConflictError, InputError, LawfulBasisError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.orders import Orders, _blocking_requests
from lethe.privacy.sources import SourceSpec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lethe.catalog import Source
    from lethe.privacy.gate import Gate

#: Fields ``edit`` may change, with the name each has in the declaration.
EDITABLE = {
    "purpose": "purpose",
    "retention_days": "retention_days",
    "basis": "lawful_basis",
    "art9": "art9_condition",
    "legal_reference": "legal_reference",
    "lia_reference": "lia_reference",
    "collection": "collection",
}
#: What a change of retention means for the photos already stored.
RETENTION_NOTE = (
    "the new retention applies to the photos already stored at the next retention sweep "
    "(lethe retention run, or the service's maintenance pass)"
)
SUSPENDED = "suspended"


class SourceLifecycle:
    """Edit, suspend, resume and delete sources (see the module)."""

    def __init__(self, gate: Gate, orders: Orders, *, strict_declarations: bool) -> None:
        self.gate = gate
        self.store = gate.store
        self.orders = orders
        self.strict = strict_declarations

    # -- edit ------------------------------------------------------------------------------------

    def edit(self, name: str, changes: Mapping[str, object], *, actor: str) -> dict[str, object]:
        """Change declaration fields (keys of :data:`EDITABLE`; ``None`` or an empty text clears a
        reference). Answers ``{source, changed, warnings}``, and ``retention_note`` when the retention
        changed."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise InputError(
                f"cannot edit {', '.join(unknown)}: only {', '.join(EDITABLE)} (name, jurisdiction and "
                "mode stay; register a new source for those)"
            )
        source = self._source(name)
        if source.status == "deleted":
            raise ConflictError(f"source {name!r} is deleted; it cannot be edited")
        current = SourceSpec.of(source)
        fields = {
            "name": current.name,
            "lawful_basis": current.lawful_basis,
            "art9_condition": current.art9_condition,
            "purpose": current.purpose,
            "jurisdiction": current.jurisdiction,
            "retention_days": current.retention_days,
            "mode": current.mode,
            "legal_reference": current.legal_reference,
            "lia_reference": current.lia_reference,
            "collection": current.collection,
        }
        for key, value in changes.items():
            fields[EDITABLE[key]] = value
        spec = SourceSpec.validated(**fields)  # type: ignore[arg-type]
        warnings = spec.warnings()
        if warnings and self.strict:
            raise LawfulBasisError("declaration refused (LETHE_STRICT_DECLARATIONS): " + "; ".join(warnings))
        changed = {
            key: (getattr(current, attr), getattr(spec, attr))
            for key, attr in EDITABLE.items()
            if getattr(current, attr) != getattr(spec, attr)
        }
        answer: dict[str, object] = {"source": name, "changed": sorted(changed), "warnings": warnings}
        if not changed:
            return answer
        listed = {k: v for k, v in changed.items() if k != "purpose"}
        details = {
            "source_id": source.id,
            "changed": sorted(changed),
            "before": {k: before for k, (before, _after) in listed.items()},
            "after": {k: after for k, (_before, after) in listed.items()},
            "warnings": len(warnings),
        }
        texts = {}
        if "purpose" in changed:
            before, after = changed["purpose"]
            texts["purpose"] = f"before: {before}\nafter: {after}"
        with self.store.writing(), self.store.catalog.session() as session, session.begin():
            row = self._row(session, name)
            for key in changed:
                setattr(row, EDITABLE[key], getattr(spec, EDITABLE[key]))
            audit.append(
                session, actor=actor, action="source.edit", details=details, at=now_utc(), texts=texts
            )
        if "retention_days" in changed:
            answer["retention_note"] = RETENTION_NOTE
        return answer

    # -- suspend / resume ------------------------------------------------------------------------

    def suspend(self, name: str, *, actor: str) -> dict[str, object]:
        """Take the source out of search and ingest; rights requests still reach its faces."""
        with self.store.writing(), self.store.catalog.session() as session, session.begin():
            row = self._row(session, name)
            if row.status in (SUSPENDED, "deleted"):
                raise ConflictError(
                    f"source {name!r} is {row.status}; only an active or restricted one is suspended"
                )
            was, row.status = row.status, SUSPENDED
            audit.append(
                session,
                actor=actor,
                action="source.suspend",
                details={"source_id": row.id, "was": was},
                at=now_utc(),
            )
        return {"source": name, "status": SUSPENDED, "was": was}

    def resume(self, name: str, *, actor: str) -> dict[str, object]:
        """Undo a suspension: ``active``, or ``restricted`` while a stop order on its country is in force."""
        source = self._source(name)
        stopped = self.orders.in_force_for(source.jurisdiction)
        with self.store.writing(), self.store.catalog.session() as session, session.begin():
            row = self._row(session, name)
            if row.status != SUSPENDED:
                raise ConflictError(f"source {name!r} is {row.status}; only a suspended source is resumed")
            row.status = "restricted" if stopped else "active"
            status = row.status
            audit.append(
                session,
                actor=actor,
                action="source.resume",
                details={"source_id": row.id, "status": status, "orders": sorted(stopped)},
                at=now_utc(),
            )
        if stopped:
            self.orders.cover(source.id, stopped, actor=actor)
        return {"source": name, "status": status, "orders_in_force": sorted(stopped)}

    # -- delete ----------------------------------------------------------------------------------

    def delete(self, name: str, *, confirm: str, actor: str) -> dict[str, object]:
        """Erase the source's personal data for good (see the module); ``confirm`` is its name typed
        again. Answers ``{source, status, erased_faces, erased_photos, erasure_job_id, receipt}``."""
        if confirm.strip() != name:
            raise InputError(f"type the source's name ({name!r}) again to confirm its deletion")
        source = self._source(name)
        with self.store.catalog.session() as session:
            waiting = _blocking_requests(session, [source.id])
        if waiting:
            raise PrivacyError(
                f"source {name!r} cannot be deleted yet: verified access request(s) "
                f"{', '.join(map(str, waiting))} may still need its faces; answer them first"
            )
        with self.store.writing():
            with self.store.catalog.session() as session, session.begin():
                row = self._row(session, name)
                was, row.status = row.status, "deleted"
                row.event_code = None  # its guest page closes with it
                audit.append(
                    session,
                    actor=actor,
                    action="source.delete",
                    details={"source_id": row.id, "was": was},
                    at=now_utc(),
                )
            receipt = self.gate.delete_source(source.id, actor=actor)
        return {
            "source": name,
            "status": "deleted",
            "erased_faces": len(receipt.erased_faces),
            "erased_photos": len(receipt.erased_images),
            "erasure_job_id": receipt.job_id,
            "receipt": receipt.as_dict(),
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _source(self, name: str) -> Source:
        return self.store.catalog.source(name)

    @staticmethod
    def _row(session: Session, name: str) -> SourceRow:
        row = session.scalar(select(SourceRow).where(SourceRow.name == name))
        if row is None:
            raise NotFoundError(f"no source named {name!r}; register it with `lethe source add`")
        return row
