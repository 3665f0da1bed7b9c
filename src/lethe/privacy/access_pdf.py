"""The access copy as a PDF (GDPR Art. 15(3); issue 19 item 1): ``access_copy.pdf``, written beside
``index.html`` from the same document, so that a requester who cannot or does not want to open a web
page gets the same copy in one file to keep or print.

**What it holds.** Everything the page says, in the same words: every photo held (the access copy of
:mod:`lethe.privacy.access_photos`: the requester's face outlined, every other face blurred; where
the photo can no longer be read, the small picture of the requester's face and why), and for each
the source, the purpose, the lawful basis and the Art. 9(2) condition in words, when it was taken,
collected and until when it is kept, and the searches that returned it (by role); then the
categories of data, who was shown the face and any disclosure, what automated processing took place
and what a score meant, where the data comes from, the rights and the supervisory authority to
complain to. The template's numbers stay in ``export.json`` (the PDF says so).

**Fonts.** Names of authorities and places carry letters outside Latin-1 (``Urząd``, ``Úřad``). The
first of :data:`UNICODE_FONTS` that exists is embedded: Debian's DejaVu Sans
(``fonts-dejavu-core``), then the copy matplotlib ships. With neither, the PDF is written in the
PDF core font Helvetica, and each letter outside Latin-1 is replaced by its base letter (``ą`` by
``a``); the export records which font was used.

**Never in the way.** fpdf2 is imported only here, when a PDF is made. If the PDF cannot be made (no
fpdf2, a photo that cannot be read, a disk error), the export keeps its HTML page and
``export.json``, and records why (``pdf.error``: the kind of error, never a path of the server); the
failure is logged with the request's id only.
"""

from __future__ import annotations

import importlib.util
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lethe.privacy.pages import counted
from lethe.storage import atomic_write

if TYPE_CHECKING:
    from fpdf import FPDF

log = logging.getLogger(__name__)

PDF_NAME = "access_copy.pdf"

#: Debian's DejaVu fonts (``fonts-dejavu-core``): the first place a Unicode font is looked for.
DEBIAN_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True, slots=True)
class Font:
    """A TrueType font to embed (``bold`` may be the regular file again)."""

    name: str
    regular: Path
    bold: Path


def unicode_fonts() -> list[Font]:
    """The Unicode fonts that exist on this host, best first (see the module)."""
    found: list[Font] = []
    places = [DEBIAN_DEJAVU]
    spec = importlib.util.find_spec("matplotlib")  # located, never imported
    if spec is not None and spec.submodule_search_locations:
        places += [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]
    for place in places:
        regular = place / "DejaVuSans.ttf"
        if regular.is_file():
            bold = place / "DejaVuSans-Bold.ttf"
            found.append(Font("DejaVuSans", regular, bold if bold.is_file() else regular))
    return found


#: Typographic marks Helvetica's Latin-1 lacks, and what stands for them.
_PLAIN = {"\u2014": "-", "\u2013": "-", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
          "\u2026": "...", "\u00a0": " ", "\u2022": "-"}  # fmt: skip


def latin1(text: str) -> str:
    """``text`` in Latin-1 only: typographic marks made plain, other letters by their base letter
    (``ą`` → ``a``), what has none dropped."""
    out = []
    for char in text:
        char = _PLAIN.get(char, char)
        if len(char) == 1 and ord(char) < 256:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)
        out.append("".join(c for c in base if ord(c) < 256 and not unicodedata.combining(c)))
    return "".join(out)


def write_pdf(
    folder: Path, document: Mapping[str, Any], *, fonts: Sequence[Font] | None = None
) -> dict[str, Any]:
    """Write ``folder/access_copy.pdf`` from the access ``document`` (what ``export.json`` holds);
    what the export records of it: ``file`` (``None`` when it could not be made), ``font`` and
    ``error``. ``fonts``: the Unicode fonts to try (default :func:`unicode_fonts`; empty: the core
    font). Never raises."""
    request_id = document.get("request", {}).get("id")
    try:
        pdf, font = _build(folder, document, unicode_fonts() if fonts is None else fonts)
        data = bytes(pdf.output())
        atomic_write(folder / PDF_NAME, data, durable=False)
    except Exception as exc:  # any failure leaves the HTML and JSON copy whole (the module)
        log.warning("access copy PDF of request %s not made: %s", request_id, type(exc).__name__)
        return {
            "file": None,
            "font": None,
            "error": f"the PDF could not be made ({type(exc).__name__}); this page and export.json "
            "hold the same copy",
        }
    return {"file": PDF_NAME, "font": font, "error": None}


class _Writer:
    """Paragraphs, headings and definition lines on an fpdf2 document, in one font."""

    def __init__(self, pdf: FPDF, unicode: bool) -> None:
        self.pdf = pdf
        self.unicode = unicode

    def text(self, value: object) -> str:
        text = "" if value is None else str(value)
        return text if self.unicode else latin1(text)

    def heading(self, text: str, size: float = 14) -> None:
        pdf = self.pdf
        if pdf.get_y() > pdf.page_break_trigger - 30:
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font(style="B", size=size)
        pdf.multi_cell(0, size * 0.5, self.text(text), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(style="", size=10)
        pdf.ln(1)

    def paragraph(self, text: object, indent: float = 0) -> None:
        pdf = self.pdf
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(0, 5, self.text(text), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def bullet(self, text: object) -> None:
        self.paragraph(f"- {self.text(text)}", indent=3)

    def field(self, label: str, value: object) -> None:
        pdf = self.pdf
        pdf.set_font(style="B", size=10)
        pdf.multi_cell(0, 5, self.text(label), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(style="", size=10)
        self.paragraph(value if value not in (None, "") else "not recorded", indent=4)

    def picture(self, path: Path, alt: str, *, max_w: float, max_h: float) -> None:
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
        scale = min(max_w / width, max_h / height)
        w, h = width * scale, height * scale
        pdf = self.pdf
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
        pdf.image(str(path), x=pdf.l_margin, w=w, h=h, alt_text=self.text(alt))
        pdf.ln(2)


def _build(folder: Path, document: Mapping[str, Any], fonts: Sequence[Font]) -> tuple[FPDF, str]:
    from fpdf import FPDF  # lazy: only an access export makes a PDF

    request = document["request"]

    class Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(style="", size=8)
            self.cell(
                0, 5, out.text(f"Request {request['ref']} - page {self.page_no()} of {{nb}}"), align="C"
            )
            self.set_font(style="", size=10)

    pdf = Pdf(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    font_name = "Helvetica"
    for font in fonts:
        pdf.add_font(font.name, "", str(font.regular))
        pdf.add_font(font.name, "B", str(font.bold))
        font_name = font.name
        break
    unicode = font_name != "Helvetica"
    pdf.set_title(f"Your data - request {request['id']}")
    pdf.set_lang("en")
    pdf.set_creator("Lethe")
    pdf.alias_nb_pages()
    pdf.set_font(font_name, size=10)
    out = _Writer(pdf, unicode)

    pdf.add_page()
    _front(out, document)
    _photos(out, folder, document)
    _rest(out, document)
    return pdf, font_name if unicode else "Helvetica (core font: letters outside Latin-1 simplified)"


def _front(out: _Writer, document: Mapping[str, Any]) -> None:
    request = document["request"]
    out.heading("Your data held by this service", size=18)
    out.paragraph(
        "This is your copy of the personal data we hold about you (GDPR Article 15), for your request "
        f"received on {request['received']} (request {request['id']}, reference {request['ref']}). It "
        f"was made on {document['generated']}. {document['dates_note']}"
    )
    out.paragraph(
        f"We found your face in {counted(len(document['photos']), 'photo')}. In each photo your face is "
        "outlined in orange; every other person's face is blurred, because they have the same right to "
        "privacy as you. The same facts, and your biometric template (its numbers), are in the file "
        "export.json given with this copy, and on the page index.html."
    )


def _photos(out: _Writer, folder: Path, document: Mapping[str, Any]) -> None:
    out.heading("Your photos")
    if not document["photos"]:
        out.paragraph("No photo of you was found.")
    width = out.pdf.w - out.pdf.l_margin - out.pdf.r_margin
    for photo in document["photos"]:
        out.heading(f"Photo {photo['number']}", size=12)
        number = photo["number"]
        faces = [item for item in document["faces"] if item["photo_number"] == number]
        if photo["file"]:
            alt = f"photo {number}, your face outlined, other faces blurred"
            out.picture(folder / photo["file"], alt, max_w=width, max_h=130)
            if photo["others_blurred"]:
                out.paragraph(f"{counted(photo['others_blurred'], 'other face')} blurred.")
        else:
            out.paragraph(photo["note"])
            for item in faces:
                out.picture(folder / item["crop"], "your face as we hold it", max_w=35, max_h=35)
        for index, item in enumerate(faces):
            if index == 0:
                _facts(out, item)
            out.paragraph("Searches that returned this face:")
            for search in item["searches"] or [None]:
                if search is None:
                    out.bullet("never returned by a search")
                else:
                    out.bullet(f"{search['date']} - {search['who']}: \u201c{search['purpose']}\u201d")


def _facts(out: _Writer, item: Mapping[str, Any]) -> None:
    office = item["complaint_to"]
    out.field("Where we collected it", item["image"])
    out.field("Published at", item["source_url"])
    out.field("Source", f"{item['source']} ({office['country']})")
    out.field("Why we hold it (purpose)", item["purpose"])
    out.field("Lawful basis", item["lawful_basis_words"])
    out.field("Why we may process a face (biometric data)", item["art9_words"])
    out.field("Taken on", item["captured"])
    out.field("Collected on", item["collected"])
    out.field("Kept until", f"{item['kept_until']}, then deleted")
    out.field("Where to complain about this source", f"{office['authority']} ({office['country']})")


def _rest(out: _Writer, document: Mapping[str, Any]) -> None:
    out.heading("What we hold about you")
    for category in document["categories"]:
        out.bullet(category["words"])
    _recipients(out, document["recipients"])
    out.heading("Automated processing, and what a score means")
    out.paragraph(document["automated_processing"])
    out.heading("Where the data comes from")
    out.paragraph(document["source_of_data"])
    portable = document.get("portability") or {}
    if portable.get("words"):
        out.heading("Taking your data elsewhere (portability)")
        out.paragraph(portable.get("words", ""))
    out.heading("Your rights")
    for right in document["rights"]:
        out.bullet(right["words"])


def _recipients(out: _Writer, recipients: Mapping[str, Any]) -> None:
    out.heading("Who was shown your face")
    shown = recipients.get("shown") or []
    if not shown:
        out.paragraph("Nobody: no search returned your face.")
    for row in shown:
        times = "once" if row["times"] == 1 else f"{row['times']} times"
        out.bullet(f"{row['who']}: {row['what']} ({times})")
    out.paragraph("We name roles, not the people who hold them.")
    disclosures = recipients.get("disclosures") or []
    named = recipients.get("named") or []
    if disclosures or named:
        out.paragraph("Your data was disclosed outside the service:")
        for entry in named:
            out.bullet(_named(entry))
        for disclosure in disclosures:
            out.bullet(f"{disclosure['date']}: {disclosure['what']}")
    else:
        out.paragraph("Your data was not exported or disclosed to anyone outside the service.")
    # Any further list the recipients carry, in its own words.
    for key, entries in recipients.items():
        if key in ("shown", "disclosures", "named") or not isinstance(entries, list) or not entries:
            continue
        out.paragraph(f"{key.replace('_', ' ').capitalize()}:")
        for entry in entries:
            out.bullet(_words(entry))


def _named(entry: Mapping[str, Any]) -> str:
    """A disclosure to a named recipient (GDPR Art. 15(1)(c), CJEU C-154/21), as the page words it."""
    if not isinstance(entry.get("recipient"), str):
        return _words(entry)
    where = ", ".join(str(entry[k]) for k in ("kind_words", "country_name") if entry.get(k))
    if entry.get("outside_eea"):
        where += ", outside the European Economic Area"
    text = f"{entry.get('date') or ''}: to {entry['recipient']}" + (f" ({where})" if where else "")
    if entry.get("what"):
        text += f": {entry['what']}."
    if entry.get("reason"):
        text += f" The reason given: {entry['reason']}"
    return text


def _words(entry: object) -> str:
    if isinstance(entry, Mapping):
        for key in ("words", "what", "who", "name"):
            if isinstance(entry.get(key), str):
                return str(entry[key])
        return "; ".join(f"{k}: {v}" for k, v in entry.items() if not isinstance(v, dict | list))
    return str(entry)
