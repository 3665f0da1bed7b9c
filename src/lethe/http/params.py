"""Request parameters the routes share.

Row ids (requests, faces, tokens, objections, audit sequence numbers) are signed 64-bit integers in
the catalog (SQLite ``INTEGER``, PostgreSQL ``BIGINT``): a larger number is refused here with a 422,
before the database driver fails on it (SQLite raises ``OverflowError``, which would be a 500).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

#: The largest id the catalog can hold.
ROW_ID_MAX = 2**63 - 1

#: A row id in the URL path.
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
#: A 0-based position in the URL path (a requester's photo number).
Position = Annotated[int, Path(ge=0, le=ROW_ID_MAX)]
#: ``before``: page back through the audit log from this sequence number.
BeforeSeq = Annotated[
    int | None, Query(ge=1, le=ROW_ID_MAX, description="Only entries before this sequence number.")
]
