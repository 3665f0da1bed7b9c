"""The catalog: where every face came from, on what basis it is held, and its template."""

from lethe.catalog import assessment_tables as _assessment_tables  # noqa: F401 - registers tables
from lethe.catalog import consent_tables as _consent_tables  # noqa: F401 - registers tables on the metadata
from lethe.catalog import disclosure_tables as _disclosure_tables  # noqa: F401 - registers tables
from lethe.catalog import incident_tables as _incident_tables  # noqa: F401 - registers tables
from lethe.catalog import privacy_tables as _privacy_tables  # noqa: F401 - registers tables on the metadata
from lethe.catalog import user_tables as _user_tables  # noqa: F401 - registers tables on the metadata
from lethe.catalog import verification_tables as _verification_tables  # noqa: F401 - registers tables
from lethe.catalog.repository import Catalog, FaceInfo, ImageMeta, Source

__all__ = ["Catalog", "FaceInfo", "ImageMeta", "Source"]
