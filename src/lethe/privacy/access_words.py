"""The access copy in plain language (GDPR Art. 12(1), Art. 15(1)): dates, the lawful basis and the
Art. 9(2) condition, the rights, the supervisory authority, the recipients and the score, in words a
data subject reads without knowing Lethe's internal names (the newcomer review: ``public_task`` and
raw timestamps were not readable)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.tables import AuditEntryRow
from lethe.catalog.user_tables import UserRow
from lethe.privacy.audit import AuditEntry, entries_at
from lethe.privacy.disclosures import KINDS, for_faces

#: GDPR Art. 6(1): every value of :data:`lethe.privacy.sources.ART6_BASES`.
BASIS_WORDS = {
    "consent": "your consent (GDPR Art. 6(1)(a))",
    "contract": "a contract with you, or steps you asked for before one (GDPR Art. 6(1)(b))",
    "legal_obligation": "a legal obligation the controller must comply with (GDPR Art. 6(1)(c))",
    "vital_interests": "protecting your vital interests or another person's (GDPR Art. 6(1)(d))",
    "public_task": "a task carried out in the public interest or in the exercise of official authority "
    "(GDPR Art. 6(1)(e))",
    "legitimate_interests": "the legitimate interests of the controller or of a third party, weighed "
    "against your interests and rights (GDPR Art. 6(1)(f))",
}

#: GDPR Art. 9(2): every value of :data:`lethe.privacy.sources.ART9_CONDITIONS`.
ART9_WORDS = {
    "explicit_consent": "your explicit consent (GDPR Art. 9(2)(a))",
    "employment_social_security": "obligations and rights in employment, social security and social "
    "protection law (GDPR Art. 9(2)(b))",
    "vital_interests": "protecting your vital interests or another person's where you cannot give "
    "consent (GDPR Art. 9(2)(c))",
    "not_for_profit_body": "the activities of a foundation, association or other not-for-profit body "
    "you are in regular contact with (GDPR Art. 9(2)(d))",
    "made_public_by_subject": "data you have manifestly made public yourself (GDPR Art. 9(2)(e))",
    "legal_claims": "establishing, exercising or defending legal claims, or courts acting in their "
    "judicial capacity (GDPR Art. 9(2)(f))",
    "substantial_public_interest": "reasons of substantial public interest set out in law "
    "(GDPR Art. 9(2)(g))",
    "health_or_social_care": "health or social care, preventive or occupational medicine (GDPR Art. 9(2)(h))",
    "public_health": "reasons of public interest in the area of public health (GDPR Art. 9(2)(i))",
    "archiving_research_statistics": "archiving in the public interest, scientific or historical "
    "research or statistics (GDPR Art. 9(2)(j))",
}

#: Supervisory authorities of the EU/EEA, the United Kingdom and Switzerland (the country's name, the
#: authority). Any other jurisdiction is named by its code.
AUTHORITIES = {
    "AT": ("Austria", "Datenschutzbehörde (Austrian Data Protection Authority)"),
    "BE": ("Belgium", "Autorité de protection des données / Gegevensbeschermingsautoriteit"),
    "BG": ("Bulgaria", "Commission for Personal Data Protection"),
    "CH": ("Switzerland", "Federal Data Protection and Information Commissioner (FDPIC)"),
    "CY": ("Cyprus", "Commissioner for Personal Data Protection"),
    "CZ": ("Czechia", "Úřad pro ochranu osobních údajů (Office for Personal Data Protection)"),
    "DE": (
        "Germany",
        "the data protection authority of the federal state (Land) concerned, or the "
        "Federal Commissioner for Data Protection and Freedom of Information (BfDI)",
    ),
    "DK": ("Denmark", "Datatilsynet (Danish Data Protection Agency)"),
    "EE": ("Estonia", "Andmekaitse Inspektsioon (Data Protection Inspectorate)"),
    "ES": ("Spain", "Agencia Española de Protección de Datos (AEPD)"),
    "FI": ("Finland", "Office of the Data Protection Ombudsman"),
    "FR": ("France", "Commission nationale de l'informatique et des libertés (CNIL)"),
    "GB": ("the United Kingdom", "Information Commissioner's Office (ICO)"),
    "GR": ("Greece", "Hellenic Data Protection Authority"),
    "HR": ("Croatia", "Agencija za zaštitu osobnih podataka (AZOP)"),
    "HU": ("Hungary", "Nemzeti Adatvédelmi és Információszabadság Hatóság (NAIH)"),
    "IE": ("Ireland", "Data Protection Commission"),
    "IS": ("Iceland", "Persónuvernd (Data Protection Authority)"),
    "IT": ("Italy", "Garante per la protezione dei dati personali"),
    "LI": ("Liechtenstein", "Datenschutzstelle (Data Protection Authority)"),
    "LT": ("Lithuania", "State Data Protection Inspectorate"),
    "LU": ("Luxembourg", "Commission nationale pour la protection des données (CNPD)"),
    "LV": ("Latvia", "Datu valsts inspekcija (Data State Inspectorate)"),
    "MT": ("Malta", "Information and Data Protection Commissioner"),
    "NL": ("the Netherlands", "Autoriteit Persoonsgegevens"),
    "NO": ("Norway", "Datatilsynet (Norwegian Data Protection Authority)"),
    "PL": ("Poland", "Urząd Ochrony Danych Osobowych (UODO)"),
    "PT": ("Portugal", "Comissão Nacional de Proteção de Dados (CNPD)"),
    "RO": ("Romania", "National Supervisory Authority for Personal Data Processing (ANSPDCP)"),
    "SE": ("Sweden", "Integritetsskyddsmyndigheten (IMY)"),
    "SI": ("Slovenia", "Information Commissioner"),
    "SK": ("Slovakia", "Úrad na ochranu osobných údajov (Office for Personal Data Protection)"),
}
#: The list of every EU/EEA supervisory authority, with their addresses.
EDPB_MEMBERS_URL = "https://www.edpb.europa.eu/about-edpb/about-edpb/members_en"

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def long_date(at: datetime | None) -> str | None:
    """``7 December 2026`` (the date in UTC), or None."""
    if at is None:
        return None
    day = at.astimezone(UTC) if at.tzinfo else at
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def basis_words(basis: str, legal_reference: str | None = None) -> str:
    words = BASIS_WORDS.get(basis, basis)
    return f"{words}, under {legal_reference}" if legal_reference else words


def art9_words(condition: str) -> str:
    return ART9_WORDS.get(condition, condition)


#: The words above speak to the data subject; a document for the controller or a regulator (the
#: compliance pack) names them in the third person.
_THIRD_PERSON = (
    ("yourself", "themselves"),
    ("your ", "the data subject's "),
    ("with you", "with the data subject"),
    ("you asked", "they asked"),
    ("you have", "they have"),
    ("you are", "they are"),
    ("you cannot", "they cannot"),
)


def third_person(words: str) -> str:
    for second, third in _THIRD_PERSON:
        words = words.replace(second, third)
    return words


def authority(jurisdiction: str) -> dict[str, str]:
    """The supervisory authority a complaint about a source of ``jurisdiction`` goes to."""
    country, name = AUTHORITIES.get(jurisdiction.upper(), (jurisdiction.upper(), ""))
    who = name or f"the data protection supervisory authority of {country}"
    return {"jurisdiction": jurisdiction, "country": country, "authority": who, "list": EDPB_MEMBERS_URL}


def rights(jurisdictions: Sequence[str]) -> list[dict[str, str]]:
    """The rights a data subject has over these photos, in words, and how to use each; the complaint
    names the supervisory authority of each source's jurisdiction."""
    offices = [authority(j) for j in jurisdictions]
    named = "; ".join(f"{o['authority']} ({o['country']})" for o in offices)
    where = f" For the sources of these photos that is: {named}." if offices else ""
    return [
        {
            "right": "erasure",
            "words": "You can ask us to erase your face from these photos (GDPR Art. 17): open an "
            "erasure request with a photo of you, as you did for this copy.",
        },
        {
            "right": "objection",
            "words": "You can object to the processing (GDPR Art. 21): your face is then never shown "
            "in a search result, nor indexed again from new photos.",
        },
        {
            "right": "restriction",
            "words": "You can ask for the processing to be restricted (GDPR Art. 18), for example "
            "while you contest that a photo shows you: your face is then kept but not searched.",
        },
        {
            "right": "rectification",
            "words": "You can ask us to correct what is wrong (GDPR Art. 16), for example a photo "
            "listed here that is not of you.",
        },
        {
            "right": "complaint",
            "words": "You can complain to a supervisory authority (GDPR Art. 77), in particular where "
            f"you live or work or where the processing takes place.{where} Every EU/EEA authority "
            f"is listed at {EDPB_MEMBERS_URL}.",
        },
        {
            "right": "judicial_remedy",
            "words": "You can go to court against us (GDPR Art. 79) or against a supervisory "
            "authority's decision (GDPR Art. 78), in the country where we are established or where "
            "you live.",
        },
    ]


CATEGORIES = [
    {
        "category": "photo",
        "words": "The photo in which your face was found: where it is kept (its file path or web "
        "address), its fingerprint (SHA-256), its size, when it was taken and collected. Lethe keeps "
        "no copy of the photo itself; the copy given here was read from that place.",
    },
    {
        "category": "face_position",
        "words": "Where your face is in the photo (a box and five points: eyes, nose, mouth "
        "corners), and a small picture of your face cut from the photo (kept encrypted).",
    },
    {
        "category": "biometric_template",
        "words": "A biometric template: a list of numbers a face recognition model computed from "
        "your face (kept encrypted). It is what a search compares; it is a special category of "
        "data (GDPR Art. 9). Yours is given in export.json, beside this page.",
    },
    {
        "category": "records_of_use",
        "words": "Records of who was shown your face and when (the audit log), kept to prove the "
        "service was used lawfully.",
    },
]

#: How a role is named to the data subject (never a user's name).
ROLE_WORDS = {
    "operator": "operators (staff who run face searches)",
    "dpo": "the data protection officer's team",
    "admin": "administrators of the service",
    "monitor": "staff who monitor the service",
    "verifier": "verifiers (staff who check a search's match before anything is done with it)",
    "request_staff": "the data protection team, answering a data-subject request (yours or, where "
    "your face looked like another requester's, theirs)",
    "local_administrator": "the administrator of the server (command line)",
    "staff": "staff using the service on its server",
}
#: Which of a user's roles an action is done in, first held first.
_ROLE_OF_ACTION = {
    "search": ("operator", "dpo", "admin", "monitor"),
    "photo.view": ("operator", "dpo", "admin", "monitor"),
}


def _user_roles(session: Session, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    wanted = sorted(set(names))
    rows = session.execute(select(UserRow.name, UserRow.roles).where(UserRow.name.in_(wanted))).all()
    return {name: tuple(filter(None, roles.split(","))) for name, roles in rows}


def _account(actor: str) -> tuple[str, str | None]:
    kind, _, rest = actor.partition(":")
    if kind == "user":
        return kind, rest
    if kind == "cli" and "@" in rest:
        return kind, rest.rpartition("@")[0]
    return "other", None


def roles_of(session: Session, entries: Iterable[AuditEntry]) -> dict[int, str]:
    """audit seq -> the role its actor acted in (a key of :data:`ROLE_WORDS`)."""
    entries = list(entries)
    accounts = {e.seq: _account(e.actor) for e in entries}
    held = _user_roles(session, [name for _, name in accounts.values() if name])
    out: dict[int, str] = {}
    for entry in entries:
        kind, name = accounts[entry.seq]
        if entry.action.startswith("verification."):
            out[entry.seq] = "verifier"
        elif entry.action.startswith("request.") or "request_id" in entry.details:
            out[entry.seq] = "request_staff"
        elif name is not None and name in held:
            order = _ROLE_OF_ACTION.get(entry.action, ("operator", "dpo", "admin", "monitor"))
            out[entry.seq] = next((r for r in order if r in held[name]), "staff")
        else:
            out[entry.seq] = "local_administrator" if kind == "cli" else "staff"
    return out


#: What each audited action that names a face did with it, in words.
SHOWN_AS = {
    "search": "returned it as a search result",
    "photo.view": "opened the whole photo",
    "verification.verdict": "checked whether a search's match was right",
    "verification.identified": "recorded the person of a checked match as identified",
    "request.preview": "reviewed it as a possible match for a data-subject request",
    "request.decide": "decided whether it matched a data-subject request",
}


def recipients(
    session: Session, by_face: Mapping[int, list[AuditEntry]], exports: Iterable[AuditEntry] = ()
) -> dict[str, Any]:
    """Who was shown these faces, counted per role and action (never a user's name), and the
    disclosures of their records (:func:`use_exports`)."""
    seen: dict[int, AuditEntry] = {}
    for entries in by_face.values():
        for entry in entries:
            if entry.action in SHOWN_AS:
                seen[entry.seq] = entry
    roles = roles_of(session, seen.values())
    counts: dict[tuple[str, str], int] = {}
    for seq, entry in seen.items():
        key = (roles[seq], entry.action)
        counts[key] = counts.get(key, 0) + 1
    shown = [
        {"role": role, "who": ROLE_WORDS[role], "action": action, "what": SHOWN_AS[action], "times": n}
        for (role, action), n in sorted(counts.items())
    ]
    named = named_recipients(session, by_face)
    handed = {(d["use"], d["actor"]) for d in named if d["use"] is not None}
    disclosed = [
        {
            "date": long_date(e.at),
            "at": e.at.isoformat(),
            "what": "the record of a search that returned your face (not the photo) was exported for "
            "a supervisory authority or an auditor",
        }
        for e in exports
        if (e.details.get("use"), e.actor) not in handed  # named below, with whom it went to
    ]
    for d in named:
        del d["use"], d["actor"]
    return {"shown": shown, "disclosures": disclosed, "named": named}


#: How a disclosure reached its recipient, said to the data subject.
DISCLOSED_AS = {
    "api_token": "a search made through their access to the service returned your face",
    "use_export": "the record of a search that returned your face (not the photo) was handed to them",
    "manual": "data about your face was handed to them outside the service",
}


def named_recipients(session: Session, by_face: Mapping[int, list[AuditEntry]]) -> list[dict[str, Any]]:
    """Every disclosure of these faces in the ledger (:mod:`lethe.privacy.disclosures`), by
    recipient name and kind, country, date and reason (GDPR Art. 15(1)(c), CJEU C-154/21)."""
    out = []
    for d in for_faces(session, by_face):
        country = AUTHORITIES.get(d.country, (d.country, ""))[0]
        out.append(
            {
                "recipient": d.recipient,
                "kind": d.kind,
                "kind_words": KINDS.get(d.kind, d.kind),
                "country": d.country,
                "country_name": country,
                "outside_eea": d.outside_eea,
                "date": long_date(d.at),
                "at": d.at.isoformat(),
                "what": DISCLOSED_AS.get(d.channel, d.channel),
                "reason": d.reason,
                "your_faces": sum(1 for f in d.face_ids if f in by_face),
                "use": int(d.reference[4:]) if d.channel == "use_export" and d.reference else None,
                "actor": d.actor,
            }
        )
    return out


def use_exports(session: Session, searches: Iterable[AuditEntry]) -> list[AuditEntry]:
    """The ``audit.export`` entries (a use's record exported for a regulator) of the uses whose
    searches returned these faces."""
    uses = {e.details.get("use") for e in searches if e.action == "search"} - {None}
    if not uses:
        return []
    rows = session.scalars(
        select(AuditEntryRow).where(AuditEntryRow.action == "audit.export").order_by(AuditEntryRow.seq)
    ).all()
    exported = entries_at(session, [r.seq for r in rows])
    return [e for e in exported if e.details.get("use") in uses]


def score_words(calibration: Mapping[str, Any]) -> str:
    """What a match's score meant, in a few sentences, from the thresholds and measurement in force."""
    threshold = calibration["match_threshold"]
    automatic = calibration["erasure_automatic_threshold"]
    measured = calibration.get("implied")
    text = (
        "Lethe compares faces automatically: a model turns each face into a template, and a search "
        "scores how alike two templates are (from -1 to 1; higher is more alike). A face is shown "
        f"to an operator as a match only when its score is at least {threshold:.3f} (the "
        "calibrated match threshold). "
    )
    if measured:
        text += (
            f"Measured on a public benchmark (LFW) with a gallery of {measured['measured_gallery_faces']:,} "
            f"faces, at this threshold {measured['fpir'] * 100:.2f}% of searches for someone who "
            f"was not in the gallery still returned a match (a wrong one: the false positive "
            f"identification rate), and {measured['fnir'] * 100:.2f}% of searches for someone who "
            "was in it missed them (the false negative identification rate). "
        )
    text += (
        f"To answer this request, faces scoring at least {automatic:.3f} against your photo were "
        "listed automatically; lower-scoring ones were listed only once a person confirmed them. "
        "No decision about you is taken by the machine alone: a match is checked by people before "
        "anything is done with it."
    )
    return text
