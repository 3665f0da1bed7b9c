"""Tests for SourceSpec.validated: the lawful-basis declaration every source must make."""

from __future__ import annotations

import pytest

from lethe.errors import LawfulBasisError, PrivacyError
from lethe.privacy import ART6_BASES, ART9_CONDITIONS, SourceSpec

GOOD: dict[str, object] = {
    "name": "events",
    "lawful_basis": "consent",
    "art9_condition": "explicit_consent",
    "purpose": "find my photos at the company event",
    "jurisdiction": "FR",
    "retention_days": 365,
}


def spec(**changes: object) -> SourceSpec:
    return SourceSpec.validated(**{**GOOD, **changes})  # type: ignore[arg-type]


def test_good_declaration_is_kept_as_given() -> None:
    assert spec() == SourceSpec(
        name="events",
        lawful_basis="consent",
        art9_condition="explicit_consent",
        purpose="find my photos at the company event",
        jurisdiction="FR",
        retention_days=365,
        mode="enrolled_only",
    )


def test_lawful_basis_error_is_a_privacy_error() -> None:
    with pytest.raises(PrivacyError):
        spec(lawful_basis="nope")


# --- Art. 6 basis ----------------------------------------------------------------------------


def test_there_are_six_art6_bases() -> None:
    assert len(ART6_BASES) == len(set(ART6_BASES)) == 6


@pytest.mark.parametrize("basis", ART6_BASES)
def test_each_art6_basis_is_accepted(basis: str) -> None:
    assert spec(lawful_basis=basis).lawful_basis == basis


def test_art6_basis_is_normalised() -> None:
    assert spec(lawful_basis="  Legitimate_Interests ").lawful_basis == "legitimate_interests"


@pytest.mark.parametrize("basis", ["", "because", "consent!", "legitimate interests", "explicit_consent"])
def test_unknown_art6_basis_is_refused_listing_the_valid_ones(basis: str) -> None:
    with pytest.raises(LawfulBasisError) as info:
        spec(lawful_basis=basis)
    message = str(info.value)
    assert repr(basis) in message
    assert all(valid in message for valid in ART6_BASES)


# --- Art. 9 condition ------------------------------------------------------------------------


def test_there_are_ten_art9_conditions() -> None:
    assert len(ART9_CONDITIONS) == len(set(ART9_CONDITIONS)) == 10


@pytest.mark.parametrize("condition", ART9_CONDITIONS)
def test_each_art9_condition_is_accepted(condition: str) -> None:
    assert spec(art9_condition=condition).art9_condition == condition


def test_art9_condition_is_normalised() -> None:
    assert spec(art9_condition=" EXPLICIT_CONSENT").art9_condition == "explicit_consent"


@pytest.mark.parametrize("condition", ["", "consent", "legitimate_interests", "public_task", "research"])
def test_unknown_art9_condition_is_refused_listing_the_valid_ones(condition: str) -> None:
    with pytest.raises(LawfulBasisError) as info:
        spec(art9_condition=condition)
    message = str(info.value)
    assert "Art. 9" in message
    assert all(valid in message for valid in ART9_CONDITIONS)


# --- jurisdiction ----------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "kept"), [("fr", "FR"), ("Fr", "FR"), (" de ", "DE"), ("US", "US")])
def test_jurisdiction_is_case_normalised(given: str, kept: str) -> None:
    assert spec(jurisdiction=given).jurisdiction == kept


@pytest.mark.parametrize("code", ["XX", "FRA", "", "  ", "F", "EU", "UK", "F R"])
def test_unknown_jurisdiction_is_refused(code: str) -> None:
    with pytest.raises(LawfulBasisError, match="ISO 3166-1 alpha-2"):
        spec(jurisdiction=code)


# --- retention -------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 30, 36_500])
def test_retention_within_bounds_is_accepted(days: int) -> None:
    kept = spec(retention_days=days).retention_days
    assert kept == days
    assert type(kept) is int


@pytest.mark.parametrize("days", [0, -1, 36_501, 10**9, True, False, 1.5, 365.0, "365", None])
def test_retention_out_of_bounds_or_not_a_whole_number_is_refused(days: object) -> None:
    with pytest.raises(LawfulBasisError, match="retention"):
        spec(retention_days=days)


# --- purpose ---------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["", "  ", "ab", "  ab  "])
def test_purpose_too_short_is_refused(purpose: str) -> None:
    with pytest.raises(LawfulBasisError, match="purpose"):
        spec(purpose=purpose)


def test_purpose_is_stripped_and_three_characters_suffice() -> None:
    assert spec(purpose="  abc \n").purpose == "abc"


# --- name ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("events", "events"),
        ("  events", "events"),
        ("events  ", "events"),
        ("Team 2024_q1.v-2", "Team 2024_q1.v-2"),
        ("a" * 200, "a" * 200),
        ("9", "9"),
    ],
)
def test_good_names_are_accepted_after_stripping(given: str, kept: str) -> None:
    assert spec(name=given).name == kept


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a/b", "../etc", "a\\b", "a" * 201, "-events", "_events", ".hidden", "café", "a\nb", "a;b"],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(LawfulBasisError, match="source name"):
        spec(name=name)


def test_the_consent_basis_defaults_to_enrolled_only_and_all_faces_stays_accepted() -> None:
    assert spec().mode == "enrolled_only"
    assert spec(mode="all_faces").mode == "all_faces"
    assert spec(lawful_basis="contract", art9_condition="explicit_consent").mode == "all_faces"
    with pytest.raises(LawfulBasisError, match="mode"):
        spec(mode="everyone")


@pytest.mark.parametrize("collection", ["web_scrape", "social_media", "cctv"])
def test_scraped_or_cctv_collections_are_refused(collection: str) -> None:
    with pytest.raises(LawfulBasisError, match=r"Art\. 5\(1\)\(e\)"):
        spec(collection=collection)


def test_declaration_warnings_name_what_a_dpo_must_look_at_again() -> None:
    assert spec().warnings() == []
    assert "9(2)(e)" in " ".join(spec(art9_condition="made_public_by_subject").warnings())
    law = spec(lawful_basis="public_task", art9_condition="substantial_public_interest")
    assert any("--legal-reference" in w for w in law.warnings())
    assert (
        spec(
            lawful_basis="public_task",
            art9_condition="substantial_public_interest",
            legal_reference="Loi 78-17 art. 6",
        ).warnings()
        == []
    )
    assert any("--lia-reference" in w for w in spec(lawful_basis="legitimate_interests").warnings())
    assert any("enrolled_only" in w for w in spec(mode="all_faces").warnings())
