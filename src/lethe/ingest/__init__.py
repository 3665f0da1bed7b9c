"""Ingest: photos -> decode/detect/embed on workers -> catalog + crops + vector index.

::

    inputs.py      what to ingest: the image files of a folder, or the rows of a CSV / JSONL manifest
    driver.py      reads and hashes files, skips known ones, keeps a bounded number of chunks in
                   flight, hands finished photos to the engine's commit in batches (one writing
                   side for every runner: same idempotence, duplicate skip, per-file errors, resume)
    work.py        what a worker does with a chunk of photo bytes (the pure pipeline), and the
                   Runner contract between the driver and its workers
    local.py       workers on this machine: the driver's own process or spawned processes (default)
    ray_runner.py  workers on a Ray cluster: one actor per CPU holding the models (``lethe[ray]``)
    kit.py         what a worker on another machine is sent to build exactly the driver's pipeline
"""

from lethe.ingest.driver import (
    CHUNK_IMAGES,
    COMMIT_EVERY_IMAGES,
    Commit,
    Committed,
    IngestReport,
    Job,
    Progress,
    run_ingest,
)
from lethe.ingest.work import ProcessedImage, process_many

__all__ = [
    "CHUNK_IMAGES",
    "COMMIT_EVERY_IMAGES",
    "Commit",
    "Committed",
    "IngestReport",
    "Job",
    "ProcessedImage",
    "Progress",
    "process_many",
    "run_ingest",
]
