"""The words of the notices to recipients (:mod:`lethe.privacy.recipient_notices`; GDPR Arts. 19
and 17(2)): what to erase, restrict or stop processing, the disclosures that carried the faces, the
reference and the date; never biometric data, a photo, a path or a name. In English."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lethe.config import Settings
from lethe.privacy.access_words import long_date
from lethe.privacy.disclosures import CHANNELS, Disclosure

__all__ = ["CAUSES", "REASON_WORDS", "body_17_2", "body_19"]

#: What a notice asks of the recipient, per cause.
CAUSES = {
    "erasure": "erase",
    "restriction": "restrict",
    "objection": "stop processing",
}
#: Erasure reasons (``erasure_job.reason``) in words; any other is quoted as it is.
REASON_WORDS = {
    "erasure request": "the data subject asked for erasure (GDPR Art. 17(1))",
    "consent_withdrawn": "the data subject withdrew their consent (GDPR Art. 17(1)(b))",
    "retention": "the retention period of the data ended (GDPR Arts. 5(1)(e) and 17(1)(a))",
    "jurisdiction order": "an order to stop processing in a jurisdiction (GDPR Art. 58(2))",
    "source deleted": "the collection the data came from was deleted",
}


def _controller(settings: Settings) -> str:
    return settings.controller_name or "The controller"


def _closing(settings: Settings, reference: str) -> str:
    contact = settings.dpo_contact
    where = f" Write to our data-protection officer ({contact})" if contact else " Reply to this message"
    return (
        f"\n\nReference: {reference}.{where} quoting it if you have a question. This notice holds no "
        "biometric data, no photo and no name: the faces are named by the ids Lethe gave them.\n"
    )


def _what(disclosure: Disclosure) -> str:
    via = CHANNELS.get(disclosure.channel, disclosure.channel)
    ref = f", {disclosure.reference}" if disclosure.reference else ""
    return f"- {long_date(disclosure.at)}: disclosure {disclosure.id} ({via}{ref})"


def body_19(
    settings: Settings,
    *,
    recipient: str,
    cause: str,
    why: str,
    reference: str,
    at: datetime,
    disclosures: Sequence[Disclosure],
    faces: Sequence[int],
) -> tuple[str, str]:
    controller = _controller(settings)
    ids = ", ".join(str(f) for f in faces)
    listed = "\n".join(_what(d) for d in disclosures)
    if cause == "erasure":
        ask = (
            f"On {long_date(at)} we erased these faces, because {why}. Under GDPR Art. 19 we tell you so: "
            "please erase them, and every copy you made of what we disclosed about them, too."
        )
        subject = f"Erasure notice {reference}: please erase what we disclosed to you"
    elif cause == "restriction":
        ask = (
            f"On {long_date(at)} the processing of these faces was restricted (GDPR Art. 18): the data "
            "subject contests it, or objected, or needs the data kept. Under GDPR Art. 19 we tell you "
            "so: please keep what we disclosed about them but do not use it until we tell you the "
            "restriction is lifted."
        )
        subject = f"Restriction notice {reference}: please stop using what we disclosed to you"
    else:
        ask = (
            f"On {long_date(at)} the data subject objected to the processing of these faces (GDPR "
            "Art. 21), and we no longer use them. We tell you so that you can honour the objection "
            "too: please stop processing what we disclosed about them."
        )
        subject = f"Objection notice {reference}: please stop processing what we disclosed to you"
    body = (
        f"To {recipient},\n\n{controller} disclosed personal data to you:\n{listed}\n\n"
        f"It concerns the faces {ids}. {ask}{_closing(settings, reference)}"
    )
    return subject, body


def body_17_2(
    settings: Settings, *, reference: str, at: datetime, hosts: Sequence[str], photos: int, guest_sources: int
) -> tuple[str, str]:
    places = []
    if hosts:
        places.append(f"{photos} of the erased photos had a web address, on {', '.join(hosts)}")
    if guest_sources:
        places.append(
            f"{guest_sources} of their collections had a guest page that showed their photos to guests"
        )
    body = (
        f"On {long_date(at)} a data subject's erasure (reference {reference}) reached photos that may "
        f"have been made public: {'; '.join(places)}.\n\nGDPR Art. 17(2): where the controller itself "
        "made these photos public, it must take reasonable steps, taking account of the available "
        "technology and the cost, including technical measures, to inform the controllers that "
        "process them that the data subject has asked them to erase any link to, copy or "
        "replication of them. Lethe does not know who copied or linked a published photo: list "
        "them, tell them, and mark this notice sent (with how), or not required with the reason "
        "(the controller did not publish these photos).\n"
    )
    return f"Art. 17(2) {reference}: published photos were erased", body
