"""The public transparency notice of a source (GDPR Arts. 13 and 14, AI Act Art. 26(11)), generated
from its declaration, never written by hand: what is processed, why, on which basis, from where,
for how long, what the indexing mode means for a passer-by, the person's rights and where to
complain. Facts about the controller's processing only: no count of photos, faces or consents (a
public count that changes after an erasure would tell whether a person was there), no face.

The same dictionary is the JSON answer (``GET /api/notices/{name}``) and the page (``/notice/{name}``).
"""

from __future__ import annotations

from typing import Any

from lethe.catalog import Source

#: GDPR Art. 6(1) bases in plain words.
BASIS_WORDS: dict[str, str] = {
    "consent": "Your consent (GDPR Art. 6(1)(a)): nothing is done without it, and you may withdraw it",
    "contract": "A contract with you, or steps you asked for before one (GDPR Art. 6(1)(b))",
    "legal_obligation": "A legal obligation of the controller (GDPR Art. 6(1)(c))",
    "vital_interests": "Protecting someone's life (GDPR Art. 6(1)(d))",
    "public_task": "A task in the public interest or official authority (GDPR Art. 6(1)(e))",
    "legitimate_interests": "The controller's legitimate interests, weighed against yours "
    "(GDPR Art. 6(1)(f))",
}

#: GDPR Art. 9(2) conditions in plain words (a face template is biometric data).
ART9_WORDS: dict[str, str] = {
    "explicit_consent": "Your explicit consent (Art. 9(2)(a))",
    "employment_social_security": "Obligations of employment and social-security law (Art. 9(2)(b))",
    "vital_interests": "Protecting the life of someone unable to consent (Art. 9(2)(c))",
    "not_for_profit_body": "The activities of a not-for-profit body, for its members (Art. 9(2)(d))",
    "made_public_by_subject": "Data you manifestly made public yourself (Art. 9(2)(e))",
    "legal_claims": "Establishing, exercising or defending legal claims (Art. 9(2)(f))",
    "substantial_public_interest": "A substantial public interest set by law (Art. 9(2)(g))",
    "health_or_social_care": "Health or social care under law (Art. 9(2)(h))",
    "public_health": "Public health under law (Art. 9(2)(i))",
    "archiving_research_statistics": "Archiving, research or statistics under law (Art. 9(2)(j))",
}

#: The indexing modes in plain words (the sources page says the same in one line).
MODE_WORDS: dict[str, str] = {
    "enrolled_only": "Only people who consented are matched. Every face in these photos is compared, "
    "in memory, with the faces of the people who enrolled; the face of anyone else is discarded "
    "at once, and no template, crop or vector of that face is stored.",
    "all_faces": "Every face found in these photos is stored as an encrypted biometric template (a "
    "list of numbers computed from the face) and can be found by a search with a stated purpose, "
    "until the retention period ends or the person has it erased.",
}

#: Where the photos come from (GDPR Art. 14(2)(f)), in plain words.
COLLECTION_WORDS: dict[str, str] = {
    "operator_controlled": "Photos taken, commissioned or held under licence by the controller",
    "own_photography": "Photos taken by the controller's own photographers",
    "commissioned": "Photos taken by photographers the controller commissioned",
    "licensed_archive": "An archive of photos the controller holds under licence",
    "submitted_by_subjects": "Photos sent in by the people shown in them",
}

#: The supervisory authority of each EU/EEA country (and the United Kingdom and Switzerland), by
#: ISO 3166-1 alpha-2 code. Elsewhere: the generic words of :data:`COMPLAINT_GENERIC`.
SUPERVISORY_AUTHORITIES: dict[str, str] = {
    "AT": "Österreichische Datenschutzbehörde",
    "BE": "Autorité de protection des données / Gegevensbeschermingsautoriteit",
    "BG": "Commission for Personal Data Protection (Комисия за защита на личните данни)",
    "CH": "Federal Data Protection and Information Commissioner (FDPIC / EDÖB / PFPDT)",
    "CY": "Commissioner for Personal Data Protection",
    "CZ": "Úřad pro ochranu osobních údajů",
    "DE": "the data-protection authority of the Land where the controller is established, or the "
    "Bundesbeauftragte für den Datenschutz und die Informationsfreiheit (BfDI)",
    "DK": "Datatilsynet",
    "EE": "Andmekaitse Inspektsioon",
    "ES": "Agencia Española de Protección de Datos (AEPD)",
    "FI": "Tietosuojavaltuutetun toimisto (Data Protection Ombudsman)",
    "FR": "Commission nationale de l'informatique et des libertés (CNIL)",
    "GB": "Information Commissioner's Office (ICO)",
    "GR": "Hellenic Data Protection Authority",
    "HR": "Agencija za zaštitu osobnih podataka (AZOP)",
    "HU": "Nemzeti Adatvédelmi és Információszabadság Hatóság (NAIH)",
    "IE": "Data Protection Commission",
    "IS": "Persónuvernd",
    "IT": "Garante per la protezione dei dati personali",
    "LI": "Datenschutzstelle Liechtenstein",
    "LT": "Valstybinė duomenų apsaugos inspekcija",
    "LU": "Commission nationale pour la protection des données (CNPD)",
    "LV": "Datu valsts inspekcija",
    "MT": "Information and Data Protection Commissioner",
    "NL": "Autoriteit Persoonsgegevens",
    "NO": "Datatilsynet",
    "PL": "Urząd Ochrony Danych Osobowych (UODO)",
    "PT": "Comissão Nacional de Proteção de Dados (CNPD)",
    "RO": "Autoritatea Națională de Supraveghere a Prelucrării Datelor cu Caracter Personal (ANSPDCP)",
    "SE": "Integritetsskyddsmyndigheten (IMY)",
    "SI": "Informacijski pooblaščenec",
    "SK": "Úrad na ochranu osobných údajov",
}
COMPLAINT_GENERIC = (
    "You may lodge a complaint with a data-protection supervisory authority, in particular in the "
    "country where you live, where you work or where the alleged infringement took place (GDPR Art. 77)."
)

PORTAL = "/portal"


def _rights(source: Source) -> list[dict[str, str]]:
    rights = [
        {
            "right": "access",
            "title": "Access",
            "words": "Ask for a copy of every photo of you held here, where each came from and who "
            "searched for it (GDPR Art. 15).",
            "how": PORTAL,
        },
        {
            "right": "erasure",
            "title": "Erasure",
            "words": "Ask for your faces to be erased from these photos' index, for good (Art. 17).",
            "how": PORTAL,
        },
        {
            "right": "objection",
            "title": "Objection",
            "words": "Object: your face is never shown in a search again and is kept out of every later "
            "ingest (Art. 21).",
            "how": PORTAL,
        },
        {
            "right": "restriction",
            "title": "Restriction",
            "words": "Ask that your photos be kept but hidden from every search while a dispute is "
            "settled (Art. 18).",
            "how": PORTAL,
        },
    ]
    if source.lawful_basis == "consent" or source.art9_condition == "explicit_consent":
        rights.append(
            {
                "right": "withdrawal",
                "title": "Withdrawal of consent",
                "words": "Withdraw your consent at any time, as easily as you gave it: your faces found in "
                "these photos are then erased and your enrolment template deleted (Art. 7(3)). Use the "
                "private link you received when you consented online, or ask the data-protection "
                "officer (the contact below); an erasure request through the portal erases your faces "
                "too.",
                "how": "the private link you received, or the contact below",
            }
        )
    return rights


def transparency_notice(source: Source, *, contact: str | None) -> dict[str, Any]:
    """The notice of ``source`` (``contact``: the data-protection officer's address, or ``None``)."""
    country = source.jurisdiction.upper()
    authority = SUPERVISORY_AUTHORITIES.get(country)
    return {
        "source": source.name,
        "purpose": source.purpose,
        "processing": "Face recognition: faces found in photos are turned into biometric templates (a list "
        "of numbers computed from a face) and compared with other faces (AI Act Art. 26(11): you are "
        "told that such a system is used).",
        "data": [
            "The photos in which you appear (their location, not a copy, unless the controller holds one)",
            "Where your face is in each photo, and a small encrypted crop of it",
            "Your face template (biometric data), encrypted",
        ],
        "lawful_basis": source.lawful_basis,
        "lawful_basis_words": BASIS_WORDS.get(source.lawful_basis, source.lawful_basis),
        "art9_condition": source.art9_condition,
        "art9_condition_words": ART9_WORDS.get(source.art9_condition, source.art9_condition),
        "legal_reference": source.legal_reference,
        "collection": source.collection,
        "collection_words": COLLECTION_WORDS.get(source.collection, source.collection),
        "mode": source.mode,
        "mode_words": MODE_WORDS.get(source.mode, source.mode),
        "retention_days": source.retention_days,
        "retention_words": f"Faces are kept for at most {source.retention_days} days after their photo "
        "was added, then erased.",
        "jurisdiction": country,
        "rights": _rights(source),
        "portal": PORTAL,
        "contact": contact,
        "complaint": {
            "authority": authority,
            "words": (f"The supervisory authority of {country}: {authority}. " if authority else "")
            + COMPLAINT_GENERIC,
        },
    }
