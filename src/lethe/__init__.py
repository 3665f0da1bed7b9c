"""Lethe: a self-hosted face search engine that obeys data-protection law by construction."""

from lethe.config import Settings
from lethe.engine import Lethe, Match, SearchResult
from lethe.errors import LetheError
from lethe.privacy import SourceSpec

__all__ = ["Lethe", "LetheError", "Match", "SearchResult", "Settings", "SourceSpec", "__version__"]
__version__ = "0.1.0"
