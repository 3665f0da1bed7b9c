"""Sources and their lawful basis: nothing is ingested without a valid declaration.

Every source declares the GDPR Art. 6(1) basis, the Art. 9(2) condition that allows processing of
biometric data for identification, the purpose, the jurisdiction (ISO 3166-1 alpha-2) and how long
its faces may be kept.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

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
        return cls(name, basis, condition, purpose, country, days)
