"""The three documents built from the live facts (:mod:`lethe.privacy.assessment_facts`) and the
controller's answers: the DPIA (GDPR Art. 35(7)(a)-(d)), the FRIA (EU AI Act Art. 27(1)(a)-(f)) and
the record of processing activities (GDPR Art. 30(1)(a)-(g)).

Each document is plain data: ``sections`` keyed by the lettered point of the article it answers
(``a_systematic_description``, ...), each with its ``law``, a ``heading``, ``text`` (paragraphs in
words), optional ``table`` (``columns``, ``rows``) and ``items`` (lines), the structured ``facts`` it
was written from, and the ids of its ``questions``: what only a person can answer (the necessity
justification, the consultation of data subjects, the acceptance of residual risk, ...), shown as
:data:`BLANK` until answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lethe.privacy.assessment_words import (
    controller,
    limit_items,
    oversight_items,
    plural,
    rates_words,
    recipients_table,
    rights_items,
    risk_rows,
    security_items,
    source_table,
    usage_words,
    wp248,
)

BLANK = "To be answered by the controller"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    section: str
    law: str
    text: str
    #: Whether the question applies, from the material facts (:func:`lethe.privacy.assessment_facts.
    #: material`): e.g. transfer safeguards only where a recipient is outside the EEA.
    applies: Callable[[dict[str, Any]], bool] = lambda _facts: True


def _unguarded(material: dict[str, Any]) -> bool:
    """A recipient outside the EEA without the safeguard of its transfer recorded in the ledger."""
    return any(r["outside_eea"] and not r["safeguard"] for r in material["recipients"].values())


QUESTIONS: dict[str, tuple[Question, ...]] = {
    "dpia": (
        Question(
            "necessity",
            "b_necessity_and_proportionality",
            "GDPR Art. 35(7)(b)",
            "Why is searching faces necessary for each purpose, and which less intrusive means "
            "(no biometrics: a bib number, a date, a manual search) were considered, and why were "
            "they not enough?",
        ),
        Question(
            "proportionality",
            "b_necessity_and_proportionality",
            "GDPR Art. 35(7)(b)",
            "Why is the processing proportionate to its purposes: its scale, the people it reaches "
            "and how long it keeps their faces?",
        ),
        Question(
            "risk_assessment",
            "c_risks",
            "GDPR Art. 35(7)(c)",
            "How likely and how severe is each risk listed, in this controller's context?",
        ),
        Question(
            "consultation",
            "d_measures",
            "GDPR Art. 35(9)",
            "Were the data subjects or their representatives consulted? How, and what did they say "
            "(or why were they not)?",
        ),
        Question("dpo_advice", "d_measures", "GDPR Art. 35(2)", "The data protection officer's advice."),
        Question(
            "residual_risk",
            "d_measures",
            "GDPR Arts. 35(7)(d), 36(1)",
            "The residual risk once the measures apply: who accepts it, and does it stay high (then "
            "the supervisory authority is consulted before the processing, Art. 36)?",
        ),
    ),
    "fria": (
        Question(
            "processes",
            "a_processes",
            "AI Act Art. 27(1)(a)",
            "The deployer's processes in which the system is used: who asks for a search, what is "
            "done with a verified identification, and which decisions follow from it?",
        ),
        Question(
            "intended_period",
            "b_period_and_frequency",
            "AI Act Art. 27(1)(b)",
            "Over what period, and how often, is the system intended to be used?",
        ),
        Question(
            "affected_groups",
            "c_categories_of_persons",
            "AI Act Art. 27(1)(c)",
            "Which categories of persons and groups are likely to be affected in this context "
            "beyond those the sources record (minors, employees, vulnerable groups)?",
        ),
        Question(
            "harms",
            "d_specific_risks",
            "AI Act Art. 27(1)(d)",
            "The specific risks of harm to them in this context (discrimination, wrongful "
            "accusation, a chilling effect on assembly or expression).",
        ),
        Question(
            "governance",
            "f_measures_if_risks_materialise",
            "AI Act Art. 27(1)(f)",
            "If a risk materialises: the internal governance (who is told, who decides to suspend "
            "use) and how affected persons are informed and can obtain redress.",
        ),
        Question(
            "authority_notification",
            "f_measures_if_risks_materialise",
            "AI Act Art. 27(3)",
            "When, and to which market surveillance authority, were the results of this assessment notified?",
        ),
    ),
    "art30": (
        Question(
            "contact_details",
            "a_controller_and_dpo",
            "GDPR Art. 30(1)(a)",
            "The controller's contact details, any joint controller and, for a controller outside "
            "the Union, its representative.",
        ),
        Question(
            "transfer_safeguards",
            "e_transfers",
            "GDPR Arts. 30(1)(e), 46",
            "For each transfer outside the EEA whose safeguard the disclosure ledger does not record: "
            "the safeguard it rests on (an adequacy decision, standard contractual clauses, ...) and "
            "where it is documented.",
            _unguarded,
        ),
        Question(
            "organisational_measures",
            "g_security_measures",
            "GDPR Arts. 30(1)(g), 32(1)",
            "The measures outside Lethe: physical security of the server, backups and their "
            "encryption, disk encryption, staff confidentiality undertakings.",
        ),
    ),
}


def section(law: str, heading: str, text: list[str], facts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One section of a document (see the module)."""
    return {"law": law, "heading": heading, "text": text, "facts": facts, "questions": [], **extra}


def applicable(document: str, material: dict[str, Any]) -> list[Question]:
    """The questions of ``document`` that apply to these material facts."""
    return [q for q in QUESTIONS[document] if q.applies(material)]


def attach_questions(
    document: str, sections: dict[str, dict[str, Any]], facts: dict[str, Any]
) -> list[Question]:
    """The questions of ``document`` that apply to ``facts``, each named in its section."""
    questions = applicable(document, facts["material"])
    for q in questions:
        sections[q.section]["questions"].append(q.id)
    return questions


def dpia(facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Question]]:
    """GDPR Art. 35(7)(a)-(d)."""
    t, m = facts["totals"], facts["model"]
    criteria = wp248(facts)
    met = sum(1 for c in criteria if c["met"])
    warnings = [f"{s['source']}: {w}" for s in facts["sources"] for w in s["warnings"]]
    sections = {
        "a_systematic_description": section(
            "GDPR Art. 35(7)(a)",
            "Systematic description of the processing and its purposes",
            [
                f"{controller(facts)} runs Lethe, a face search engine. It detects the faces in the "
                f"photos of registered sources ({m['detector_words']}), computes a biometric template "
                f"of each ({m['embedder_model']}, sha256 {m['model_sha256']}) and lets operators search "
                "them by photo: post remote biometric identification, a high-risk AI system (AI Act "
                "Annex III point 1(a)).",
                f"{plural(t['sources'], 'source')} in {', '.join(t['jurisdictions']) or 'no country yet'}: "
                f"{t['images']:,} photos, {t['faces']:,} faces; {t['all_faces_sources']} source(s) keep "
                f"every face found, {t['enrolled_only_sources']} only the faces of people who enrolled.",
                usage_words(facts),
                f"WP248 criteria met, as far as the system can tell: {met}"
                + (" (two or more: a DPIA is required in principle)." if met >= 2 else "."),
            ],
            {
                "sources": facts["sources"],
                "totals": t,
                "model": m,
                "usage": facts["usage"],
                "recipients": facts["recipients"],
                "wp248": criteria,
            },
            table=source_table(facts["sources"]),
            items=[
                f"{c['criterion']}: "
                + {True: "met", False: "not met", None: "for the controller to judge"}[c["met"]]
                for c in criteria
            ],
        ),
        "b_necessity_and_proportionality": section(
            "GDPR Art. 35(7)(b)",
            "Necessity and proportionality",
            [
                "Each source declares its purpose, lawful basis (Art. 6) and condition for biometric data "
                "(Art. 9(2)) before any photo is read; nothing is ingested without them.",
                f"Minimisation: {t['enrolled_only_sources']} source(s) keep only enrolled people's faces "
                "(the others are compared in memory and discarded); photos are not copied (their path, "
                "face boxes, an encrypted crop and an encrypted template are kept); each source's faces "
                "are erased when its retention ends.",
                rates_words(facts),
            ],
            {
                "sources": facts["sources"],
                "thresholds": facts["thresholds"],
                "error_rates": facts["error_rates"],
                "warnings": warnings,
            },
            items=[f"Declaration warning: {w}" for w in warnings],
        ),
        "c_risks": section(
            "GDPR Art. 35(7)(c)",
            "Risks to the rights and freedoms of data subjects",
            ["Each risk with what the running system shows about it now."],
            {
                "error_rates": facts["error_rates"],
                "known_limits": m["known_limits"],
                "usage": facts["usage"],
                "rights": facts["rights"],
            },
            table={"columns": ["Risk", "What the system shows now"], "rows": risk_rows(facts)},
            items=limit_items(facts),
        ),
        "d_measures": section(
            "GDPR Art. 35(7)(d)",
            "Measures to address the risks",
            ["The safeguards, security measures and mechanisms in force, as configured."],
            {
                "oversight": facts["oversight"],
                "security": facts["security"],
                "retention": facts["retention"],
                "rights": facts["rights"],
            },
            items=oversight_items(facts) + security_items(facts) + rights_items(facts),
        ),
    }
    return sections, attach_questions("dpia", sections, facts)


def fria(facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Question]]:
    """EU AI Act Art. 27(1)(a)-(f)."""
    t, u = facts["totals"], facts["usage"]
    required = facts["oversight"]["verifiers_required"]
    persons = [
        [
            s["source"],
            s["collection_words"],
            s["mode_words"],
            s["jurisdiction"],
            s["faces"],
            s["consents_active"],
            s["consents_parental"],
        ]
        for s in facts["sources"]
    ]
    sections = {
        "a_processes": section(
            "AI Act Art. 27(1)(a)",
            "The deployer's processes in which the system is used",
            [
                "An operator opens a use (a case) with a stated purpose and searches by photo; every "
                "search is logged with its reference database and probe (Art. 12(3)). A match is a "
                f"candidate until {required} verifier(s) confirm it. Data subjects find, erase, restrict "
                "or object through the rights workflow.",
            ],
            {"sources": facts["sources"]},
            table=source_table(facts["sources"]),
        ),
        "b_period_and_frequency": section(
            "AI Act Art. 27(1)(b)",
            "Period and frequency of use",
            [usage_words(facts)],
            {"usage": u},
        ),
        "c_categories_of_persons": section(
            "AI Act Art. 27(1)(c)",
            "Categories of natural persons and groups likely to be affected",
            [
                "Everyone whose face is in the photos of a source that keeps every face "
                f"({t['all_faces_sources']} source(s)); people who enrolled ({t['consents_active']} active "
                f"consents, {t['consents_parental']} by a parent for a child); people who search for "
                "themselves or file a request (their photos are kept only for the request).",
            ],
            {"totals": t, "sources": facts["sources"]},
            table={
                "columns": [
                    "Source",
                    "Where the photos come from",
                    "Whose faces are kept",
                    "Country",
                    "Faces",
                    "Consents",
                    "Of them by a parent",
                ],
                "rows": persons,
            },
        ),
        "d_specific_risks": section(
            "AI Act Art. 27(1)(d)",
            "Specific risks of harm to those persons or groups",
            [rates_words(facts)],
            {"error_rates": facts["error_rates"], "known_limits": facts["model"]["known_limits"]},
            table={"columns": ["Risk", "What the system shows now"], "rows": risk_rows(facts)},
            items=limit_items(facts),
        ),
        "e_human_oversight": section(
            "AI Act Art. 27(1)(e)",
            "Human oversight measures (per the instructions for use)",
            ["As configured now:"],
            {"oversight": facts["oversight"]},
            items=oversight_items(facts),
        ),
        "f_measures_if_risks_materialise": section(
            "AI Act Art. 27(1)(f)",
            "Measures if the risks materialise, including internal governance and complaint mechanisms",
            [
                "An administrator can stop all identification at once; a regulator's order restricts a whole "
                "country's sources; a person's faces are erased on request with a receipt and a re-search "
                "proving nothing is found.",
            ],
            {"rights": facts["rights"], "oversight": facts["oversight"]},
            items=rights_items(facts),
        ),
    }
    return sections, attach_questions("fria", sections, facts)


#: GDPR Art. 30(1)(c): the categories of personal data Lethe's catalog holds.
DATA_CATEGORIES = [
    "Photo references and metadata: path or address, SHA-256, size, capture date, source link (not the "
    "photo itself).",
    "Face positions (box and five landmarks) and an encrypted face crop.",
    "Biometric templates (special category, Art. 9(1)), encrypted.",
    "Consent records: who (by id), to which text version, how, with which age attestation, when; withdrawal.",
    "Data subjects' requests: their photos (encrypted, for the request only), contact address (encrypted), "
    "dates and outcome.",
    "Records of use (the audit log): who searched, why, which faces were returned.",
    "Staff accounts: name, roles, password hash, training dates.",
]


def art30(facts: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[Question]]:
    """GDPR Art. 30(1)(a)-(g)."""
    c, t, ret = facts["controller"], facts["totals"], facts["retention"]
    abroad = [r for r in facts["recipients"] if r["outside_eea"]]
    staff = ", ".join(f"{n} {role}" for role, n in facts["security"]["roles"].items())
    places = [f"{r['name']} ({r['country']}): {r['safeguard'] or 'no safeguard recorded'}" for r in abroad]
    sections = {
        "a_controller_and_dpo": section(
            "GDPR Art. 30(1)(a)",
            "The controller and the data protection officer",
            [
                f"Controller: {controller(facts)}.",
                f"Data protection officer: {c['dpo_contact'] or 'not set (LETHE_DPO_CONTACT)'}.",
            ],
            {"controller": c},
        ),
        "b_purposes": section(
            "GDPR Art. 30(1)(b)",
            "The purposes of the processing",
            [
                f"{s['source']}: {s['purpose']} (on the basis of {s['basis_words']}; biometric data under "
                f"{s['art9_words']})."
                for s in facts["sources"]
            ]
            or ["No source registered yet."],
            {
                "sources": [
                    {
                        k: s[k]
                        for k in (
                            "source",
                            "purpose",
                            "lawful_basis",
                            "art9_condition",
                            "legal_reference",
                            "lia_reference",
                        )
                    }
                    for s in facts["sources"]
                ]
            },
        ),
        "c_categories": section(
            "GDPR Art. 30(1)(c)",
            "Categories of data subjects and of personal data",
            [
                f"Data subjects: the people in the photos of {plural(t['sources'], 'source')} "
                f"({t['faces']:,} faces); "
                f"people who enrolled ({t['consents_active']} active consents); requesters "
                f"({plural(facts['rights']['requests'], 'request')}); staff."
            ],
            {"totals": t, "data_categories": DATA_CATEGORIES},
            items=[f"{s['source']}: {s['mode_words']} ({s['collection_words']})." for s in facts["sources"]]
            + DATA_CATEGORIES,
        ),
        "d_recipients": section(
            "GDPR Art. 30(1)(d)",
            "Recipients to whom the personal data have been or will be disclosed",
            [
                f"Inside the controller: staff by role ({staff or 'none'}). "
                f"Outside it, from the disclosure ledger: {plural(len(facts['recipients']), 'recipient')}."
            ],
            {"recipients": facts["recipients"], "roles": facts["security"]["roles"]},
            table=recipients_table(facts),
        ),
        "e_transfers": section(
            "GDPR Art. 30(1)(e)",
            "Transfers to a third country or an international organisation",
            [
                f"Recipients outside the EEA: {'; '.join(places)}."
                if abroad
                else "No recipient outside the EEA is recorded in the disclosure ledger; the software "
                "itself transfers nothing."
            ],
            {"transfers": abroad},
        ),
        "f_time_limits": section(
            "GDPR Art. 30(1)(f)",
            "Time limits for erasure",
            [
                f"Audit log: {ret['log_days']} days. Templates of a person erased on request, kept sealed "
                "only to keep the erased photos out of later ingests: "
                f"{ret['suppression_days']} days. A portal request whose "
                f"contact is not confirmed: {ret['request_contact_confirmation_s'] // 3600} hours."
            ],
            {"retention": ret},
            items=[
                f"{name}: faces erased {days} days after ingest."
                for name, days in ret["per_source_days"].items()
            ],
        ),
        "g_security_measures": section(
            "GDPR Art. 30(1)(g)",
            "Technical and organisational security measures (Art. 32(1))",
            ["As the running system is configured now:"],
            {"security": facts["security"], "oversight": facts["oversight"]},
            items=security_items(facts) + oversight_items(facts)[:1],
        ),
    }
    return sections, attach_questions("art30", sections, facts)
