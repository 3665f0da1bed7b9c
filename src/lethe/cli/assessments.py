"""The DPIA, the FRIA and the Art. 30 record on the command line: ``lethe assessment
list|show|answer|sign`` (docs/privacy.md, "DPIA, FRIA and the Art. 30 record"). Reading needs no
acting identity; answering and signing need a dpo (or a local administrator identity)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lethe.cli._support import JsonOpt, actor, emit, fail, out
from lethe.cli._support import engine_from_settings as _engine
from lethe.privacy.assessments import Assessments, document_names
from lethe.storage import atomic_write

assessment_app = typer.Typer(
    no_args_is_help=True,
    help="The DPIA (GDPR Art. 35), the FRIA (AI Act Art. 27) and the Art. 30 record, generated from the "
    "running system: read, answer their questions, sign.",
)

Document = Annotated[str, typer.Argument(help=f"Which document: {document_names()}.")]


def register(app: typer.Typer) -> None:
    app.add_typer(assessment_app, name="assessment")


def _status_line(item: dict[str, Any]) -> str:
    signature = item["signature"]
    state = "STALE: " if signature["stale"] else ""
    blanks = f"; {len(item['blanks'])} question(s) unanswered" if item["blanks"] else ""
    return f"{item['document']:<6} {item['title']} ({item['law']}): {state}{signature['words']}{blanks}"


@assessment_app.command("list")
def assessment_list(as_json: JsonOpt = False) -> None:
    """The three documents: unanswered questions, signed or not, stale or not (and what changed)."""
    with _engine() as engine:
        listed = Assessments(engine.store).listing()

    def human() -> None:
        for item in listed:
            out.print(_status_line(item), markup=False, highlight=False, soft_wrap=True)

    emit(as_json, {"documents": listed}, human)


@assessment_app.command("show")
def assessment_show(
    document: Document,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the document as an HTML page here (mode 0600).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One document generated now from the running system, its questions (blank until answered) and
    its signature status."""
    with _engine() as engine:
        assessments = Assessments(engine.store)
        doc = assessments.document(document)
        page = assessments.html(document, doc) if html is not None else None
    if html is not None and page is not None:
        try:
            atomic_write(html, page.encode(), durable=False)
        except OSError as exc:
            fail(f"cannot write {html}: {exc.strerror or exc}", 2)

    def human() -> None:
        out.print(
            f"{doc['title']} ({doc['law']}): {doc['signature']['words']}", markup=False, highlight=False
        )
        for key, section in doc["sections"].items():
            out.print(f"\n[{key}] {section['heading']} ({section['law']})", markup=False, highlight=False)
            for paragraph in section["text"]:
                out.print(f"  {paragraph}", markup=False, highlight=False, soft_wrap=True)
        for q in doc["questions"]:
            out.print(f"\n? {q['id']} ({q['law']}): {q['question']}", markup=False, highlight=False)
            out.print(f"  {q['shown']}", markup=False, highlight=False, soft_wrap=True)

    emit(as_json, doc, human)


@assessment_app.command("answer")
def assessment_answer(
    document: Document,
    question: Annotated[str, typer.Argument(help="The question's id (`lethe assessment show` lists them).")],
    text: Annotated[str | None, typer.Option("--text", help="The answer.")] = None,
    from_file: Annotated[
        Path | None, typer.Option("--file", help="Read the answer from this UTF-8 text file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question of a document (a new version; the previous ones are kept). Audited with the
    answer's sha256, never its text."""
    if (text is None) == (from_file is None):
        fail("give the answer with --text or --file (one of them)", 2)
    if from_file is not None:
        try:
            text = from_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {from_file}: {exc}", 2)
    with _engine() as engine:
        answered = Assessments(engine.store).answer(document, question, text or "", actor=actor(role="dpo"))
    emit(
        as_json,
        answered,
        lambda: out.print(
            f"{document} {question}: answer version {answered['version']} recorded", highlight=False
        ),
    )


@assessment_app.command("sign")
def assessment_sign(document: Document, as_json: JsonOpt = False) -> None:
    """Sign a document as generated now (a dpo; every question answered): records who, when, the
    document's sha256 and the fingerprint of what it rests on."""
    with _engine() as engine:
        signed = Assessments(engine.store).sign(document, actor=actor(role="dpo"))
    emit(
        as_json,
        signed,
        lambda: out.print(
            f"{document} signed by {signed['signed_by']}: sha256 {signed['document_sha256']}", highlight=False
        ),
    )
