"""The privacy layer: lawful basis of sources (and, later, requests, erasure, suppression, audit)."""

from lethe.privacy.sources import ART6_BASES, ART9_CONDITIONS, SourceSpec

__all__ = ["ART6_BASES", "ART9_CONDITIONS", "SourceSpec"]
