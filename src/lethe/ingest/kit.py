"""What a worker on another machine is sent to build exactly the driver's pipeline.

Photos travel as bytes (see ``ray_runner``); models travel like this:

* files that ship inside installed packages (dlib's landmark and ResNet weights in
  ``face_recognition_models``, the HOG detector inside ``dlib``) are found on the worker's node,
  which must run the same install: a :func:`fingerprint` of versions and file hashes is taken on
  both sides and a worker whose node differs refuses to start;
* files the driver keeps in its model cache (the YuNet and SFace files, the prepared SFace graph or
  the ONNX conversion of dlib's ResNet with its sha256 sidecar) travel inside the kit, are written to
  a private temporary model cache on the worker, verified there by the same code that verifies them
  locally, loaded, and deleted again (the models are in memory by then).

Only the settings the pipeline reads travel (:data:`WORKER_SETTINGS`); catalog URLs, tokens and key
paths stay with the driver. Every setting is in exactly one of the two sets (a test checks it).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lethe.config import Settings
from lethe.errors import ModelError
from lethe.models import dlib_model_path, ensure_model, sha256_file
from lethe.pipeline import FacePipeline, build_pipeline

#: Settings the worker's pipeline and decoder read: they travel with the kit.
WORKER_SETTINGS = frozenset(
    {
        "detector",
        "detect_max_side_px",
        "min_face_px",
        "detect_small_face_px",
        "embedder",
        "embed_threads",
        "embed_flip",
        "max_image_pixels",
    }
)
#: Settings only the driver reads (storage, secrets, the service, the ingest engine itself).
DRIVER_SETTINGS = frozenset(
    {
        "data_dir",
        "catalog_url",
        "index",
        "index_kind",
        "index_exact_max_faces",
        "milvus_uri",
        "milvus_collection",
        "milvus_token",
        "milvus_compaction_timeout_s",
        "max_image_bytes",  # the driver reads the files
        "yunet_model_path",  # the file itself travels
        "sface_model_path",  # likewise
        "model_cache_dir",  # the worker gets a temporary one holding what travels
        "offline",  # a worker never downloads: what it needs travels
        "match_threshold",
        "erasure_auto_threshold",
        "erasure_review_threshold",
        "exports_dir",
        "workers",
        "ingest_engine",
        "ray_address",
        "ray_actors",
        "master_key_file",
        "maintenance_interval_s",
        "dpo_contact",
        "login_backoff_max_s",
        "login_failure_window_s",
        "login_failures",
        "strict_declarations",
        "token_days",
        "max_upload_bytes",
        "search_rate_per_minute",
        "portal_rate_per_minute",
        "login_rate_per_minute",
        "session_secret_file",
        "session_max_age_s",
        "cookie_secure",
        "ingest_root",
        "erasure_suppression_days",
        # the service's and the portal's (issue 16, other engineers' settings classified here)
        "api_docs",
        "body_timeout_s",
        "header_timeout_s",
        "contact_confirmation_ttl_s",
        "contact_outbox_dir",
        "portal_global_rate_per_minute",
        "portal_max_photo_bytes",
        "portal_max_image_pixels",
        "portal_concurrent_submissions",
        "portal_pending_max_bytes",
        "trusted_proxies",
        "actor",  # the CLI's acting identity
        # oversight, logs and misuse alerts (issue 18)
        "use_timeout_minutes",
        "log_retention_days",
        "verifier_training_days",
        "verify_score_after_judgement",
        "erasure_second_signoff",
        "alert_daily_searches",
        "alert_open_use_searches",
        "alert_repeated_probe",
        "alert_volume_factor",
        "alert_window_hours",
        "drift_tolerance",
        "working_hours",
        "working_timezone",
        "working_weekends",
        # writing to data subjects (issue 19)
        "controller_name",
        "default_language",
        "mail_channel",
        "smtp_from",
        "smtp_host",
        "smtp_password",
        "smtp_port",
        "smtp_starttls",
        "smtp_timeout_s",
        "smtp_user",
    }
)


def fingerprint(detector: str, embedder: str) -> dict[str, str]:
    """Versions and packaged model files that decide the pipeline's output on this node."""
    packages = ["lethe", "dlib", "dlib-bin", "face_recognition_models", "numpy", "pillow"]
    packages += ["onnxruntime"] if embedder in ("onnx", "sface") else []
    packages += ["opencv-python-headless"] if detector == "yunet" or embedder == "sface" else []
    found = {name: _version(name) for name in packages}
    for key in ("shape5", "resnet"):
        found[f"{key} sha256"] = sha256_file(dlib_model_path(key))
    return found


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True, slots=True)
class WorkerKit:
    settings: dict[str, Any]
    #: file name in the models folder -> bytes
    files: dict[str, bytes]
    fingerprint: dict[str, str]

    @classmethod
    def pack(cls, settings: Settings) -> WorkerKit:
        """On the driver: its worker settings, the model files its data folder holds, its fingerprint."""
        from lethe.embedding.dlib_onnx import cached_model_files
        from lethe.embedding.prepared import sidecar
        from lethe.embedding.sface import ensure_prepared

        cache = settings.model_cache
        paths: dict[str, Path] = {}
        if settings.embedder == "onnx":
            paths.update((p.name, p) for p in cached_model_files(cache))
        if settings.embedder == "sface":
            original = ensure_model(
                "sface", path=settings.sface_model_path, cache_dir=cache, offline=settings.offline
            )
            prepared, _, _ = ensure_prepared(original, cache)
            paths.update((p.name, p) for p in (original, prepared, sidecar(prepared)))
        if settings.detector == "yunet":
            path = ensure_model(
                "yunet", path=settings.yunet_model_path, cache_dir=cache, offline=settings.offline
            )
            paths[path.name] = path
        try:
            files = {name: path.read_bytes() for name, path in paths.items()}
        except OSError as exc:
            raise ModelError(f"cannot read a model file to send to the workers: {exc}") from exc
        return cls(
            settings={name: getattr(settings, name) for name in sorted(WORKER_SETTINGS)},
            files=files,
            fingerprint=fingerprint(settings.detector, settings.embedder),
        )

    @property
    def max_image_pixels(self) -> int:
        return int(self.settings["max_image_pixels"])

    def build(self) -> FacePipeline:
        """On the worker: check this node against the driver's, then build the pipeline."""
        mine = fingerprint(self.settings["detector"], self.settings["embedder"])
        differ = [
            f"{k} {mine.get(k)} here, {v} on the driver"
            for k, v in self.fingerprint.items()
            if mine.get(k) != v
        ]
        if differ:
            raise ModelError(
                "this worker's install differs from the driver's (" + "; ".join(differ) + "): install "
                "the same lethe[ray] on every node"
            )
        with tempfile.TemporaryDirectory(prefix="lethe-worker-") as tmp:
            models = Path(tmp) / "models"
            models.mkdir()
            for name, data in self.files.items():
                (models / name).write_bytes(data)
            settings = Settings.model_construct(
                **self.settings,
                data_dir=Path(tmp),
                model_cache_dir=models,
                offline=True,
                yunet_model_path=None,
                sface_model_path=None,
            )
            return build_pipeline(settings)
