"""Settings: environment variables with the prefix ``LETHE_`` (see docs/configuration.md).

Precedence, highest first: arguments to ``Settings(...)``, environment variables, a ``.env`` file
in the working directory, defaults. Settings are built on demand (``Settings()``), never at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lethe.errors import ConfigError

#: The longest lifetime of an API token, in days (docs/api.md says why).
MAX_TOKEN_DAYS = 365
#: The lifetime of a new API token when neither the caller nor ``LETHE_TOKEN_DAYS`` says otherwise.
DEFAULT_TOKEN_DAYS = 90
#: The shortest audit-log retention the law allows: six months (EU AI Act Arts. 19(1) and 26(6)).
MIN_LOG_RETENTION_DAYS = 183


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LETHE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Catalog file, index files, crops, keys.")
    catalog_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default a SQLite file `catalog.sqlite3` in the data folder; "
        "`postgresql://user:password@host:port/dbname` for PostgreSQL (see operations.md).",
    )
    index: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description="Vector index backend: `faiss` (files in the data folder) or `milvus` (needs the "
        "`milvus` extra; see docs/operations.md).",
    )
    index_kind: Literal["auto", "flat", "ivf"] = Field(
        default="auto",
        description="Index structure: exact `flat`, approximate `ivf` (FAISS IVF-SQ8 / Milvus IVF_SQ8), "
        "or `auto` by gallery size.",
    )
    index_exact_max_faces: int = Field(
        default=100_000, ge=1, description="With index_kind=auto, galleries up to this size use exact search."
    )
    milvus_uri: str | None = Field(
        default=None,
        description="With index=milvus: a Milvus server (`http://host:19530`) or a local milvus-lite file "
        "ending in `.db`; default `index/milvus.db` in the data folder (milvus-lite, one process at a time).",
    )
    milvus_collection: str = Field(
        default="lethe_faces",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="With index=milvus: the collection holding this data folder's faces (one per "
        "deployment sharing a server).",
    )
    milvus_token: str | None = Field(
        default=None, description="With index=milvus: `user:password` or API token for a Milvus server."
    )
    milvus_compaction_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="With index=milvus on a server: how long a save waits for the compaction that "
        "physically drops removed vectors before it fails (the purge is retried by the next save).",
    )
    max_image_pixels: int = Field(
        default=50_000_000, ge=1, description="Images with more pixels are refused (decompression bombs)."
    )
    max_image_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Files larger than this are refused."
    )
    embedder: Literal["sface", "onnx", "dlib"] = Field(
        default="sface",
        description="Face embedder: `sface` (SFace, OpenCV Zoo, on ONNX Runtime; the default), `onnx` "
        "(dlib's ResNet converted to ONNX Runtime) or `dlib` (dlib's ResNet on dlib's own runtime, the "
        "reference; same templates as `onnx`). Templates of different models are never compared: after "
        "a change run `lethe index reembed` (docs/models.md).",
    )
    embed_threads: int = Field(default=1, ge=1, description="ONNX Runtime threads per embedding process.")
    embed_flip: bool = Field(
        default=False,
        description="Average each face's template with its mirror image's (test-time augmentation; "
        "twice the embedding work). Templates and probes must be made the same way: change it only "
        "on an empty data folder, or re-ingest.",
    )
    detector: Literal["yunet", "hog"] = Field(
        default="yunet",
        description="Face detector: `yunet` (YuNet, OpenCV Zoo; boxes and five landmarks; the default) or "
        "`hog` (dlib's HOG).",
    )
    yunet_model_path: Path | None = Field(
        default=None,
        description="YuNet ONNX file (either pinned release); when unset it is taken from the model cache "
        "or fetched there, sha256-checked (docs/models.md).",
    )
    sface_model_path: Path | None = Field(
        default=None,
        description="SFace ONNX file; when unset it is taken from the model cache or fetched there, "
        "sha256-checked (docs/models.md).",
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description="Per-user model cache shared by every data folder (fetched files and the prepared "
        "ONNX graphs); default `$XDG_CACHE_HOME/lethe/models` or `~/.cache/lethe/models`.",
    )
    detect_max_side_px: int = Field(
        default=1024, ge=64, description="Images are shrunk to this longest side before detection."
    )
    min_face_px: int = Field(
        default=20, ge=1, description="Faces smaller than this (box side, px of the photo) are ignored."
    )
    detect_small_face_px: int = Field(
        default=40,
        ge=8,
        description="Faces this wide (px of the photo) and wider are searched for in photos of any size: "
        "a photo too large for the whole-photo pass to see them is also scanned in tiles, at the scale "
        "that makes such a face large enough for the detector (YuNet 24 px, HOG 80 px without "
        "enlarging). Halving it costs about 4x the detection time on large photos (docs/operations.md).",
    )
    match_threshold: float = Field(  # filled in by _calibrated_defaults when unset
        ge=-1.0,
        le=1.0,
        description="Cosine similarity at or above which a face is a match; default: the embedder's "
        "calibrated value (docs/configuration.md).",
    )
    erasure_auto_threshold: float = Field(  # filled in by _calibrated_defaults when unset
        ge=-1.0,
        le=1.0,
        description="Requests: similarity at or above which a face is the requester's without review; "
        "default: the embedder's calibrated value.",
    )
    erasure_review_threshold: float = Field(  # filled in by _calibrated_defaults when unset
        ge=-1.0,
        le=1.0,
        description="Requests: similarity from which a face goes to the review queue; also where ingest "
        "and search keep out a person who objected or asked for restriction; default: the embedder's "
        "calibrated value.",
    )
    exports_dir: Path | None = Field(
        default=None, description="Where access exports are written; default `exports/` in the data folder."
    )
    workers: int = Field(default_factory=_default_workers, ge=1, description="Ingest worker processes.")
    ingest_engine: Literal["local", "ray"] = Field(
        default="local",
        description="Where ingest decodes, detects and embeds: `local` worker processes, or the actors of "
        "a Ray cluster (`ray`; needs the `ray` extra; see docs/operations.md).",
    )
    ray_address: str | None = Field(
        default=None,
        description="With ingest_engine=ray: the cluster, as `auto` (this node's), `HOST:6379` (a head "
        "node) or `ray://HOST:10001` (Ray Client); unset: a local Ray instance with `workers` CPUs for "
        "the run.",
    )
    ray_actors: int = Field(
        default=0,
        ge=0,
        description="With ingest_engine=ray: actors (one CPU each, each holding the models); 0 = one per "
        "CPU of the cluster.",
    )
    offline: bool = Field(default=False, description="Never download model files.")
    master_key_file: Path | None = Field(
        default=None,
        description="Master key (32 bytes, mode 0600); default `keys/master.key` in the data folder.",
    )
    # -- the web service (`lethe serve`) ------------------------------------------------------------
    maintenance_interval_s: float = Field(
        default=3600.0,
        ge=0,
        description="Service: seconds between retention purges and pending order deletions (0 = off).",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Service: a request body (all uploads together) over this size is refused with 413.",
    )
    search_rate_per_minute: int = Field(
        default=60, ge=1, description="Service: searches one user may run per minute (then 429)."
    )
    use_timeout_minutes: int = Field(
        default=480,
        ge=1,
        le=7 * 24 * 60,
        description="Uses (cases): an open use whose last search (or opening) is older than this many "
        "minutes is closed as timed out when next noticed; the operator's next search opens a new use "
        "(docs/oversight.md, 'Uses and the search log').",
    )
    portal_rate_per_minute: int = Field(
        default=5, ge=1, description="Service: public portal submissions per client IP address per minute."
    )
    login_rate_per_minute: int = Field(
        default=10, ge=1, description="Service: login attempts per client IP address per minute."
    )
    session_secret_file: Path | None = Field(
        default=None,
        description="Service: key that signs login sessions (32 random bytes, mode 0600); default "
        "`keys/session.key` in the data folder, created on first use.",
    )
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, description="Service: a login session expires after this many seconds."
    )
    token_days: int = Field(
        default=DEFAULT_TOKEN_DAYS,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description="API tokens: the lifetime of a new token in days when none is asked for "
        "(`lethe token create --days`, the API's `days`); at most 365. An expired token is refused.",
    )
    verifier_training_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Verification: a user's `verifier` competence lapses this many days after the training "
        "date recorded for it (AI literacy, EU AI Act Arts. 4 and 26(2)); a lapsed user verifies nothing "
        "until an admin records a newer training (docs/oversight.md, 'Two-person verification').",
    )
    verify_score_after_judgement: bool = Field(
        default=True,
        description="Verification: a verifier's view of a candidate omits the similarity score until they "
        "gave their verdict (a cue against automation bias, EU AI Act Art. 14(4)(b)).",
    )
    erasure_second_signoff: bool = Field(
        default=False,
        description="Erasure requests: when on, the automatic batch of `lethe request run ID --auto` erases "
        "only after a second data-protection officer signed it off (`lethe request signoff ID`). Off by "
        "default: an erasure at the data subject's request is their instruction, not an identification "
        "by the deployer (EU AI Act Art. 14(5); docs/oversight.md).",
    )
    login_failures: int = Field(
        default=5,
        ge=1,
        description="Service: failed logins for one account within `LETHE_LOGIN_FAILURE_WINDOW_S` after "
        "which further attempts for that account, from any address, are refused (429) for a delay that "
        "doubles at each further failure.",
    )
    login_failure_window_s: int = Field(
        default=15 * 60,
        ge=1,
        description="Service: the window in which `LETHE_LOGIN_FAILURES` failed logins for one account "
        "start its backoff; an account quiet this long after its last failure or backoff starts afresh.",
    )
    login_backoff_max_s: int = Field(
        default=3600,
        ge=1,
        description="Service: the longest delay one account's login backoff imposes (it starts at 60 s, "
        "or this when smaller, and doubles).",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Service: mark the session cookies `Secure` (set it when the service is behind HTTPS).",
    )
    ingest_root: Path | None = Field(
        default=None,
        description="Service: the one folder `POST /api/ingest` may read folders and manifests from; unset, "
        "the API ingests uploads only. Lethe's own folders (data, exports, keys, temporary files) are "
        "never ingested, whatever it says.",
    )
    contact_outbox_dir: Path | None = Field(
        default=None,
        description="Portal: folder where the confirmation message for a requester's contact address is "
        "written (one JSON file per message, mode 0600) for the operator's mailer to send and delete; "
        "default `outbox/` in the data folder.",
    )
    contact_confirmation_ttl_s: int = Field(
        default=72 * 3600,
        ge=60,
        description="Portal: a request whose contact address is not confirmed within this many seconds "
        "expires (its photos and contact are deleted).",
    )
    dpo_contact: str | None = Field(
        default=None,
        min_length=3,
        max_length=320,
        description="Portal: where a requester writes to the data-protection officer (an e-mail or postal "
        "address), shown on the portal, its receipt and its status page ('write to ... quoting your "
        "reference'); unset, none is shown.",
    )
    # -- communications to requesters (docs/privacy.md, 'Messages to the requester') -----------------
    controller_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Messages to requesters: the controller's name, signed under every message; unset, "
        "'the data-protection officer'.",
    )
    default_language: Literal["en", "fr"] = Field(
        default="en",
        description="Messages to requesters: the language of a request that states none (`en`, `fr`); "
        "a request may choose its own (portal form, `--language`).",
    )
    mail_channel: Literal["none", "smtp"] = Field(
        default="none",
        description="Messages to requesters: `none` records each message as a draft for the "
        "data-protection officer to send by hand; `smtp` sends it through LETHE_SMTP_HOST.",
    )
    smtp_host: str | None = Field(default=None, description="With mail_channel=smtp: the SMTP server's host.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="With mail_channel=smtp: its port.")
    smtp_from: str | None = Field(
        default=None, max_length=320, description="With mail_channel=smtp: the sender address (From)."
    )
    smtp_starttls: bool = Field(
        default=True, description="With mail_channel=smtp: upgrade the connection with STARTTLS first."
    )
    smtp_user: str | None = Field(
        default=None, description="With mail_channel=smtp: the user to log in as (none: no login)."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="With mail_channel=smtp: the password of LETHE_SMTP_USER (never logged)."
    )
    smtp_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="With mail_channel=smtp: seconds before a send fails."
    )
    log_retention_days: int = Field(
        default=MIN_LOG_RETENTION_DAYS,
        le=36_500,
        description="Audit log: entries older than this many days are pruned (`lethe audit prune`, the "
        "service's maintenance pass), up to a signed checkpoint; at least 183 (six months, EU AI Act "
        "Arts. 19(1) and 26(6)); longer where another law asks for it (docs/oversight.md, 'Log retention').",
    )
    erasure_suppression_days: int = Field(
        default=1096,
        ge=1,
        le=3653,
        description="Erasure: days the templates of a person erased on request are kept (sealed, used only "
        "to keep copies of the erased photos out of every later ingest), then deleted; see "
        "docs/privacy.md, 'Erasure that stays erased'.",
    )
    # -- misuse detection and monitoring (docs/oversight.md, 'Misuse detection and monitoring') --------
    alert_daily_searches: int = Field(
        default=200,
        ge=1,
        description="Misuse alerts: an operator whose searches in the last 24 hours exceed this number, and "
        "`LETHE_ALERT_VOLUME_FACTOR` times their own median daily count of the 30 days before, raises a "
        "`volume` alert.",
    )
    alert_volume_factor: float = Field(
        default=3.0,
        ge=1.0,
        description="Misuse alerts: how many times an operator's own 30-day median daily searches the last "
        "24 hours must exceed (with `LETHE_ALERT_DAILY_SEARCHES`) to raise a `volume` alert.",
    )
    alert_repeated_probe: int = Field(
        default=5,
        ge=2,
        description="Misuse alerts: the same probe photo (by its SHA-256) searched this many times within "
        "`LETHE_ALERT_WINDOW_HOURS`, by anyone, raises a `repeated_probe` alert.",
    )
    alert_window_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 31,
        description="Misuse alerts: how far back a scan looks for repeated probes and for searches outside "
        "working hours (a scan runs at every maintenance pass of the service and on `lethe monitor scan`).",
    )
    alert_open_use_searches: int = Field(
        default=50,
        ge=1,
        description="Misuse alerts: a use (case) still open after this many searches raises an `open_uses` "
        "alert (many searches without a use closing).",
    )
    working_hours: str = Field(
        default="",
        pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
        description="Misuse alerts: the working hours, `HH:MM-HH:MM` (e.g. `08:00-19:00`, start before "
        "end), in `LETHE_WORKING_TIMEZONE`; a search outside them raises an `off_hours` alert. Empty (the "
        "default): no such alert.",
    )
    working_timezone: str = Field(
        default="UTC",
        description="Misuse alerts: the IANA time zone of `LETHE_WORKING_HOURS` (e.g. `Europe/Paris`).",
    )
    working_weekends: bool = Field(
        default=False,
        description="Misuse alerts: whether Saturday and Sunday are working days; when false (the default) "
        "a search on a weekend counts as outside working hours (with `LETHE_WORKING_HOURS` set).",
    )
    drift_tolerance: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Monitoring report: a change of model or threshold that moves the median top score of "
        "matched searches by more than this is flagged as score-distribution drift.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Service: comma-separated addresses or networks of reverse proxies whose "
        "`X-Forwarded-For` names the client (for rate limits); from any other peer the header is "
        "ignored. Default none.",
    )
    portal_global_rate_per_minute: int = Field(
        default=30,
        ge=1,
        description="Service: public portal submissions per minute from all clients together (then 429).",
    )
    api_docs: bool = Field(
        default=False,
        description="Service: serve Swagger UI at `/docs` (from the `swagger-ui-bundle` package: "
        "`pip install 'lethe[docs]'`; never a CDN, under a strict CSP). Off by default; `/openapi.json` "
        "is always served.",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Service (`lethe serve`): a connection that has not sent a whole request head "
        "(request line and headers) this many seconds after it opened, or after its previous response, "
        "is closed.",
    )
    body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Service: a request body that has not arrived in full this many seconds after its "
        "headers is refused with 408 and the connection closed.",
    )
    strict_declarations: bool = Field(
        default=False,
        description="Sources: refuse a declaration that draws a warning (Art. 9(2)(e) 'manifestly made "
        "public', a law-based condition without `--legal-reference`, legitimate interests without "
        "`--lia-reference`, a consent basis indexing all faces) instead of registering it with the "
        "warning recorded.",
    )
    actor: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="Command line: the acting identity recorded in the audit log (`--actor NAME` "
        "overrides it); an existing user of this installation, or a local administrator identity "
        "(docs/cli.md#who-acts). A command that writes or searches refuses to run with neither.",
    )
    portal_max_image_pixels: int = Field(
        default=24_000_000,
        ge=1,
        description="Portal: a photo whose header says it has more pixels is refused (413) before any of "
        "it is decoded.",
    )
    portal_max_photo_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Portal: a photo file over this size is refused (413).",
    )
    portal_pending_max_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1,
        description="Portal: photos of open portal requests may hold this many bytes in the catalog "
        "together; past it new submissions get 503 until requests are handled or expire.",
    )
    portal_concurrent_submissions: int = Field(
        default=2,
        ge=1,
        description="Portal: submissions read and decoded at the same time; one more gets 503 at once.",
    )

    @model_validator(mode="before")
    @classmethod
    def _calibrated_defaults(cls, data: Any) -> Any:
        """Unset thresholds take the configured embedder's calibrated values (lethe.calibration)."""
        from lethe.calibration import default_thresholds

        if isinstance(data, dict):
            defaults = default_thresholds(str(data.get("embedder") or "sface"))
            for name in ("match_threshold", "erasure_auto_threshold", "erasure_review_threshold"):
                if data.get(name) is None:
                    data[name] = getattr(defaults, name)
        return data

    @model_validator(mode="after")
    def _no_ambiguous_backend(self) -> Settings:
        """Milvus settings with the FAISS index would be silently ignored: refuse them, so an
        operator who meant Milvus does not run on a local FAISS index without noticing."""
        if self.index == "faiss":
            given = sorted(
                f"LETHE_{name.upper()}" for name in self.model_fields_set if name.startswith("milvus_")
            )
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but LETHE_INDEX is faiss: set LETHE_INDEX=milvus or unset them"
                )
        return self

    @model_validator(mode="after")
    def _smtp_complete(self) -> Settings:
        """The SMTP channel needs a server and a sender: refuse it without them, rather than record
        every message as failed."""
        if self.mail_channel == "smtp":
            missing = [f"LETHE_SMTP_{n.upper()}" for n in ("host", "from") if not getattr(self, f"smtp_{n}")]
            if missing:
                raise ValueError(f"LETHE_MAIL_CHANNEL is smtp but {', '.join(missing)} is not set")
        return self

    @property
    def model_cache(self) -> Path:
        """The model cache folder in force."""
        from lethe.models.registry import default_model_cache_dir

        return self.model_cache_dir if self.model_cache_dir is not None else default_model_cache_dir()

    @field_validator("log_retention_days")
    @classmethod
    def _six_months_at_least(cls, value: int) -> int:
        if value < MIN_LOG_RETENTION_DAYS:
            raise ValueError(
                f"{value} days is too short: the EU AI Act (Arts. 19(1) and 26(6)) requires the logs of a "
                f"high-risk AI system to be kept at least six months ({MIN_LOG_RETENTION_DAYS} days)"
            )
        return value

    @field_validator("working_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)") from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours_in_order(cls, value: str) -> str:
        if value and value[:5] >= value[6:]:
            raise ValueError(f"working hours {value!r}: the start must come before the end")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator(
        "master_key_file",
        "session_secret_file",
        "ingest_root",
        "model_cache_dir",
        "sface_model_path",
        "yunet_model_path",
    )
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Build settings, turning validation failures into one readable :class:`ConfigError`."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"LETHE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                if e["loc"]
                else str(e["msg"]).removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from exc

    @property
    def resolved_catalog_url(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    def ensure_data_dir(self) -> Path:
        """The data folder, created 0700; an existing one open to group or others is made 0700 (what
        it holds is biometric data; its files are 0600 already, its listing is not for others)."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create data folder {self.data_dir}: {exc.strerror}") from exc
        mode = self.data_dir.stat().st_mode & 0o777
        if mode & 0o077:
            log = logging.getLogger(__name__)
            try:
                os.chmod(self.data_dir, 0o700)
                log.warning("data folder %s was mode %s: made 0700 (owner only)", self.data_dir, oct(mode))
            except OSError as exc:  # not ours to change: say so, its files stay 0600 all the same
                log.warning(
                    "data folder %s is mode %s and could not be made 0700: %s", self.data_dir, oct(mode), exc
                )
        return self.data_dir
