"""The technical file of the installation, generated from what runs and signed (EU AI Act, issue 19
item 5):

- ``technical_documentation``: the technical documentation of Art. 11, in the order of Annex IV
  (general description, intended purpose, versions, design specifications, data and calibration,
  accuracy with 95% confidence intervals, known limits, human oversight, logging, cybersecurity,
  risk management, changes, standards, declaration of conformity, post-market monitoring);
- ``instructions_for_use``: the instructions for use of Art. 13(3)(a)-(f) for the deployer;
- ``eu_database_registration``: the fields of Annex VIII Sections A, B and C (Art. 49) to copy
  into the EU database, filled from the settings where a setting holds the answer
  (``LETHE_CONTROLLER_NAME``, ``LETHE_DPO_CONTACT``) and otherwise marked as blanks for a person.

Each as JSON and as an HTML page rendered from that JSON, and each file signed
(:mod:`lethe.privacy.signatures`): ``NAME.json``, ``NAME.html`` and their ``.sig.json``, with the
public key in ``signing_key.json`` / ``signing_key.pem``. The facts come from
:mod:`lethe.privacy.technical_facts`, the fixed words from :mod:`lethe.privacy.technical_words`,
the limits from ``lethe/known_limits.json``. :func:`write` (the command line, the API) audits each
generation as ``report.technical_file`` with the documents' SHA-256, so the next generation lists
the earlier ones under "changes"; :func:`pack_files` gives the same files to the evidence pack.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lethe.calibration import model_family
from lethe.catalog.repository import now_utc
from lethe.privacy import audit, signatures
from lethe.privacy import technical_facts as facts_of
from lethe.privacy import technical_words as words
from lethe.privacy.pages import render
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.store import Store

#: Document name -> the kind it is signed as.
KINDS = {
    "technical_documentation": "technical-documentation",
    "instructions_for_use": "instructions-for-use",
    "eu_database_registration": "eu-database-registration",
}
TITLES = {
    "technical_documentation": "Technical documentation (EU AI Act Art. 11, Annex IV)",
    "instructions_for_use": "Instructions for use (EU AI Act Art. 13)",
    "eu_database_registration": "EU database registration (EU AI Act Art. 49, Annex VIII)",
}
#: Each document's sections: (key, title, the provision it answers).
SECTIONS = {
    "technical_documentation": [
        ("general_description", "1. General description", "Annex IV point 1(a)-(h)"),
        ("intended_purpose", "Intended purpose, and the uses that are not intended", "Annex IV point 1(a)"),
        ("versions", "Versions", "Annex IV point 1(c)"),
        ("design_specifications", "2. Design specifications and architecture", "Annex IV point 2(a)-(c)"),
        ("data_and_calibration", "Data, validation and calibration", "Annex IV point 2(d), 2(g)"),
        ("accuracy", "3. Accuracy, with 95% confidence intervals", "Annex IV points 3 and 4; Art. 15(3)"),
        ("known_limits", "Known limits and sources of risk", "Annex IV point 3"),
        ("human_oversight", "Human oversight", "Annex IV points 2(e) and 3; Art. 14"),
        ("logging", "Logging", "Art. 12; Annex IV point 3"),
        ("cybersecurity", "Cybersecurity", "Annex IV point 2(h); Art. 15(5)"),
        ("risk_management", "5. Risk management", "Annex IV point 5; Art. 9"),
        ("changes", "6. Changes through the lifecycle", "Annex IV points 2(f) and 6"),
        ("standards", "7. Standards applied", "Annex IV point 7"),
        ("declaration_of_conformity", "8. EU declaration of conformity", "Annex IV point 8; Art. 47"),
        ("post_market_monitoring", "9. Post-market monitoring", "Annex IV point 9; Art. 72"),
    ],
    "instructions_for_use": [
        ("a_provider", "(a) The provider", "Art. 13(3)(a)"),
        ("b_characteristics", "(b) Characteristics, capabilities and limitations", "Art. 13(3)(b)(i)-(vii)"),
        ("c_predetermined_changes", "(c) Pre-determined changes", "Art. 13(3)(c)"),
        ("d_human_oversight", "(d) Human oversight", "Art. 13(3)(d); Art. 14"),
        ("e_resources_and_maintenance", "(e) Resources, lifetime and maintenance", "Art. 13(3)(e)"),
        ("f_logs", "(f) Collecting, storing and reading the logs", "Art. 13(3)(f); Art. 12"),
    ],
    "eu_database_registration": [
        ("section_a", "Section A: the provider's registration", "Art. 49(1); Annex VIII Section A"),
        ("section_b", "Section B: a system claimed not to be high-risk", "Art. 49(2); Annex VIII Section B"),
        ("section_c", "Section C: a deployer that is a public authority", "Art. 49(3); Annex VIII Section C"),
    ],
}
#: Who fills a blank in.
BLANK = "to be filled in by the provider or the deployer"
GENERATED = facts_of.GENERATED


def blank(what: str, *, suggested: object = None) -> dict[str, Any]:
    """A field no setting answers: a person fills it in (``suggested``: what the installation knows)."""
    field: dict[str, Any] = {"value": None, "blank": True, "to_fill": what}
    if suggested:
        field["suggested"] = suggested
    return field


def filled(value: object, source: str) -> dict[str, Any]:
    return {"value": value, "blank": False, "filled_from": source}


def _setting(value: str | None, setting: str, what: str) -> dict[str, Any]:
    return filled(value, setting) if value else blank(f"{what} (or set {setting})")


def gather(store: Store) -> dict[str, Any]:
    """Every fact the three documents state, read now from the installation."""
    settings = store.settings
    family = model_family(settings.embedder)
    sources = [s for s, _, _ in store.sources()]
    return {
        "versions": facts_of.versions(),
        "model_files": facts_of.model_files(settings),
        "pipeline": facts_of.pipeline_facts(settings, store.model_sha256),
        "index": facts_of.index_facts(store),
        "thresholds": facts_of.thresholds(settings),
        "accuracy": facts_of.accuracy(store),
        "oversight": facts_of.oversight_facts(store),
        "logging": facts_of.logging_facts(store),
        "changes": facts_of.change_facts(store),
        "known_limits": facts_of.known_limits({family, settings.detector}),
        "sources": {
            "count": len(sources),
            "by_mode": {m: sum(1 for s in sources if s.mode == m) for m in sorted({s.mode for s in sources})},
            "jurisdictions": sorted({s.jurisdiction for s in sources}),
            "lawful_bases": sorted({s.lawful_basis for s in sources}),
        },
        "signing_key": signatures.public_key_info(store.keyring),
    }


def _header(store: Store, name: str, now: datetime, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "document": name,
        "title": TITLES[name],
        "generated_at": now.isoformat(),
        "system": f"{words.NAME} {facts['versions']['lethe']}",
        "code_sha256": facts["versions"]["code_sha256"],
        "controller": store.settings.controller_name,
        "signed_with": {"key_sha256": facts["signing_key"]["key_sha256"], "algorithm": signatures.ALGORITHM},
        "contents": [{"key": k, "title": t, "law": law} for k, t, law in SECTIONS[name]],
    }


def technical_documentation(store: Store, facts: dict[str, Any], now: datetime) -> dict[str, Any]:
    settings = store.settings
    limits = facts["known_limits"]
    return _header(store, "technical_documentation", now, facts) | {
        "general_description": {
            "name": words.NAME,
            "description": words.DESCRIPTION,
            "classification": words.CLASSIFICATION,
            "provider": _setting(settings.controller_name, "LETHE_CONTROLLER_NAME", "the provider's name"),
            "provider_contact": _setting(settings.dpo_contact, "LETHE_DPO_CONTACT", "a contact"),
            "version": facts["versions"]["lethe"],
            "relation_to_previous_versions": "The earlier generations of this documentation in this "
            "installation, with their SHA-256, are listed under changes.",
            "interaction_with_other_systems": words.INTERACTIONS,
            "forms_of_delivery": words.FORMS_OF_DELIVERY,
            "hardware": words.HARDWARE,
            "user_interface": words.USER_INTERFACE,
            "instructions_for_use": "instructions_for_use.html and .json, generated and signed with this "
            "document",
        },
        "intended_purpose": {
            "purpose": words.INTENDED_PURPOSE,
            "users": words.INTENDED_USERS,
            "persons_concerned": words.PERSONS_CONCERNED,
            "not_intended": words.NOT_INTENDED,
            "sources_declared": facts["sources"],
        },
        "versions": facts["versions"],
        "design_specifications": {
            "development": words.DEVELOPMENT,
            "general_logic": words.LOGIC,
            "design_choices": words.DESIGN_CHOICES,
            "output": words.OUTPUT,
            "pipeline": facts["pipeline"],
            "model_files": facts["model_files"],
            "index": facts["index"],
            "thresholds": facts["thresholds"],
        },
        "data_and_calibration": {
            "training": "Lethe trains no model; the models' publishers trained them.",
            "model_training_data": {
                name: words.MODEL_DATA[name]
                for name in (facts["accuracy"]["model_family"], settings.detector)
                if name in words.MODEL_DATA
            },
            "evaluation_data": words.EVALUATION_DATA,
            "testing": words.TESTING,
            "calibration": facts["accuracy"]["calibration"],
            "responsible_person": blank("the name and role of the person who answers for the test reports"),
        },
        "accuracy": {k: v for k, v in facts["accuracy"].items() if k != "calibration"}
        | {
            "metrics_appropriate": words.METRICS_APPROPRIATE,
            "calibration_table": "under data and calibration",
        },
        "known_limits": limits,
        "human_oversight": {"measures": words.HUMAN_OVERSIGHT, "in_force": facts["oversight"]},
        "logging": {"measures": words.LOGGING, "in_force": facts["logging"]},
        "cybersecurity": words.CYBERSECURITY,
        "risk_management": {
            "built_in_measures": words.RISK_MEASURES,
            "known_limits": [lim["id"] for lim in limits["limits"]],
            "risk_management_system": blank(
                "the provider's risk management process (Art. 9): owner, review dates, the risks accepted"
            ),
        },
        "changes": {"predetermined": words.CHANGES_PREDETERMINED} | facts["changes"],
        "standards": words.STANDARDS,
        "declaration_of_conformity": blank(
            "a copy of the EU declaration of conformity (Art. 47), once the conformity assessment is done; "
            "for Annex III point 1 by a notified body unless harmonised standards are applied (Art. 43(1))"
        ),
        "post_market_monitoring": {
            "system": words.POST_MARKET,
            "plan": blank(
                "the post-market monitoring plan: who reads the report, how often, what triggers action"
            ),
        },
    }


def _group_limits(limits: dict[str, Any]) -> list[dict[str, Any]]:
    ids = {"children", "east-asian-confusion", "relatives", "per-group-rates", "evaluation-population"}
    return [lim for lim in limits["limits"] if lim["id"] in ids]


def instructions_for_use(store: Store, facts: dict[str, Any], now: datetime) -> dict[str, Any]:
    settings = store.settings
    limits = facts["known_limits"]
    return _header(store, "instructions_for_use", now, facts) | {
        "a_provider": {
            "provider": _setting(settings.controller_name, "LETHE_CONTROLLER_NAME", "the provider's name"),
            "contact": _setting(settings.dpo_contact, "LETHE_DPO_CONTACT", "the provider's contact details"),
            "authorised_representative": blank("where the provider is outside the Union (Art. 22)"),
            "system": f"{words.NAME} {facts['versions']['lethe']}",
        },
        "b_characteristics": {
            "i_intended_purpose": {"purpose": words.INTENDED_PURPOSE, "not_intended": words.NOT_INTENDED},
            "ii_accuracy": {
                "at_thresholds_in_force": facts["accuracy"]["at_thresholds_in_force"],
                "gallery_faces_now": facts["accuracy"]["gallery_faces_now"],
                "metrics": facts["accuracy"]["metrics"],
                "calibration": facts["accuracy"]["calibration"],
                "robustness_and_cybersecurity": words.CYBERSECURITY,
                "circumstances_affecting_accuracy": [
                    {"limit": lim["title"], "what": lim["what"]} for lim in limits["limits"]
                ],
            },
            "iii_risks_and_misuse": {
                "foreseeable_misuse": words.NOT_INTENDED,
                "risks": [
                    "A wrongful identification acted upon (a false match): kept in check by the threshold, "
                    "the band and two-person verification.",
                    "A person's photo missed by a search or an erasure (a false non-match): review bands, "
                    "re-search after erasure.",
                    "Bystanders' faces in an all_faces source: prefer enrolled_only for events.",
                ],
            },
            "iv_explaining_output": words.EXPLAINING,
            "v_persons_and_groups": [
                {"limit": lim["title"], "what": lim["what"], "do": lim["deployer_action"]}
                for lim in _group_limits(limits)
            ],
            "vi_input_data": {
                "specification": words.INPUT_SPEC,
                "max_image_pixels": settings.max_image_pixels,
                "max_image_bytes": settings.max_image_bytes,
                "min_face_px": settings.min_face_px,
            },
            "vii_interpreting_output": words.INTERPRETING,
        },
        "c_predetermined_changes": words.CHANGES_PREDETERMINED,
        "d_human_oversight": {"measures": words.HUMAN_OVERSIGHT, "in_force": facts["oversight"]},
        "e_resources_and_maintenance": {"hardware": words.HARDWARE, "maintenance": words.MAINTENANCE},
        "f_logs": {"measures": words.LOGGING, "in_force": facts["logging"]},
        "what_to_do_for_each_limit": [
            {"limit": lim["title"], "do": lim["deployer_action"]} for lim in limits["limits"]
        ],
    }


#: The Member States of the Union (Annex VIII A.10 names Member States, not any jurisdiction).
EU_STATES = frozenset(
    ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU")
    + ("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
)


def eu_database_registration(
    store: Store, facts: dict[str, Any], now: datetime, instructions_sha256: str
) -> dict[str, Any]:
    settings = store.settings
    provider = _setting(settings.controller_name, "LETHE_CONTROLLER_NAME", "the provider's name")
    contact = _setting(settings.dpo_contact, "LETHE_DPO_CONTACT", "the provider's contact details")
    states = [j for j in facts["sources"]["jurisdictions"] if j in EU_STATES]
    version = facts["versions"]["lethe"]
    reference = (
        f"{words.NAME} {version}; code SHA-256 {facts['versions']['code_sha256']}; embedder model SHA-256 "
        f"{facts['pipeline']['template_model_sha256']}"
    )

    def point(number: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"point": number, "field": name, "entry": value}

    return _header(store, "eu_database_registration", now, facts) | {
        "note": "Copy each field into the EU database (Art. 71). Fields marked blank need a person; the "
        "others were filled from this installation when this file was generated.",
        "section_a": [
            point(
                "A.1",
                "Name, address and contact details of the provider",
                {"name": provider, "contact": contact, "address": blank("the provider's postal address")},
            ),
            point(
                "A.2",
                "Person submitting the information on the provider's behalf",
                blank("where another person registers"),
            ),
            point(
                "A.3", "Authorised representative", blank("where the provider is outside the Union (Art. 22)")
            ),
            point("A.4", "Trade name and unambiguous reference", filled(reference, "the installation")),
            point(
                "A.5",
                "Intended purpose; components and functions",
                filled(
                    f"{words.INTENDED_PURPOSE} Components: detector {settings.detector}, embedder "
                    f"{facts['pipeline']['embedder_model']}, index {settings.index}.",
                    "the release",
                ),
            ),
            point(
                "A.6",
                "Information used by the system (data, inputs) and its operating logic",
                filled(
                    "Inputs: photos of declared sources and probe photos. Operating logic: "
                    + " ".join(words.LOGIC),
                    "the release",
                ),
            ),
            point(
                "A.7",
                "Status (on the market / in service / no longer / recalled)",
                blank("the system's status", suggested="in service" if facts["sources"]["count"] else None),
            ),
            point(
                "A.8",
                "Notified body certificate: type, number, expiry, body",
                blank("where a notified body assessed it (Annex III point 1: Art. 43(1))"),
            ),
            point("A.9", "Scanned copy of that certificate", blank("where applicable")),
            point(
                "A.10",
                "Member States where placed on the market, put into service or made available",
                blank("the Member States", suggested=states or None),
            ),
            point(
                "A.11", "Copy of the EU declaration of conformity (Art. 47)", blank("the signed declaration")
            ),
            point(
                "A.12",
                "Electronic instructions for use",
                filled(
                    {
                        "file": "instructions_for_use.html",
                        "sha256": instructions_sha256,
                        "note": "not given for Annex III points 1, 6 and 7 in law enforcement, "
                        "migration, asylum or border control management",
                    },
                    "generated with this file",
                ),
            ),
            point("A.13", "URL for additional information (optional)", blank("optional")),
        ],
        "section_b": {
            "applies": False,
            "why": "Section B is for a provider who concluded under Art. 6(3) that an Annex III system is "
            "not high-risk. Lethe is high-risk (Annex III point 1(a), remote biometric identification) and "
            "claims no such derogation.",
        },
        "section_c": {
            "applies": "only where the deployer is a public authority, agency or body, or acts on its "
            "behalf (Art. 49(3)); in law enforcement or migration the entry goes to the non-public section "
            "(Art. 49(4))",
            "fields": [
                point(
                    "C.1",
                    "Name, address and contact details of the deployer",
                    {"name": provider, "contact": contact, "address": blank("the deployer's postal address")},
                ),
                point(
                    "C.2",
                    "Person submitting the information on the deployer's behalf",
                    blank("where another person registers"),
                ),
                point(
                    "C.3",
                    "URL of the provider's entry of the system in the EU database",
                    blank("after the provider registered"),
                ),
                point(
                    "C.4",
                    "Summary of the fundamental rights impact assessment (Art. 27)",
                    blank("a summary of the FRIA's findings"),
                ),
                point(
                    "C.5",
                    "Summary of the data protection impact assessment (GDPR Art. 35)",
                    blank("a summary of the DPIA"),
                ),
            ],
        },
    }


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode()


_POINT = re.compile(r"(i|ii|iii|iv|v|vi|vii)_(.*)")


def _label(key: object) -> str:
    """A key in words: ``ii_accuracy`` -> "(ii) Accuracy", ``fpir`` -> "FPIR"."""
    point = _POINT.fullmatch(str(key))
    if point:
        return f"({point[1]}) {_label(point[2])}"
    text = str(key).replace("_", " ")
    for word, shown in (
        ("fpir", "FPIR"),
        ("fnir", "FNIR"),
        ("sha256", "SHA-256"),
        ("ci95", "95% CI"),
        ("px", "px"),
        ("dpo", "DPO"),
        ("eu", "EU"),
    ):
        text = " ".join(shown if w == word else w for w in text.split(" "))
    return text[:1].upper() + text[1:]


def _rate_words(rate: dict[str, Any]) -> str:
    shown = f"{rate['rate'] * 100:.2f}%"
    if rate.get("errors") is not None:
        shown += f" ({rate['errors']:,} of {rate['trials']:,}"
        shown += (
            f"; 95% CI {rate['ci95'][0] * 100:.2f}-{rate['ci95'][1] * 100:.2f}%)" if rate.get("ci95") else ")"
        )
    return shown


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of a table's rows, in the order they first appear."""
    return list(dict.fromkeys(k for row in rows for k in row))


def _page(document: dict[str, Any]) -> bytes:
    return render(
        "technical_document.html", doc=document, label=_label, rate_words=_rate_words, columns=_columns
    ).encode()


def documents(store: Store, *, now: datetime) -> dict[str, bytes]:
    """The three documents (JSON and HTML), each file's signature, and the public key: file name
    -> bytes."""
    facts = gather(store)
    files: dict[str, bytes] = {}
    made = {
        "technical_documentation": technical_documentation(store, facts, now),
        "instructions_for_use": instructions_for_use(store, facts, now),
    }
    files["instructions_for_use.json"] = _json(made["instructions_for_use"])
    files["instructions_for_use.html"] = _page(made["instructions_for_use"])
    ifu_sha = hashlib.sha256(files["instructions_for_use.html"]).hexdigest()
    made["eu_database_registration"] = eu_database_registration(store, facts, now, ifu_sha)
    for name in ("technical_documentation", "eu_database_registration"):
        files[f"{name}.json"] = _json(made[name])
        files[f"{name}.html"] = _page(made[name])
    for name, kind in KINDS.items():
        for suffix in (".json", ".html"):
            file = name + suffix
            record = signatures.sign_bytes(store.keyring, kind, files[file], at=now, file=file)
            files[file + signatures.SUFFIX] = signatures.record_bytes(record)
    key = facts["signing_key"]
    files["signing_key.json"] = _json(key)
    files["signing_key.pem"] = key["pem"].encode()
    return dict(sorted(files.items()))


def pack_files(store: Store, *, now: datetime) -> dict[str, bytes]:
    """What the technical file adds to the evidence pack (file name -> bytes): the three documents
    in JSON and HTML, each file's ``.sig.json``, and the signing key (``signing_key.json``, ``.pem``)."""
    return documents(store, now=now)


def _record(store: Store, files: dict[str, bytes], actor: str) -> None:
    hashes = {
        n: hashlib.sha256(b).hexdigest()
        for n, b in files.items()
        if n.endswith((".json", ".html")) and not n.endswith(signatures.SUFFIX) and n != "signing_key.json"
    }
    store.catalog.record(audit.record(actor, GENERATED, {"files": len(files), "sha256": hashes}))


def write(store: Store, out: Path, *, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Write the technical file into ``out`` (created private) and audit the generation."""
    at = now or now_utc()
    files = documents(store, now=at)
    folder = private_dir(out)
    for name, data in files.items():
        atomic_write(folder / name, data)
    _record(store, files, actor)
    return {
        "out": str(folder),
        "files": sorted(files),
        "generated_at": at.isoformat(),
        "key_sha256": json.loads(files["signing_key.json"])["key_sha256"],
    }


def generate(store: Store, *, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """The three documents for the API, audited like :func:`write`: ``documents`` (name -> JSON
    object) and ``files``, the JSON files exactly as signed with their ``.sig.json`` records and the
    public key (file name -> text), so a client saves them and checks each signature as it is."""
    at = now or now_utc()
    files = documents(store, now=at)
    _record(store, files, actor)
    return {
        "documents": {name: json.loads(files[f"{name}.json"]) for name in KINDS},
        "files": {name: data.decode() for name, data in files.items() if name.endswith(".json")},
    }
