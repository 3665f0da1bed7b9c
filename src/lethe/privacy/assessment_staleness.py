"""What changed between the facts a document was signed on and the facts now, in words
(:mod:`lethe.privacy.assessments`): ``match threshold 0.525 -> 0.55``, ``source 'press' added``,
``source 'events': retention (days) 365 -> 730``, ``the answer to 'necessity' changed (version 1 -> 2)``.
"""

from __future__ import annotations

from typing import Any

from lethe.model_ids import model_name

#: Groups of named entries: an entry added or removed is a change of its own.
NAMED = {"sources": "source", "recipients": "recipient", "answers": "the answer to"}
#: (group, fact) -> its name in words.
LABELS = {
    ("controller", "name"): "controller",
    ("controller", "dpo_contact"): "DPO contact",
    ("model", "embedder"): "embedder",
    ("model", "model_sha256"): "model",
    ("model", "detector"): "detector",
    ("model", "embed_flip"): "mirrored-face averaging",
    ("model", "known_limits_version"): "version of the known limits (known_limits.json)",
    ("thresholds", "match"): "match threshold",
    ("thresholds", "erasure_automatic"): "automatic erasure threshold",
    ("thresholds", "erasure_review"): "review threshold",
    ("oversight", "verifiers_required"): "verifiers required",
    ("oversight", "exemption"): "legal exemption from two-person verification",
    ("oversight", "score_after_judgement"): "score shown only after the verdict",
    ("oversight", "erasure_second_signoff"): "second sign-off of automatic erasure",
    ("retention", "log_days"): "audit log retention (days)",
    ("retention", "suppression_days"): "erased persons' suppression (days)",
}
FIELDS = {
    "lawful_basis": "lawful basis",
    "art9_condition": "Art. 9(2) condition",
    "legal_reference": "legal reference",
    "retention_days": "retention (days)",
    "outside_eea": "outside the EEA",
}


def _value(fact: str, value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if fact == "model_sha256":
        return f"{model_name(str(value))} ({str(value)[:12]})"
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value) if isinstance(value, str) else str(value)


def changes(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Each difference between the facts ``then`` and ``now``, in words, in a stable order."""
    out: list[str] = []
    for group in sorted(set(then) | set(now)):
        old, new = then.get(group) or {}, now.get(group) or {}
        if group in NAMED:
            out.extend(_named(NAMED[group], old, new))
            continue
        for fact in sorted(set(old) | set(new)):
            if old.get(fact) != new.get(fact):
                label = LABELS.get((group, fact), f"{group} {fact.replace('_', ' ')}")
                out.append(f"{label} {_value(fact, old.get(fact))} -> {_value(fact, new.get(fact))}")
    return out


def _named(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(f"question {name!r} answered" if kind == "the answer to" else f"{kind} {name!r} added")
        elif name not in new:
            out.append(f"{kind} {name!r} removed")
        elif kind == "the answer to":
            if old[name] != new[name]:
                out.append(f"the answer to {name!r} changed (version {old[name]} -> {new[name]})")
        else:
            for fact in sorted(set(old[name]) | set(new[name])):
                a, b = old[name].get(fact), new[name].get(fact)
                if a != b:
                    words = FIELDS.get(fact, fact.replace("_", " "))
                    out.append(f"{kind} {name!r}: {words} {_value(fact, a)} -> {_value(fact, b)}")
    return out
