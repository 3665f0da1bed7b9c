"""The messages block of the data-protection officer's request page (issue 19; GDPR Art. 12(3)-(4)):
every message written to the requester — kind, language, channel, state, when it was generated and
sent (UTC), attempts — with its text to read (and, for a draft, to copy and send by hand), and the
form that writes the next one by hand through ``POST /api/requests/{id}/messages``: an extension of
the deadline while the first month after receipt lasts and the request was not extended yet, or a
refusal while the request is open. The acknowledgement, the identity check and the answer are
written by the workflow itself; nothing here sends anything the API would not.

The words for languages also serve the public portal's language picker (:data:`LANGUAGE_NAMES`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from lethe.catalog.repository import now_utc
from lethe.privacy.requests import OPEN_STATES, add_months

if TYPE_CHECKING:
    from lethe.engine import Lethe

#: Each language a requester can be written to, named in itself (the portal's picker).
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}
#: The same, named in English for the officer.
LANGUAGE_WORDS = {"en": "English", "fr": "French"}
KIND_WORDS = {
    "acknowledgement": "acknowledgement of receipt",
    "identity_check": "what proof of identity is needed",
    "extension": "extension of the deadline",
    "answer": "the answer",
    "refusal": "refusal, with the complaint route",
}
STATE_WORDS = {
    "draft": "draft: send it by hand",
    "pending": "waiting to be sent",
    "sending": "being sent",
    "failed": "not sent: tried again by the next maintenance pass",
    "sent": "sent",
}
CHANNEL_WORDS = {"none": "by hand", "smtp": "e-mail (SMTP)"}


def context(engine: Lethe, request_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """What the block shows: ``messages`` (oldest first, each with its words), ``message_kinds``
    (what may be written by hand now) and ``first_month_ends``."""
    requests = engine.requests
    view = requests.get(request_id)
    first_month = add_months(view.received_at, 1)
    kinds = []
    if view.state in OPEN_STATES:
        if view.extension_reason is None and (now or now_utc()) <= first_month:
            kinds.append("extension")
        kinds.append("refusal")
    messages = [
        m.as_dict()
        | {
            "kind_words": KIND_WORDS.get(m.kind, m.kind),
            "language_words": LANGUAGE_WORDS.get(m.language, m.language),
            "channel_words": CHANNEL_WORDS.get(m.channel, m.channel),
            "state_words": STATE_WORDS.get(m.state, m.state),
        }
        for m in requests.messages(request_id)
    ]
    return {
        "messages": messages,
        "message_kinds": kinds,
        "message_kind_words": KIND_WORDS,
        "first_month_ends": first_month,
    }
