"""Sources and their lawful basis: nothing is ingested without a valid declaration.

Every source declares the GDPR Art. 6(1) basis, the Art. 9(2) condition that allows processing of
biometric data for identification, the purpose, the jurisdiction (ISO 3166-1 alpha-2) and how long
its faces may be kept.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from lethe.catalog.repository import SourceDeclaration
from lethe.errors import LawfulBasisError

#: GDPR Art. 6(1)(a)-(f).
ART6_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)

#: GDPR Art. 9(2)(a)-(j): conditions for processing special categories (biometric data).
ART9_CONDITIONS = (
    "explicit_consent",  # (a)
    "employment_social_security",  # (b)
    "vital_interests",  # (c)
    "not_for_profit_body",  # (d)
    "made_public_by_subject",  # (e)
    "legal_claims",  # (f)
    "substantial_public_interest",  # (g)
    "health_or_social_care",  # (h)
    "public_health",  # (i)
    "archiving_research_statistics",  # (j)
)

_ISO3166_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ
    BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR
    CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
    PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI
    SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR
    TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO3166_ALPHA2 = frozenset(_ISO3166_CODES.split())

#: How a source's faces are indexed: every detected face, or only those of people who enrolled
#: with their consent (the others are compared in memory and discarded, never stored).
MODES = ("all_faces", "enrolled_only")

#: Attested collection methods. Lethe indexes no photos scraped from the web or social networks and
#: no bulk CCTV footage (AI Act Art. 5(1)(e)): those are refused, not merely warned about.
COLLECTIONS = (
    "operator_controlled",  # taken, commissioned or held under licence by the operator
    "own_photography",
    "commissioned",
    "licensed_archive",
    "submitted_by_subjects",
)
REFUSED_COLLECTIONS = {
    "web_scrape": "photos scraped from the web",
    "social_media": "photos taken from social networks",
    "cctv": "bulk video-surveillance footage",
}

#: Art. 9(2) conditions that rest on Union or Member State law: the declaration names that law.
LAW_BASED_CONDITIONS = frozenset(
    {
        "employment_social_security",
        "substantial_public_interest",
        "health_or_social_care",
        "public_health",
        "archiving_research_statistics",
    }
)
#: Art. 6(1) bases that rest on a legal text too.
LAW_BASED_BASES = frozenset({"legal_obligation", "public_task"})

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,199}$")
MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A validated source declaration. Construct with :meth:`validated`."""

    name: str
    lawful_basis: str
    art9_condition: str
    purpose: str
    jurisdiction: str
    retention_days: int
    mode: str = "all_faces"
    legal_reference: str | None = None
    lia_reference: str | None = None
    collection: str = "operator_controlled"

    def warnings(self) -> list[str]:
        """What a data-protection officer should look at again in this declaration (the research
        behind issue 17, rows 6 and 12): each is a refusal with ``LETHE_STRICT_DECLARATIONS``."""
        found: list[str] = []
        if self.art9_condition == "made_public_by_subject":
            found.append(
                "Art. 9(2)(e) 'manifestly made public' rarely covers biometric identification: a photo "
                "being public does not make the person's face data public by their own act (EDPB 05/2022)"
            )
        if not self.legal_reference and (
            self.art9_condition in LAW_BASED_CONDITIONS or self.lawful_basis in LAW_BASED_BASES
        ):
            found.append(
                f"{self.lawful_basis} / {self.art9_condition} rests on a law: name it with --legal-reference"
            )
        if self.lawful_basis == "legitimate_interests" and not self.lia_reference:
            found.append(
                "legitimate interests (Art. 6(1)(f)) need a recorded balancing test: name it with "
                "--lia-reference"
            )
        if self.lawful_basis == "consent" and self.mode == "all_faces":
            found.append(
                "a consent basis with mode all_faces stores the faces of people who did not consent: "
                "enrolled_only stores only those who did"
            )
        return found

    @classmethod
    def of(cls, source: SourceDeclaration) -> SourceSpec:
        """The declaration of a registered source (its warnings are read again from it)."""
        return cls(
            source.name,
            source.lawful_basis,
            source.art9_condition,
            source.purpose,
            source.jurisdiction,
            source.retention_days,
            mode=source.mode,
            legal_reference=source.legal_reference,
            lia_reference=source.lia_reference,
            collection=source.collection,
        )

    @classmethod
    def validated(
        cls,
        *,
        name: str,
        lawful_basis: str,
        art9_condition: str,
        purpose: str,
        jurisdiction: str,
        retention_days: int,
        mode: str | None = None,
        legal_reference: str | None = None,
        lia_reference: str | None = None,
        collection: str = "operator_controlled",
    ) -> SourceSpec:
        name = name.strip()
        if not _NAME.match(name):
            raise LawfulBasisError(
                "source name must be 1-200 characters: letters, digits, space, '_', '.', '-' (not first)"
            )
        basis = lawful_basis.strip().lower()
        if basis not in ART6_BASES:
            raise LawfulBasisError(f"lawful basis {lawful_basis!r} is not one of: {', '.join(ART6_BASES)}")
        condition = art9_condition.strip().lower()
        if condition not in ART9_CONDITIONS:
            raise LawfulBasisError(
                f"Art. 9(2) condition {art9_condition!r} is not one of: {', '.join(ART9_CONDITIONS)}"
            )
        purpose = purpose.strip()
        if len(purpose) < 3:
            raise LawfulBasisError("the purpose must be stated (at least 3 characters)")
        country = jurisdiction.strip().upper()
        if country not in ISO3166_ALPHA2:
            raise LawfulBasisError(f"jurisdiction {jurisdiction!r} is not an ISO 3166-1 alpha-2 country code")
        # operator.index: whole numbers only (no silent truncation of 1.5, no "abc" ValueError).
        try:
            days = -1 if isinstance(retention_days, bool) else operator.index(retention_days)
        except TypeError:
            days = -1
        if not 1 <= days <= MAX_RETENTION_DAYS:
            raise LawfulBasisError(f"retention must be 1..{MAX_RETENTION_DAYS} days, got {retention_days!r}")
        chosen = (mode or ("enrolled_only" if basis == "consent" else "all_faces")).strip().lower()
        if chosen not in MODES:
            raise LawfulBasisError(f"mode {mode!r} is not one of: {', '.join(MODES)}")
        how = collection.strip().lower()
        if how in REFUSED_COLLECTIONS:
            raise LawfulBasisError(
                f"Lethe does not index {REFUSED_COLLECTIONS[how]} (AI Act Art. 5(1)(e) forbids building "
                "face databases by untargeted scraping; bulk CCTV is out of scope)"
            )
        if how not in COLLECTIONS:
            raise LawfulBasisError(f"collection {collection!r} is not one of: {', '.join(COLLECTIONS)}")
        return cls(
            name,
            basis,
            condition,
            purpose,
            country,
            days,
            mode=chosen,
            legal_reference=_optional_text(legal_reference, "legal reference"),
            lia_reference=_optional_text(lia_reference, "legitimate-interests assessment reference"),
            collection=how,
        )


def _optional_text(value: str | None, what: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 2000:
        raise LawfulBasisError(f"the {what} must be at most 2,000 characters")
    return text
