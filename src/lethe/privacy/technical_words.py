"""The fixed words of the technical documentation (:mod:`lethe.privacy.technical_file`): what Lethe
is for and not for, how it is built and overseen, in the release's own terms. Everything that
depends on the installation (versions, model files, settings, counts, rates) is read live by
:mod:`lethe.privacy.technical_facts`; the limits of its accuracy are in ``lethe/known_limits.json``.
"""

from __future__ import annotations

NAME = "Lethe"
DESCRIPTION = (
    "Self-hosted face search over photo collections that its operator controls and declares with a "
    "lawful basis: it finds the photos of one person by comparing faces with a probe photo, and carries "
    "out data subjects' rights (access, erasure, objection, restriction) over them."
)
CLASSIFICATION = (
    "A high-risk AI system: post remote biometric identification, EU AI Act Annex III point 1(a) "
    "(operator search of stored photos by a probe photo). Self-search by a data subject is closer to "
    "verification; the system as a whole is treated as Annex III 1(a)."
)

INTENDED_PURPOSE = (
    "Finding the photos of one person in photo collections the deployer controls and holds on a "
    "declared lawful basis (GDPR Arts. 6 and 9), by comparing the faces in them with a probe photo: "
    "(1) to carry out that person's own data-protection rights (access, erasure, objection, "
    "restriction) and consent-based self-service ('find my photos' at an event); (2) searches by "
    "trained operators who state a purpose for each search, each result a candidate identification "
    "that two trained people verify before any action is taken on it (Art. 14(5))."
)
INTENDED_USERS = (
    "Deployers' staff in four roles: administrators, operators (ingest, search), data-protection "
    "officers (rights requests, audit) and monitors (metrics); verifiers are users with a recorded "
    "training. Data subjects use the public portal and event guest pages, which never search by face "
    "for them."
)
PERSONS_CONCERNED = (
    "Everyone whose face appears in a declared source: in an all_faces source every face is kept, in an "
    "enrolled_only source only the faces of people who enrolled with their consent. Adults and children "
    "alike may appear; accuracy was measured on adults (see the known limits)."
)

NOT_INTENDED = [
    "Building or extending a face database by untargeted scraping of the internet or of CCTV footage "
    "(prohibited, AI Act Art. 5(1)(e)): a source declared as scraped, social-network or CCTV collection "
    "is refused.",
    "Real-time remote biometric identification: Lethe works on stored photos only and has no input for "
    "live camera streams (Art. 5(1)(h)).",
    "Use by or on behalf of law enforcement for real-time identification in publicly accessible spaces, "
    "and post identification for law enforcement without the authorisation of Art. 26(10), which Lethe "
    "does not implement.",
    "Inferring emotions (Art. 5(1)(f)) or categorising people by sex, age, race, ethnicity, political "
    "opinion, religion, sexual orientation or any other characteristic from their faces (Art. 5(1)(g)): "
    "Lethe computes no such attribute.",
    "Identifying strangers from the street or the web, or anyone without a stated purpose.",
    "Taking a decision about a person on the strength of a match alone: a match is a candidate, never an "
    "identification, until two trained people verified it.",
]

FORMS_OF_DELIVERY = (
    "Open-source Python package (source and wheel) installed on the deployer's own machines; the command "
    "line `lethe`, the JSON API and web pages served by `lethe serve`. No hosted service; no data leaves "
    "the installation through the software."
)
HARDWARE = (
    "x86-64 CPUs with AVX2 (measured on 2-core Intel Xeon and AMD EPYC machines, 23.5 GB RAM); no GPU "
    "needed. Measured: SFace 27.9 ms per face on one core; ingest workers peaked at 545-605 MB of memory "
    "on 12-24 megapixel photos; a search over 1M faces (IVF, one thread) p50 1.75 ms (docs/benchmarks.md)."
)
USER_INTERFACE = (
    "Web pages for each role (search with candidate identifications and verdict forms, requests, audit "
    "log, sources, users), the public portal and transparency notices, the JSON API (docs/api.md) and the "
    "command line (docs/cli.md)."
)
INTERACTIONS = (
    "Reads photos from folders or uploads; stores its catalog in SQLite or PostgreSQL and its vectors in "
    "FAISS (in process) or Milvus; sends messages to requesters through SMTP when configured. It calls no "
    "external service at run time (model files are fetched once and pinned by SHA-256, or supplied)."
)

DEVELOPMENT = (
    "Lethe trains no model. It composes pre-trained models of third parties (the model files listed "
    "below, each pinned by SHA-256 and checked before use), aligns faces as each model expects, and "
    "calibrates its thresholds on a public benchmark (LFW) with the scripts in bench/."
)
LOGIC = [
    "detect faces (whole photo and tiles at full resolution, so small faces are found);",
    "align each face to the embedder's chip (five landmarks);",
    "compute a 128-number template per face, L2-normalised;",
    "store the template sealed (AES-256-GCM, one key per source) and its vector in the index;",
    "search: compare the probe's template with the index by cosine similarity; a face at or above the "
    "match threshold is a candidate identification, shown with the error rates measured at its score;",
    "erasure by a person's photo: faces at or above the automatic band are erased, faces in the review "
    "band wait for a reviewer.",
]
DESIGN_CHOICES = [
    "Few false matches over many misses: showing a stranger's photo discloses personal data, so the "
    "match threshold sits at FPIR <= 1% on LFW's 1:N gallery (lethe.calibration).",
    "Zero wrongful automatic erasures: the automatic erasure band is the lowest threshold at which "
    "erasure by one photo erased nobody else on all of LFW; the review band reaches >= 99.7% of a "
    "person's photos.",
    "Templates of different models are never compared; every template names its model's SHA-256.",
    "Scores are shown with their measured rates and a plain-language band, never as probabilities.",
    "A lawful basis per source, refused without one; purposes stated per search; everything audited.",
]
OUTPUT = (
    "For a search: candidate faces with their similarity score, plain-language band, the FPIR/FNIR "
    "measured at that score for the gallery's size, source and photo, each pending until verified. "
    "For a rights request: the person's faces in an automatic and a review band, then the action "
    "(erasure receipt, access copy, suppression)."
)

MODEL_DATA = {
    "sface": "Training data not documented for this file. The SFace paper (Zhong et al., 2021) trains on "
    "CASIA-WebFace, VGGFace2 and MS1M, research collections gathered from the web without the consent of "
    "the people in them; which produced this file is not stated (docs/models.md).",
    "dlib": "Per its author, about 3 million faces of about 7,500 people from the FaceScrub and VGG face "
    "data sets and photos gathered from the web, without the consent of the people in them "
    "(docs/models.md).",
    "yunet": "Not documented in Lethe: the detector's publisher (libfacedetection.train, OpenCV Zoo) "
    "states its own training data; Lethe did not verify which data made this file.",
}
EVALUATION_DATA = (
    "Labeled Faces in the Wild (LFW): 13,233 news photos of 5,749 people, mostly well-known adults "
    "photographed by the press in the 2000s; the 1:N protocol enrols one photo of each of the 1,680 people "
    "with two or more photos, probes with their other photos (mated) and with the people who have one "
    "photo (non-mated); larger galleries add synthetic face-like templates (docs/benchmarks.md)."
)

TESTING = (
    "The test suite (tests/) runs real models on real photos, real SQLite and PostgreSQL catalogs, real "
    "FAISS and Milvus indexes, the real API and the command line; privacy invariants are tests (after "
    "erasure no byte of an erased template remains; an access copy blurs every other face). Benchmarks "
    "(bench/, docs/benchmarks.md) record each figure with its date, command and machine; each "
    "calibration file states its own."
)

CYBERSECURITY = [
    "Templates and face crops encrypted at rest (AES-256-GCM, one data key per source wrapped by a master "
    "key; shredding a source's key makes its data unreadable); the FAISS index file sealed the same way.",
    "Model files pinned by SHA-256 and size, checked before every use (no unverified model runs).",
    "A hash-chained audit log with Ed25519-signed checkpoints; signed documents and receipts.",
    "Roles, hashed API tokens, session cookies with CSRF protection, rate limits on login, search and "
    "the portal; hostile photo files are decoded with size and pixel limits (docs/reliability.md).",
]

HUMAN_OVERSIGHT = [
    "Two-person verification (Art. 14(5)): every search result is a candidate identification until the "
    "number of trained verifiers set by the policy confirmed it independently; any rejection wins.",
    "A verifier's view hides the score until they gave their own verdict (Art. 14(4)(b)), when "
    "LETHE_VERIFY_SCORE_AFTER_JUDGEMENT is on.",
    "Every score is shown with its plain-language band and the error rates measured at it (Art. 14(4)(c)).",
    "The global stop halts every identification at once; a jurisdiction stop order hides a country's "
    "sources (Art. 14(4)(e)).",
    "Erasure candidates below the automatic band wait for a reviewer; a second data-protection officer's "
    "sign-off can be required (LETHE_ERASURE_SECOND_SIGNOFF).",
    "Misuse alerts on the audit log (volumes, repeated probes, off-hours) and the monitoring report.",
]

LOGGING = [
    "Every search, view, verdict, request, erasure, order and administrative change is an entry of a "
    "hash-chained audit log (actor, time, action, ids and counts; free text kept off the chain, "
    "erasable).",
    "Each search records the Art. 12(3) facts: its use (a case, with start and end), the reference "
    "database (sources searched, index generation, model SHA-256, threshold), the matched probe sealed "
    "for the log retention, and the verifiers.",
    "Signed checkpoints of the chain's head let a pruned log still verify; entries older than "
    "LETHE_LOG_RETENTION_DAYS (at least 183 days, Arts. 19 and 26(6)) are pruned.",
    "Collect them with `lethe audit list` / `GET /api/audit`, a use's record with `lethe audit export` / "
    "`GET /api/uses/{id}/export`, everything with `lethe report compliance` / "
    "`GET /api/reports/compliance`, which lists the rule to re-verify the chain independently.",
]

RISK_MEASURES = [
    "Refusal of sources without a lawful basis and of scraped or CCTV collections; declaration warnings.",
    "Calibrated thresholds; measured error rates quoted with every answer; known limits documented.",
    "Two-person verification, global stop, jurisdiction orders, misuse alerts.",
    "Erasure that stays erased (tombstones, suppression of re-encoded copies), verified by re-search.",
    "Encryption at rest, pinned models, audit log with signed checkpoints.",
]
STANDARDS = (
    "No harmonised standard applied in full (none was published for Annex III point 1 when this release "
    "was made). Accuracy is reported in the terms of ISO/IEC 19795-1 (FNIR, FPIR, 1:N identification) "
    "with 95% confidence intervals."
)
CHANGES_PREDETERMINED = (
    "None: Lethe does not learn in use. Its templates change only when an operator re-embeds with another "
    "pinned model (`lethe index reembed`); its thresholds only by settings, each quoted with its "
    "measurement."
)
POST_MARKET = (
    "The monitoring report (`lethe monitor report`, `GET /api/monitoring/report`; Art. 72) aggregates per "
    "week, with no personal data: searches, failure to acquire, matches per band, reviewers' and "
    "verifiers' confirm rates per band, alerts, and the drift of the score distribution after a change of "
    "model or threshold."
)
METRICS_APPROPRIATE = (
    "FPIR and FNIR at gallery sizes are the measures of ISO/IEC 19795-1 for 1:N identification; FPIR "
    "bounds the disclosure of a stranger's photo, FNIR the share of a person's photos a search or an "
    "erasure misses. Erasure is measured by its own protocol (automatic share, wrongful automatic "
    "erasures, recall after review)."
)
INPUT_SPEC = (
    "JPEG, PNG, WebP, GIF, BMP, TIFF or PPM photos within LETHE_MAX_IMAGE_PIXELS and LETHE_MAX_IMAGE_BYTES, "
    "EXIF orientation applied; faces from LETHE_MIN_FACE_PX across (sharp, frontal probes of at least 40 px "
    "are found best)."
)
MAINTENANCE = [
    "The service's maintenance pass (every LETHE_MAINTENANCE_INTERVAL_S) purges photos past their "
    "retention, finishes stop orders and prunes the audit log past LETHE_LOG_RETENTION_DAYS.",
    "Back up the data folder and the master key together; rotate the master key with `lethe keys rotate`.",
    "After an update of Lethe or of a model, generate the technical file again (`lethe technical-file`) and "
    "compare it with the previous one (its hashes are listed under changes).",
    "No fixed lifetime: a release is supported as long as its technical file describes it truthfully.",
]
INTERPRETING = [
    "A score is not a probability: read its band (very likely, likely, possible) and the FPIR measured at "
    "it for the gallery's size.",
    "'No match' means no face reached the threshold, not that the person is absent (see FNIR).",
    "Confirm only after comparing the probe's face with the candidate's side by side; relatives, "
    "look-alikes and children are known confusions.",
]
EXPLAINING = (
    "Each answer names the threshold, the measured rates at the score and gallery size, the model's "
    "SHA-256, the sources searched and the verifiers; a data subject's access copy explains what a score "
    "meant."
)
