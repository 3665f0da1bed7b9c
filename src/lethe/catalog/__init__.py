"""The catalog: where every face came from, on what basis it is held, and its template."""

from lethe.catalog.repository import Catalog, FaceInfo, ImageMeta, Source

__all__ = ["Catalog", "FaceInfo", "ImageMeta", "Source"]
