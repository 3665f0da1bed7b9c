"""The facts of the DPIA, the FRIA and the Art. 30 record in words (:mod:`lethe.privacy.
assessment_documents`): the measured error rates, the oversight and security measures in force, the
rights workflow's figures, the usage volumes and the risks with what the system shows about each;
each sentence is built from a fact, never typed in as a claim."""

from __future__ import annotations

from typing import Any


def pct(rate: float | None) -> str:
    return "not measured" if rate is None else f"{rate * 100:.2f}%"


def plural(n: int, word: str) -> str:
    suffix = "" if n == 1 else ("es" if word.endswith(("s", "ch", "sh", "x")) else "s")
    return f"{n:,} {word}{suffix}"


def controller(facts: dict[str, Any]) -> str:
    return facts["controller"]["name"] or "The controller (LETHE_CONTROLLER_NAME is not set)"


def source_table(sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "columns": [
            "Source",
            "Purpose",
            "Lawful basis (Art. 6)",
            "Condition for biometric data (Art. 9(2))",
            "Whose faces are kept",
            "Country",
            "Kept for",
            "Photos",
            "Faces",
            "Consents (active)",
        ],
        "rows": [
            [
                s["source"],
                s["purpose"],
                s["basis_words"],
                s["art9_words"],
                s["mode_words"],
                s["jurisdiction"],
                f"{s['retention_days']} days",
                s["images"],
                s["faces"],
                s["consents_active"],
            ]
            for s in sources
        ],
    }


def rates_words(facts: dict[str, Any]) -> str:
    measured = facts["error_rates"]["at_match_threshold"]
    threshold = facts["thresholds"]["match"]
    if measured is None:
        return (
            f"The match threshold ({threshold}) is below every measured threshold: no error rate "
            "was measured there, and false matches are more frequent than at any measured one."
        )
    return (
        f"At the match threshold {threshold} (measured at {measured['measured_threshold']} on LFW 1:N "
        f"identification, a gallery of {measured['measured_gallery_faces']:,} faces), "
        f"{pct(measured['fpir'])} of searches for someone absent from the gallery returned a match (a "
        f"wrong one: FPIR) and {pct(measured['fnir'])} of searches for someone present missed them (FNIR)."
    )


def oversight_items(facts: dict[str, Any]) -> list[str]:
    o = facts["oversight"]
    required = o["verifiers_required"]
    items = [
        f"Two-person verification (AI Act Art. 14(5)): a match is a candidate until {required} "
        f"verifier(s) confirm it, each alone; nothing is done on an unverified match."
        + (
            f" Lowered to one under the exemption: {o['exemption']}."
            if required < 2 and o["exemption"]
            else ""
        ),
        f"{plural(o['verifiers_trained'], 'verifier')} with a current training record "
        f"({o['verifiers_lapsed']} lapsed; training lapses after {o['verifier_training_days']} days, "
        "Arts. 4, 26(2)).",
        "A verifier sees the similarity score only after their verdict (against automation bias, "
        "Art. 14(4)(b))."
        if o["score_after_judgement"]
        else "Verifiers see the similarity score before their verdict.",
        "An administrator can stop all identification at once (Art. 14(4)(e)): "
        + (
            f"stopped since {o['global_stop']['since']}."
            if o["global_stop"]["stopped"]
            else "not stopped now."
        ),
        "Automatic erasure batches need a second DPO's sign-off."
        if o["erasure_second_signoff"]
        else "Automatic erasure batches at a data subject's request run without a second sign-off.",
        f"Misuse alerts: over {o['misuse_alerts']['daily_searches']} searches a day by one operator, "
        f"the same probe searched {o['misuse_alerts']['repeated_probe']} times, a use open after "
        f"{o['misuse_alerts']['open_use_searches']} searches"
        + (
            f", searches outside {o['misuse_alerts']['working_hours']}"
            if o["misuse_alerts"]["working_hours"]
            else ""
        )
        + f"; at most {o['search_rate_per_minute']} searches a minute per user.",
    ]
    if o["orders_in_force"]:
        items.append(f"Regulators' stop orders in force for: {', '.join(o['orders_in_force'])}.")
    return items


def security_items(facts: dict[str, Any]) -> list[str]:
    s = facts["security"]
    roles = ", ".join(f"{n} {role}" for role, n in s["roles"].items()) or "none yet"
    return [
        f"Templates and face crops encrypted with {s['encryption']}, one data key per source "
        f"({plural(s['source_keys'], 'source key')} now); destroying a source's key erases all of it "
        "(crypto-shredding).",
        "The master key that wraps the data keys is "
        + (
            "inside the data folder: a backup of the folder carries what decrypts it."
            if s["master_key_inside_data_folder"]
            else "outside the data folder."
        ),
        "The vector index is sealed (AES-256-GCM) on disk."
        if s["index_sealed"]
        else f"The vector index ({s['index']}) holds templates in clear on its server: encrypt its volumes.",
        f"A hash-chained audit log of every search, ingest, erasure and decision: {s['audit_entries']:,} "
        f"entries, chain {'intact' if s['audit_chain_ok'] else 'BROKEN'}, {s['audit_checkpoints']} signed "
        f"(Ed25519) checkpoint(s); kept {s['log_retention_days']} days.",
        f"Role-based access, active accounts by role: {roles}; sessions end after "
        f"{s['session_max_age_s'] / 3600:g} hours, "
        f"API tokens after {s['token_days']} days; logins back off after {s['login_failures']} failures"
        + (
            "; cookies are HTTPS-only."
            if s["cookie_secure"]
            else "; cookies are not marked Secure (no HTTPS set)."
        ),
        "Logs hold ids and counts only: never a template, a photo or a data subject's name.",
    ]


def rights_items(facts: dict[str, Any]) -> list[str]:
    r = facts["rights"]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r["by_kind"].items()))
    channels = ", ".join(f"{n} by {c}" for c, n in sorted(r["by_channel"].items()))
    split = f" ({kinds}; {channels})" if r["requests"] else " so far"
    times = (
        f"median {r['median_response_days']} days, longest {r['max_response_days']} days"
        if r["answered"]
        else "none answered yet"
    )
    authorities = sorted({(s["jurisdiction"], s["authority"]) for s in facts["sources"]})
    return [
        f"Data subjects' requests (access, erasure, objection, restriction; GDPR Arts. 15-21) through the "
        f"public portal or the DPO: {plural(r['requests'], 'request')}{split}.",
        f"Answered: {r['answered']} ({times}); {r['answered_late']} answered late; {r['extended']} extended "
        f"with a reason; {r['open']} open, {r['overdue']} overdue (one month, Art. 12(3)).",
        "Every answer and refusal names the complaint route: "
        + ("; ".join(f"{name} ({code})" for code, name in authorities) or "the supervisory authority")
        + " (GDPR Art. 77), and the courts (Arts. 78-79).",
    ]


def limit_items(facts: dict[str, Any]) -> list[str]:
    """Each known limit of the measurements, with what the deployer should do about it."""
    known = facts["model"]["known_limits"]
    return [
        f"Known limit: {limit['title']}. {limit['what']} What to do: {limit['deployer_action']} "
        f"({known['file']}, version {known['version']})"
        for limit in known["limits"]
    ]


def usage_words(facts: dict[str, Any]) -> str:
    u = facts["usage"]
    if not u["searches"]:
        return "No search has been run yet."
    return (
        f"{plural(u['searches'], 'search')} from {u['first_search_words']} to {u['last_search_words']} "
        f"({u['searches_per_week']} a week on average, {u['busiest_week']} in the busiest week, by at most "
        f"{u['most_operators_in_a_week']} operator(s) in a week); {u['searches_with_match']} returned "
        "a match "
        f"({u['matches']} matches in all)."
    )


def recipients_table(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "columns": [
            "Recipient",
            "Kind",
            "Country",
            "Outside the EEA",
            "Safeguard of the transfer",
            "Disclosures",
        ],
        "rows": [
            [
                r["name"],
                r["kind_words"],
                r["country"],
                "yes" if r["outside_eea"] else "no",
                r["safeguard"] or ("none recorded" if r["outside_eea"] else "—"),
                r["disclosures"],
            ]
            for r in facts["recipients"]
        ],
    }


def wp248(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """The WP248 rev.01 criteria the facts decide (``met`` True or False) or leave to the controller
    (``met`` None); two or more met call for a DPIA in principle."""
    t = facts["totals"]
    return [
        {"criterion": "sensitive data (biometric data to identify a person, Art. 9(1))", "met": True},
        {"criterion": "innovative use of technology (face recognition)", "met": True},
        {
            "criterion": "matching or combining data sets "
            f"({plural(t['sources'], 'source')} searched together)",
            "met": t["sources"] > 1,
        },
        {
            "criterion": "vulnerable data subjects "
            f"({t['consents_parental']} consent(s) given by a parent for a child)",
            "met": True if t["consents_parental"] else None,
        },
        {
            "criterion": f"large scale ({t['faces']:,} faces of {t['images']:,} photos; whether that "
            "is large scale is the controller's reading)",
            "met": None,
        },
        {"criterion": "systematic monitoring of a publicly accessible area", "met": None},
    ]


def risk_rows(facts: dict[str, Any]) -> list[list[str]]:
    t, u, r, s = facts["totals"], facts["usage"], facts["rights"], facts["security"]
    auto = facts["error_rates"]["at_erasure_automatic_threshold"]
    alerts = sum(u["alerts"].values())
    return [
        ["A person wrongly identified (a false match acted upon)", rates_words(facts)],
        [
            "A person's faces missed by an erasure or access request",
            f"At the automatic erasure threshold {facts['thresholds']['erasure_automatic']}, FNIR "
            f"{pct(auto['fnir'] if auto else None)}; faces from "
            f"{facts['thresholds']['erasure_review']} go to a person's review.",
        ],
        [
            "Unequal accuracy across groups; children; poor photos",
            "Known limits of the measurements: "
            + "; ".join(limit["title"].lower() for limit in facts["model"]["known_limits"]["limits"])
            + " (each stated below).",
        ],
        [
            "Children and other vulnerable persons in the photos",
            f"{t['consents_parental']} active consent(s) given by a parent for a child; "
            f"{t['all_faces_sources']} source(s) keep every face found, children's included: the system "
            "does not and may not tell age.",
        ],
        [
            "Misuse by staff (searching someone without a lawful purpose)",
            f"{plural(u['searches'], 'search')} so far, each with a stated purpose in the audit log; "
            f"{alerts} misuse alert(s) raised.",
        ],
        [
            "Loss of anonymity of people photographed in public or at events",
            f"{t['all_faces_sources']} source(s) index every face; {t['faces']:,} faces held.",
        ],
        ["A breach exposing templates", " ".join(security_items(facts)[:3])],
        [
            "Rights not honoured in time",
            f"{r['overdue']} request(s) overdue now, {r['answered_late']} answered late.",
        ],
        [
            "A broken or altered record of use",
            f"Audit chain {'intact' if s['audit_chain_ok'] else 'BROKEN'} over "
            f"{s['audit_entries']:,} entries.",
        ],
    ]
