"""The words of each message to a requester, in plain language (GDPR Art. 12(1)), in English and
French: :func:`render` builds a message's subject and body from a :class:`Facts`.

A message names the request's reference, its kind, dates, counts and the complaint route; never a
photo's file, a face's id, a source's name or another person. The English answer is the answer
letter drafted from the request's outcome (:mod:`lethe.privacy.requests.letter`); the French one
says the same in French.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lethe.errors import InputError
from lethe.privacy.notice import SUPERVISORY_AUTHORITIES
from lethe.privacy.signatures import receipt_jobs

LANGUAGES = ("en", "fr")
KINDS = ("acknowledgement", "identity_check", "extension", "answer", "refusal")

#: The website of each supervisory authority of :data:`lethe.privacy.notice.SUPERVISORY_AUTHORITIES`.
AUTHORITY_WEBSITES: dict[str, str] = {
    "AT": "https://www.dsb.gv.at",
    "BE": "https://www.autoriteprotectiondonnees.be",
    "BG": "https://www.cpdp.bg",
    "CH": "https://www.edoeb.admin.ch",
    "CY": "https://www.dataprotection.gov.cy",
    "CZ": "https://uoou.gov.cz",
    "DE": "https://www.bfdi.bund.de",
    "DK": "https://www.datatilsynet.dk",
    "EE": "https://www.aki.ee",
    "ES": "https://www.aepd.es",
    "FI": "https://tietosuoja.fi",
    "FR": "https://www.cnil.fr",
    "GB": "https://ico.org.uk",
    "GR": "https://www.dpa.gr",
    "HR": "https://azop.hr",
    "HU": "https://www.naih.hu",
    "IE": "https://www.dataprotection.ie",
    "IS": "https://www.personuvernd.is",
    "IT": "https://www.garanteprivacy.it",
    "LI": "https://www.datenschutzstelle.li",
    "LT": "https://vdai.lrv.lt",
    "LU": "https://cnpd.public.lu",
    "LV": "https://www.dvi.gov.lv",
    "MT": "https://idpc.org.mt",
    "NL": "https://autoriteitpersoonsgegevens.nl",
    "NO": "https://www.datatilsynet.no",
    "PL": "https://uodo.gov.pl",
    "PT": "https://www.cnpd.pt",
    "RO": "https://www.dataprotection.ro",
    "SE": "https://www.imy.se",
    "SI": "https://www.ip-rs.si",
    "SK": "https://dataprotection.gov.sk",
}


@dataclass(frozen=True, slots=True)
class Facts:
    """What a message may say about its request."""

    ref: str
    request_kind: str
    state: str
    received_at: datetime
    due_at: datetime
    first_month_ends: datetime
    controller: str | None = None
    dpo_contact: str | None = None
    reason: str | None = None
    previous_due_at: datetime | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    jurisdictions: tuple[str, ...] = ()
    english_answer: str | None = None


def check_language(language: str | None) -> str | None:
    """``language`` (lower case) when it is one of :data:`LANGUAGES`, ``None`` when unset; else an
    :class:`InputError`."""
    if language is None or not language.strip():
        return None
    value = language.strip().lower()
    if value not in LANGUAGES:
        raise InputError(f"language must be one of {', '.join(LANGUAGES)}")
    return value


def authorities(jurisdictions: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """(country code, authority, website) of each jurisdiction with a known authority."""
    return [
        (c, SUPERVISORY_AUTHORITIES[c], AUTHORITY_WEBSITES.get(c))
        for c in dict.fromkeys(j.upper() for j in jurisdictions)
        if c in SUPERVISORY_AUTHORITIES
    ]


def render(kind: str, language: str, facts: Facts) -> tuple[str, str]:
    """The subject and body of message ``kind`` in ``language``."""
    words = _EN if language == "en" else _FR
    subject, body = words[kind](facts)
    return subject, f"{body.strip()}\n\n{_signature(language, facts)}\n"


def _listed(f: Facts) -> str:
    """The supervisory authorities of the sources concerned, one a line (name, website)."""
    found = authorities(f.jurisdictions)
    return "".join(f"\n- {name}" + (f", {site}" if site else "") for _, name, site in found)


def _d(when: datetime) -> str:
    return when.date().isoformat()


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _signature(language: str, facts: Facts) -> str:
    if language == "fr":
        who = facts.controller or "Le délégué à la protection des données"
        contact = (
            f"\nÉcrire au délégué à la protection des données : {facts.dpo_contact}"
            if facts.dpo_contact
            else ""
        )
        return f"{who}{contact}\nRéférence de votre demande : {facts.ref}"
    who = facts.controller or "The data-protection officer"
    contact = f"\nWrite to our data-protection officer: {facts.dpo_contact}" if facts.dpo_contact else ""
    return f"{who}{contact}\nYour request's reference: {facts.ref}"


# -- English ------------------------------------------------------------------------------------------

_KIND_EN = {"access": "access", "erasure": "erasure", "objection": "objection", "restriction": "restriction"}


def _ack_en(f: Facts) -> tuple[str, str]:
    return f"Your request {f.ref} was received", (
        f"Hello,\n\nWe received your {_KIND_EN[f.request_kind]} request on {_d(f.received_at)}. Its "
        f"reference is {f.ref}: please quote it whenever you write to us.\n\n"
        "What happens next: the data-protection officer first checks that you are the person in the "
        "photos you sent (a request about someone else's face is refused). Then we search our photo "
        "collection for you and carry out your request. We answer at this address by "
        f"{_d(f.due_at)} at the latest. If we need more time, we tell you why before "
        f"{_d(f.first_month_ends)}."
    )


def _identity_en(f: Facts) -> tuple[str, str]:
    access = (
        " For an access request we need the identity document: the answer hands out photos of you, "
        "and sent to the wrong person it would disclose your data."
        if f.request_kind == "access"
        else ""
    )
    return f"Your request {f.ref}: we need to check your identity", (
        f"Hello,\n\nBefore we act on your request {f.ref}, the data-protection officer must check that "
        "you are the person in the photos you sent. Please reply with one of: a copy of an identity "
        "document with a photo (you may hide its number and everything but your name and photo), "
        "which we compare with the photos you sent; a signed letter; or come in person."
        f"{access}\n\n"
        "Why: we may only act on a request about your own face, and this check keeps anyone else "
        "from asking in your name. We record only that the check was made and how, not a copy of "
        f"your document. Your request is still due by {_d(f.due_at)}."
    )


def _extension_en(f: Facts) -> tuple[str, str]:
    before = f" (it was due by {_d(f.previous_due_at)})" if f.previous_due_at else ""
    return f"Your request {f.ref}: we need more time", (
        f"Hello,\n\nWe need more time to answer your request {f.ref}, received on {_d(f.received_at)}. "
        f"The reason: {f.reason}\n\nThe law allows us up to two more months for this (GDPR Art. 12(3)). "
        f"We will answer by {_d(f.due_at)} at the latest{before}."
    )


def _answer_en(f: Facts) -> tuple[str, str]:
    return f"Your request {f.ref}: our answer", f.english_answer or ""


def _complaint_en(f: Facts) -> str:
    listed = _listed(f)
    where = f" The supervisory authority for our photo collection:{listed}\n" if listed else " "
    return (
        "You may lodge a complaint with a data-protection supervisory authority (GDPR Art. 77)."
        f"{where}You may also complain to the authority of the country where you live or work. And you "
        "may take the matter to court: you have the right to an effective judicial remedy (GDPR Art. 79)."
    )


def _refusal_en(f: Facts) -> tuple[str, str]:
    return f"Your request {f.ref}: we cannot act on it", (
        f"Hello,\n\nWe cannot act on your request {f.ref}, received on {_d(f.received_at)}. "
        f"The reason: {f.reason}\n\nThe photos you sent us are deleted.\n\n{_complaint_en(f)}"
    )


_EN = {
    "acknowledgement": _ack_en,
    "identity_check": _identity_en,
    "extension": _extension_en,
    "answer": _answer_en,
    "refusal": _refusal_en,
}

# -- French -------------------------------------------------------------------------------------------

_KIND_FR = {
    "access": "d'accès",
    "erasure": "d'effacement",
    "objection": "d'opposition",
    "restriction": "de limitation",
}


def _ack_fr(f: Facts) -> tuple[str, str]:
    return f"Votre demande {f.ref} a bien été reçue", (
        f"Bonjour,\n\nNous avons reçu votre demande {_KIND_FR[f.request_kind]} le {_d(f.received_at)}. "
        f"Sa référence est {f.ref} : merci de la rappeler dans chacun de vos messages.\n\n"
        "La suite : le délégué à la protection des données vérifie d'abord que vous êtes bien la "
        "personne des photos que vous avez envoyées (une demande qui porte sur le visage de quelqu'un "
        "d'autre est refusée). Nous cherchons ensuite vos photos dans notre collection et donnons suite "
        f"à votre demande. Nous vous répondons à cette adresse au plus tard le {_d(f.due_at)}. S'il nous "
        f"faut plus de temps, nous vous en dirons la raison avant le {_d(f.first_month_ends)}."
    )


def _identity_fr(f: Facts) -> tuple[str, str]:
    access = (
        " Pour une demande d'accès, il nous faut la pièce d'identité : la réponse contient des photos "
        "de vous, et envoyée à une autre personne elle divulguerait vos données."
        if f.request_kind == "access"
        else ""
    )
    return f"Votre demande {f.ref} : vérification de votre identité", (
        f"Bonjour,\n\nAvant de donner suite à votre demande {f.ref}, le délégué à la protection des "
        "données doit vérifier que vous êtes bien la personne des photos que vous avez envoyées. Merci "
        "de nous répondre avec l'un de ces éléments : la copie d'une pièce d'identité avec photo (vous "
        "pouvez masquer son numéro et tout sauf votre nom et votre photo), que nous comparons avec vos "
        f"photos ; une lettre signée ; ou venez en personne.{access}\n\n"
        "Pourquoi : nous ne pouvons agir que sur une demande qui porte sur votre propre visage, et "
        "cette vérification empêche quiconque de faire une demande en votre nom. Nous notons seulement "
        "que la vérification a eu lieu et comment, sans garder de copie de votre pièce. Votre demande "
        f"reste à traiter au plus tard le {_d(f.due_at)}."
    )


def _extension_fr(f: Facts) -> tuple[str, str]:
    before = f" (au lieu du {_d(f.previous_due_at)})" if f.previous_due_at else ""
    return f"Votre demande {f.ref} : il nous faut plus de temps", (
        f"Bonjour,\n\nIl nous faut plus de temps pour répondre à votre demande {f.ref}, reçue le "
        f"{_d(f.received_at)}. La raison : {f.reason}\n\nLa loi nous permet de prolonger ce délai de deux "
        f"mois au plus (RGPD, art. 12, paragraphe 3). Nous vous répondrons au plus tard le "
        f"{_d(f.due_at)}{before}."
    )


def _receipts_fr(outcome: dict[str, Any]) -> str:
    """The erasure's signed receipts, as :func:`lethe.privacy.requests.letter._receipts` says them."""
    jobs = receipt_jobs(outcome)
    if not jobs:
        return ""
    return (
        f" Nous conservons un reçu signé de l'effacement (opération {', '.join(jobs)}) : demandez-le-nous ; "
        "vous pourrez le vérifier avec la clé publique de signature publiée sur notre portail de demandes."
    )


def _done_fr(kind: str, outcome: dict[str, Any]) -> str:
    acted = outcome.get("acted_on") or []
    photos = len(acted) if acted else int(outcome.get("erased_images", 0))
    faces = int(outcome.get("erased_faces", outcome.get("faces", 0)) or 0)
    counts = f"{_n(photos, 'photo')} de vous ({_n(faces, 'visage')} en tout)"
    if kind == "erasure":
        if not faces:
            return (
                "Nous avons cherché vos photos dans notre collection et n'en avons trouvé aucune à effacer."
            )
        return (
            f"Nous avons cherché vos photos dans notre collection et effacé {counts} : les photos, les "
            "vignettes des visages et les entrées de l'index de recherche sont supprimées "
            "définitivement. Une copie d'une photo effacée qui nous serait envoyée de nouveau est écartée."
            + _receipts_fr(outcome)
        )
    if kind == "access":
        if not faces:
            return "Nous avons cherché vos photos dans notre collection et ne détenons aucune photo de vous."
        return (
            f"Nous avons cherché vos photos dans notre collection et trouvé {counts}. Vous en trouverez "
            "une copie jointe, avec l'origine de chaque photo et qui l'a recherchée. Nous avons signé "
            "cette copie électroniquement : le fichier how-to-check-the-signature.txt qu'elle contient "
            "explique comment vérifier, avec la clé publique de signature publiée sur notre portail de "
            "demandes, que rien n'y a été modifié depuis que nous l'avons faite."
        )
    what = (
        "n'apparaît plus dans aucune recherche et est écarté de toutes les photos que nous ajouterons"
        if kind == "objection"
        else "reste enregistré mais est caché de toute recherche jusqu'au règlement du litige"
    )
    found = f" Nous avons trouvé {counts}." if faces else ""
    return f"Nous avons enregistré votre demande {_KIND_FR[kind]} : votre visage {what}.{found}"


#: Ce que chaque demande demande aux destinataires des données (RGPD, art. 19).
_RECIPIENTS_ASKED_FR = {
    "erasure": "de les effacer",
    "restriction": "de ne plus les utiliser",
    "objection": "de cesser de les traiter",
}


def _recipients_fr(kind: str, outcome: dict[str, Any]) -> str:
    """Les destinataires prévenus, comme :func:`lethe.privacy.requests.letter.recipients_told`."""
    named = [r for r in outcome.get("recipients_notified") or [] if isinstance(r, dict) and r.get("name")]
    if kind not in _RECIPIENTS_ASKED_FR or not named:
        return ""
    listed = " ; ".join(str(r["name"]) for r in named)
    return (
        f" Nous avions communiqué des données vous concernant à {_n(len(named), 'destinataire')} : "
        f"{listed}. Nous demandons à chacun {_RECIPIENTS_ASKED_FR[kind]} aussi (RGPD, art. 19)."
    )


def _answer_fr(f: Facts) -> tuple[str, str]:
    return f"Votre demande {f.ref} : notre réponse", (
        f"Bonjour,\n\nVotre demande {_KIND_FR[f.request_kind]}, référence {f.ref}, reçue le "
        f"{_d(f.received_at)}.\n\n{_done_fr(f.request_kind, f.outcome)}"
        f"{_recipients_fr(f.request_kind, f.outcome)} Les photos que vous nous avez "
        "envoyées pour vous retrouver sont supprimées.\n\nPour toute question sur cette réponse, "
        "répondez en rappelant votre référence. Vous pouvez introduire une réclamation auprès d'une "
        "autorité de contrôle de la protection des données, notamment dans le pays où vous vivez, où "
        "vous travaillez ou où la violation aurait eu lieu (RGPD, art. 77)."
    )


def _complaint_fr(f: Facts) -> str:
    listed = _listed(f)
    where = f" L'autorité de contrôle dont relève notre collection de photos :{listed}\n" if listed else " "
    return (
        "Vous pouvez introduire une réclamation auprès d'une autorité de contrôle de la protection des "
        f"données (RGPD, art. 77).{where}Vous pouvez aussi vous adresser à l'autorité du pays où vous "
        "vivez ou travaillez. Et vous pouvez saisir la justice : vous avez droit à un recours "
        "juridictionnel effectif (RGPD, art. 79)."
    )


def _refusal_fr(f: Facts) -> tuple[str, str]:
    return f"Votre demande {f.ref} : nous ne pouvons pas y donner suite", (
        f"Bonjour,\n\nNous ne pouvons pas donner suite à votre demande {f.ref}, reçue le "
        f"{_d(f.received_at)}. La raison : {f.reason}\n\nLes photos que vous nous avez envoyées sont "
        f"supprimées.\n\n{_complaint_fr(f)}"
    )


_FR = {
    "acknowledgement": _ack_fr,
    "identity_check": _identity_fr,
    "extension": _extension_fr,
    "answer": _answer_fr,
    "refusal": _refusal_fr,
}
