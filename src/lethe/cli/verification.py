"""Two-person verification on the command line: ``lethe verify ...`` (a verifier's verdict, a
candidate's view, marking it identified, the policy) and ``lethe user competence NAME`` (admin)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from lethe.cli._support import JsonOpt, actor, emit, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.cli.users import user_app

NoteOpt = Annotated[str | None, typer.Option(help="Why (kept in the audit log, off the hash chain).")]
USAGE = (
    "lethe verify SEARCH_SEQ FACE_ID --confirm|--reject | verify show SEARCH_SEQ FACE_ID | "
    "verify identified SEARCH_SEQ FACE_ID | verify policy [--required 1|2 --legal-reference TEXT]"
)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    user_app.command("competence")(competence)


def verify(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="[show|identified|policy] [SEARCH_SEQ FACE_ID]",
            help="A search's audit seq and a face id it returned; `show` reads the candidate, "
            "`identified` marks a verified one identified, `policy` shows or sets the number of verifiers.",
        ),
    ],
    confirm: Annotated[bool, typer.Option("--confirm", help="Your verdict: it is the person.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Your verdict: it is not the person.")] = False,
    note: NoteOpt = None,
    required: Annotated[
        int | None, typer.Option(help="policy: distinct verifiers an action needs (2, or 1 where exempt).")
    ] = None,
    legal_reference: Annotated[
        str | None, typer.Option(help="policy: the legal provision exempting this deployment (for 1).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a candidate identification (the verifier competence), read it, or act on it."""
    command, numbers = (words[0], words[1:]) if words and not words[0].isdigit() else ("verdict", words)
    if command == "policy":
        _policy(required, legal_reference, as_json)
        return
    if command not in ("verdict", "show", "identified") or len(numbers) != 2:
        fail(f"usage: {USAGE}", 2)
    try:
        seq, face_id = (int(n) for n in numbers)
    except ValueError:
        fail(f"SEARCH_SEQ and FACE_ID are numbers; usage: {USAGE}", 2)
    if command == "verdict" and confirm == reject:
        fail("give your verdict: --confirm or --reject (one of them)", 2)
    with _engine() as engine:
        verification = engine.verification
        who = actor()
        if command == "show":
            view: dict[str, Any] = verification.candidate(seq, face_id, actor=who)
        elif command == "identified":
            view = verification.mark_identified(seq, face_id, actor=who, note=note)
        else:
            chosen = "confirm" if confirm else "reject"
            view = verification.verdict(seq, face_id, verdict=chosen, actor=who, note=note)
    emit(as_json, view, lambda: out.print(_line(view)))


def _line(view: dict[str, Any]) -> str:
    if view.get("identified"):
        return f"candidate {view['face_id']} of search {view['search_seq']} marked identified"
    mine = f"; your verdict: {view['your_verdict']}" if view.get("your_verdict") else ""
    where = f"candidate {view['face_id']} of search {view['search_seq']}"
    return f"{where}: {view['state']}, {view['progress']}{mine}"


def _policy(required: int | None, reference: str | None, as_json: bool) -> None:
    with _engine() as engine:
        if required is None:
            policy = engine.verification.policy()
        else:
            policy = engine.verification.set_required(
                required, legal_reference=reference, actor=actor(role="admin")
            )
    emit(
        as_json,
        policy.as_dict(),
        lambda: out.print(
            f"{policy.required} verifier(s) per action"
            + (f" (exemption: {policy.legal_reference})" if policy.legal_reference else "")
        ),
    )


def competence(
    name: Annotated[str, typer.Argument(help="The user.")],
    verifier: Annotated[bool, typer.Option("--verifier", help="The verifier competence.")] = False,
    trained: Annotated[
        str | None, typer.Option(help="The date of their training, YYYY-MM-DD (AI literacy, Art. 4).")
    ] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the competence away.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Record a user's verifier competence with its training date, or revoke it (admin; audited);
    with neither, list the user's competences. It lapses LETHE_VERIFIER_TRAINING_DAYS after training."""
    if (trained is not None or revoke) and not verifier:
        fail("name the competence: --verifier", 2)
    if trained is not None and revoke:
        fail("--trained records the competence, --revoke takes it away: one of them", 2)
    trained_on = None
    if trained is not None:
        try:
            trained_on = date.fromisoformat(trained)
        except ValueError:
            fail(f"--trained is a date YYYY-MM-DD, not {trained!r}", 2)
    with _engine() as engine:
        competences = engine.verification.competences
        today = engine.verification.clock().date()
        if trained_on is not None:
            held = competences.grant(name, "verifier", trained_on=trained_on, actor=actor(role="admin"))
            payload: dict[str, Any] = held.as_dict(today)
        elif revoke:
            gone = competences.revoke(name, "verifier", actor=actor(role="admin"))
            payload = {"user": name, "competence": "verifier", "revoked": gone}
        else:
            payload = {"user": name, "competences": [c.as_dict(today) for c in competences.of(name)]}
    emit(as_json, payload, lambda: out.print(payload))
