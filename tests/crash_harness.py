"""Crash harness: SIGKILL a real Lethe process at a random point of an operation, restart, check.

A *child* process (this file run as a script) opens the engine on a data folder, warms up, prints
``go`` and runs one operation: ``ingest`` (a folder), ``rebuild`` (``Lethe.rebuild_index``) or
``erase`` (``Lethe.remove_faces``). It is killed with SIGKILL — the whole process group, worker
processes included, as the kernel's OOM killer or a power cut would — at one of two kinds of point:

* ``event:K`` — just before the K-th *persistence event* of the operation: a file opened for
  writing, a rename or replace, a file removed or truncated, a catalog commit, a ``VACUUM`` or WAL
  checkpoint. The child counts them with an audit hook (:func:`sys.addaudithook`) and SQLAlchemy's
  ``commit`` event and kills itself when the count reaches K. A run with no kill counts them all,
  so K drawn from 1..N covers every state between two persistent steps the operation can leave.
* ``timed`` — the parent sends SIGKILL after a random delay drawn over the operation's measured
  duration; this lands inside C code too (FAISS writing its file, SQLite's commit), which no hook
  sees. Just before the kill the child's Python stack is dumped (``faulthandler`` on SIGUSR1), so
  the report says where each kill landed.

The parent then opens the engine again (which repairs and resumes what it must) and
:func:`check` lists every broken invariant:

* every committed photo is in the catalog exactly once, with all its faces (never some of them);
* every catalog face has exactly one vector in the index, with its own template, and no vector
  lacks a face; every face has its sealed crop, and no crop, temporary file or ingest journal is
  left without a face;
* no erasure job is left pending; an erased face is in no table, no index, no crop, and none of its
  bytes (plaintext or sealed template, sealed crop) is in any file of the data folder or catalog;
* the audit chain verifies.

Finally the operation is run again to the end and the result compared with an uninterrupted run's.
Used by ``tests/test_crash.py`` (a handful of points) and ``bench/crash_soak.py`` (``make soak``).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlalchemy import select as sql_select

import lethe
from lethe.catalog.privacy_tables import ErasureJobRow
from lethe.catalog.tables import FaceRow, ImageRow
from lethe.config import Settings
from lethe.engine import Lethe

from conftest import child_env, erased_bytes, occurrences  # the data folder's files and the catalog's

HERE = Path(__file__).resolve()
LETHE_CODE = str(Path(lethe.__file__).resolve().parent) + os.sep
REPO = HERE.parents[1]
OPERATIONS = ("ingest", "rebuild", "erase")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


# -- the child -------------------------------------------------------------------------------------


class _Killer:
    """Counts persistence events after ``go``; SIGKILLs its process group at event ``kill_at``."""

    def __init__(self, data: Path, kill_at: int | None) -> None:
        self.data = str(data)
        self.kill_at = kill_at
        self.count = 0
        self.labels: list[str] = []
        self.armed = False

    def event(self, label: str) -> None:
        if not self.armed:
            return
        self.count += 1
        if self.kill_at is not None and self.count >= self.kill_at:
            print(json.dumps({"killed_at": self.count, "event": label, "where": _where()}), flush=True)
            os.killpg(os.getpgid(0), signal.SIGKILL)
        self.labels.append(label)

    def audit(self, name: str, args: tuple[Any, ...]) -> None:
        if not self.armed:
            return
        if name == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes and isinstance(path, (str, bytes, os.PathLike)):
                self.event(f"open-for-write {self._short(path)}")
        elif name in ("os.rename", "os.remove", "os.truncate", "os.rmdir", "shutil.rmtree"):
            self.event(f"{name} {self._short(args[0])}")

    def _short(self, path: Any) -> str:
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        return _kind_of_path(text[len(self.data) + 1 :] if text.startswith(self.data) else text)


def _kind_of_path(relative: str) -> str:
    """A path reduced to what it is (crop files differ only by face id)."""
    parts = relative.split("/")
    if parts[0] == "crops" and len(parts) > 2:
        return "crops/<face>" + (".tmp" if parts[-1].endswith(".tmp") else "")
    name = parts[-1]
    if name.startswith(".") and name.endswith(".tmp"):
        name = name.split(".")[1] + ".<tmp>"
    return "/".join([*parts[:-1], name])


def _where() -> str:
    """The innermost frames of Lethe's own code on the current stack."""
    frame = sys._getframe(2)
    names = []
    while frame is not None and len(names) < 3:
        file = frame.f_code.co_filename
        if file.startswith(LETHE_CODE):
            names.append(f"{Path(file).stem}.{frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(names) or "outside lethe"


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("op", choices=OPERATIONS)
    parser.add_argument("--target", type=Path)
    parser.add_argument("--source", default="events")
    parser.add_argument("--faces", default="[]")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--trace", type=Path)
    parser.add_argument("--commit-every", type=int)
    parser.add_argument("--arm-before-open", action="store_true")
    args = parser.parse_args(argv)
    if args.trace:
        trace = args.trace.open("w")
        faulthandler.register(signal.SIGUSR1, file=trace, all_threads=True)
    if args.commit_every:  # smaller ingest batches: more commits, so more states to crash in
        import lethe.ingest.driver as driver

        driver.COMMIT_EVERY_IMAGES = args.commit_every
    killer = _Killer(args.data.resolve(), args.kill_at)
    sys.addaudithook(killer.audit)
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        head = statement.lstrip().upper()
        if head.startswith("VACUUM") or "WAL_CHECKPOINT" in head:
            killer.event(f"catalog {head.split('(')[0].split()[0].lower()}")

    event.listen(Engine, "commit", lambda _conn: killer.event("catalog commit"))
    event.listen(Engine, "before_cursor_execute", on_statement)
    killer.armed = args.arm_before_open  # a crash during the recovery the open does
    engine = Lethe(Settings(data_dir=args.data))  # the rest of the settings from LETHE_* variables
    if args.op == "ingest":
        _ = engine.pipeline.embedder  # models loaded before go: kills land in the ingest itself
    started = time.perf_counter()
    print("go", flush=True)
    killer.armed = True
    if args.op == "ingest":
        engine.ingest(args.source, args.target)
    elif args.op == "rebuild":
        engine.rebuild_index(actor="crash-test")
    else:
        engine.remove_faces(json.loads(args.faces), actor="crash-test", reason="crash test")
    killer.armed = False
    seconds = time.perf_counter() - started
    engine.close()
    print(json.dumps({"events": killer.count, "labels": killer.labels, "seconds": seconds}), flush=True)


# -- the parent ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Operation:
    """One operation to crash: what the child runs (on a copy of a data folder)."""

    op: str
    target: Path | None = None  # ingest: the folder
    source: str = "events"  # ingest: into this source
    faces: list[int] = field(default_factory=list)  # erase: the face ids
    commit_every: int | None = None  # ingest: photos per commit

    def argv(self, data: Path) -> list[str]:
        argv = [sys.executable, str(HERE), "child", str(data), self.op, "--source", self.source]
        if self.target is not None:
            argv += ["--target", str(self.target)]
        if self.faces:
            argv += ["--faces", json.dumps(self.faces)]
        if self.commit_every:
            argv += ["--commit-every", str(self.commit_every)]
        return argv

    def finish(self, lethe: Lethe) -> None:
        """Run the operation again to the end, as an operator would after the crash."""
        if self.op == "ingest":
            assert self.target is not None
            lethe.ingest(self.source, self.target)
        elif self.op == "rebuild":
            lethe.rebuild_index(actor="crash-test")
        elif set(lethe.catalog.face_ids().tolist()) & set(self.faces):
            lethe.remove_faces(self.faces, actor="crash-test", reason="crash test")


@dataclass(slots=True)
class Outcome:
    killed: bool
    point: str  # "event:K" or "timed:<seconds>"
    event: str = ""  # the event killed before (event kills)
    where: str = ""  # Lethe's innermost functions at the kill
    calibration: dict[str, Any] | None = None  # a run with no kill: events, labels, seconds


def _env(settings: dict[str, object]) -> dict[str, str]:
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(HERE.parent)])
    env.update({f"LETHE_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def run_child(
    operation: Operation,
    data: Path,
    settings: dict[str, object],
    *,
    kill_at: int | None = None,
    delay: float | None = None,
    arm_before_open: bool = False,
    timeout: float = 300,
) -> Outcome:
    """Run the operation in a child on ``data``: uninterrupted (calibration), killed before event
    ``kill_at``, or killed ``delay`` seconds after it printed ``go``."""
    argv = operation.argv(data)
    trace = data.parent / f"{data.name}.trace"
    if kill_at is not None:
        argv += ["--kill-at", str(kill_at)]
    if arm_before_open:
        argv.append("--arm-before-open")
    if delay is not None:
        argv += ["--trace", str(trace)]
    child = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(settings),
        cwd=data.parent,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        if delay is not None:
            line = child.stdout.readline()
            if line.strip() != "go":
                raise RuntimeError(f"child did not start: {line!r} {child.communicate()[1][-2000:]}")
            time.sleep(delay)
            if child.poll() is None:
                child.send_signal(signal.SIGUSR1)  # faulthandler dumps the stacks (C handler: at once)
                _wait_for_dump(trace)
                os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    killed = child.returncode == -signal.SIGKILL
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if not killed and child.returncode != 0:
        raise RuntimeError(f"child failed with status {child.returncode}: {err[-3000:]}")
    if kill_at is not None:
        info = lines[-1] if killed and lines else {}
        return Outcome(
            killed,
            f"event:{kill_at}",
            info.get("event", ""),
            info.get("where", ""),
            None if killed else lines[-1],
        )
    if delay is not None:
        where = _where_from_trace(trace.read_text() if trace.exists() else "") if killed else ""
        trace.unlink(missing_ok=True)
        return Outcome(killed, f"timed:{delay:.4f}", "", where, None if killed else lines[-1])
    return Outcome(False, "none", calibration=lines[-1])


def _wait_for_dump(trace: Path, limit: float = 0.05) -> None:
    """Until the dump has stopped growing for 2 ms (a few threads: well under a millisecond), so
    the kill does not cut it; at most ``limit`` seconds."""
    deadline, size, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = trace.stat().st_size if trace.exists() else 0
        if now != size:
            size, since = now, time.monotonic()
        elif size and time.monotonic() - since >= 0.002:
            return
        time.sleep(0.0002)


def _where_from_trace(text: str) -> str:
    """Lethe's innermost functions in a faulthandler dump: the thread the signal interrupted when
    it was in Lethe's code, else the first thread that was (a worker or library thread may be the
    one interrupted); without any, the interrupted thread's innermost function."""
    blocks = [b for b in text.split("\n\n") if "most recent call first" in b]
    blocks.sort(key=lambda b: "Current thread" not in b)
    for block in blocks:
        names = []
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("File ") and line.split('"')[1].startswith(LETHE_CODE):
                file = line.split('"')[1]
                names.append(f"{Path(file).stem}.{line.rsplit(' in ', 1)[-1]}")
        if names:
            return " < ".join(names[:3])
    for line in blocks[0].splitlines() if blocks else []:
        if line.strip().startswith("File "):
            file = line.strip().split('"')[1]
            return f"outside lethe ({Path(file).stem}.{line.rsplit(' in ', 1)[-1]})"
    return "outside lethe"


# -- invariants ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Expected:
    """The catalog before the operation and after an uninterrupted run (photo hash -> faces); the
    faces an erasure removes, with the bytes that must not survive it; the index structure."""

    op: str
    before: dict[str, int]
    final: dict[str, int]
    erased: list[int] = field(default_factory=list)
    erased_bytes: dict[str, list[bytes]] = field(default_factory=dict)
    kind: str | None = None


def catalog_images(lethe: Lethe) -> dict[str, int]:
    """Photo hash -> faces; raises when a hash is stored twice in a source."""
    with lethe.catalog.session() as session:
        rows = session.execute(
            sql_select(ImageRow.source_id, ImageRow.sha256, func.count(FaceRow.id))
            .outerjoin(FaceRow, FaceRow.image_id == ImageRow.id)
            .group_by(ImageRow.id)
        ).all()
    seen = Counter((source, sha) for source, sha, _ in rows)
    twice = [sha for (_, sha), n in seen.items() if n > 1]
    if twice:
        raise AssertionError(f"photos stored more than once: {twice[:5]}")
    return {sha: int(n) for _, sha, n in rows}


def check(lethe: Lethe, data: Path, expected: Expected, *, finished: bool) -> list[str]:
    """Every broken invariant of an open engine's data folder (empty: all hold). ``finished``: the
    operation has run to the end, so the state must equal the uninterrupted run's."""
    problems: list[str] = []
    verification = lethe.verify_audit()
    if not verification.ok:
        problems.append(f"audit chain broken: {verification.problem}")
    try:
        images = catalog_images(lethe)
    except AssertionError as exc:
        problems.append(str(exc))
        images = {}
    problems += _photos_hold(images, expected, finished)
    catalog_ids = np.sort(lethe.catalog.face_ids())
    index_ids = lethe.index.ids()
    if np.unique(index_ids).size != index_ids.size:
        problems.append("a face has more than one vector")
    if not np.array_equal(catalog_ids, np.sort(index_ids)):
        extra = np.setdiff1d(index_ids, catalog_ids).size
        lacking = np.setdiff1d(catalog_ids, index_ids).size
        problems.append(
            f"index and catalog differ: {extra} vectors without a face, {lacking} faces without one"
        )
    problems += _vectors_are_their_faces(lethe)
    problems += _crops_match(lethe, data)
    with lethe.catalog.session() as session:
        pending = session.scalars(sql_select(ErasureJobRow.id).where(ErasureJobRow.state != "done")).all()
    if pending:
        problems.append(f"erasure jobs left pending: {list(pending)}")
    if expected.erased:
        problems += _erasure_holds(lethe, data, expected)
    if finished and expected.kind and lethe.index.stats().get("kind") != expected.kind:
        problems.append(f"index is {lethe.index.stats().get('kind')}, not {expected.kind}")
    return problems


def _photos_hold(images: dict[str, int], expected: Expected, finished: bool) -> list[str]:
    """Finished: the uninterrupted run's photos. Killed: an ingest has committed whole photos of
    it (each with all its faces) on top of what was there; an erasure or a rebuild left the
    catalog as it was before or as after (an erasure is finished when the engine opens)."""
    if finished or expected.op != "ingest":
        if images == expected.final or (not finished and images == expected.before):
            return []
        missing = len(expected.final.keys() - images.keys())
        extra = len(images.keys() - expected.final.keys())
        changed = sum(images[k] != expected.final[k] for k in images.keys() & expected.final.keys())
        state = "after running it again" if finished else "after the kill"
        return [f"catalog {state}: {missing} photos missing, {extra} extra, {changed} with other faces"]
    problems = []
    for sha, faces in images.items():
        if sha not in expected.final:
            problems.append(f"photo {sha[:12]} is in the catalog but not in the uninterrupted run's")
        elif expected.final[sha] != faces:
            problems.append(f"photo {sha[:12]} has {faces} faces, not {expected.final[sha]}")
    if expected.before.keys() - images.keys():
        problems.append("photos stored before the ingest are gone")
    return problems


def _vectors_are_their_faces(lethe: Lethe) -> list[str]:
    """Each face's template finds its own vector (searching that id alone: a full scan)."""
    wrong, stored = 0, set(lethe.index.ids().tolist())
    for ids, templates in lethe.catalog.iter_embeddings():
        for face_id, template in zip(ids.tolist(), templates, strict=True):
            if face_id not in stored:
                continue  # counted as a face without a vector above
            hits = lethe.index.search(template[None, :], 1, allow=np.array([face_id], dtype=np.int64))[0]
            if not hits or hits[0][0] != face_id or hits[0][1] < 0.98:
                wrong += 1
    return [f"{wrong} vectors do not hold their face's template"] if wrong else []


def _crops_match(lethe: Lethe, data: Path) -> list[str]:
    problems = []
    faces = {int(f) for f in lethe.catalog.face_ids()}
    on_disk = lethe.crops.face_ids_on_disk()
    if faces - on_disk:
        problems.append(f"{len(faces - on_disk)} faces without a crop")
    if on_disk - faces:
        problems.append(f"{len(on_disk - faces)} crops without a face")
    sources = lethe.catalog.face_source_ids(sorted(faces & on_disk))
    unreadable = 0
    for face_id, source_id in sources.items():
        try:
            lethe.crops.read(face_id, source_id=source_id)
        except Exception:
            unreadable += 1
    if unreadable:
        problems.append(f"{unreadable} crops cannot be opened")
    # milvus-lite's own temporary files (manifest, schema: metadata, no vectors) are its business:
    # replaced at its next write. The byte search of an erasure still reads them.
    lite = data / "index" / "milvus.db"
    leftovers = [
        str(p.relative_to(data))
        for p in data.rglob("*")
        if p.is_file() and p.name.endswith(".tmp") and not p.is_relative_to(lite)
    ]
    leftovers += [str(p.relative_to(data)) for p in data.rglob("*.journal") if p.is_file()]
    if leftovers:
        problems.append(f"left over: {leftovers[:5]}")
    return problems


def _erasure_holds(lethe: Lethe, data: Path, expected: Expected) -> list[str]:
    with lethe.catalog.session() as session:
        jobs = session.scalars(sql_select(ErasureJobRow.state)).all()
    if not jobs:
        return []  # killed before the plan was committed: nothing was erased (yet)
    problems = []
    still = set(lethe.catalog.face_ids().tolist()) & set(expected.erased)
    if still:
        problems.append(f"{len(still)} erased faces still in the catalog")
    if set(lethe.index.ids().tolist()) & set(expected.erased):
        problems.append("erased faces still in the index")
    if any(lethe.crops.path(f).exists() for f in expected.erased):
        problems.append("crops of erased faces still on disk")
    found = occurrences(data, expected.erased_bytes)
    if found:
        problems.append(f"bytes of erased faces found: {found[:3]}")
    return problems


# -- trials --------------------------------------------------------------------------------------

#: settings(data folder) -> the Settings fields (besides data_dir) both processes use for it.
SettingsFor = Callable[[Path], dict[str, object]]
#: copy(base data folder, new folder) -> the copy's data folder (the catalog copied too).
Copier = Callable[[Path, Path], Path]


@dataclass(slots=True)
class Setup:
    operation: Operation
    base: Path
    settings: SettingsFor
    copy: Copier
    expected: Expected
    events: list[str]  # the persistence events of an uninterrupted run, in order
    seconds: float  # how long that run's operation took


@dataclass(slots=True)
class Trial:
    outcome: Outcome
    after_kill: list[str]  # broken invariants once the engine reopened
    after_rerun: list[str]  # ... once the operation was run again to the end
    second: Outcome | None = None  # a second kill, during the restart (recovery included)


def open_engine(data: Path, settings: SettingsFor) -> Lethe:
    return Lethe(Settings(data_dir=data, **settings(data)))  # type: ignore[arg-type]


def prepare(operation: Operation, base: Path, workdir: Path, settings: SettingsFor, copy: Copier) -> Setup:
    """Run the operation once uninterrupted (in a child, as the trials do): what it must leave,
    its persistence events and its duration."""
    data = copy(base, workdir)
    with open_engine(data, settings) as lethe:
        before = catalog_images(lethe)
        doomed = erased_bytes(lethe, operation.faces) if operation.op == "erase" else {}
    calibration = run_child(operation, data, settings(data)).calibration
    assert calibration is not None
    with open_engine(data, settings) as lethe:
        final = catalog_images(lethe)
        kind = str(lethe.index.stats().get("kind"))
        expected = Expected(operation.op, before, final, list(operation.faces), doomed, kind)
        problems = check(lethe, data, expected, finished=True)
    if problems:
        raise RuntimeError(f"the uninterrupted {operation.op} already breaks invariants: {problems}")
    return Setup(operation, base, settings, copy, expected, calibration["labels"], calibration["seconds"])


def trial(
    setup: Setup,
    workdir: Path,
    *,
    kill_at: int | None = None,
    delay: float | None = None,
    second_kill_at: int | None = None,
) -> Trial:
    """Copy the base folder, kill the operation at one point, reopen and check, finish and check.
    ``second_kill_at``: restart the operation in a child first and kill it again before that
    persistence event, counted from the open (so the recovery the open does can be hit too)."""
    data = setup.copy(setup.base, workdir)
    outcome = run_child(setup.operation, data, setup.settings(data), kill_at=kill_at, delay=delay)
    second = None
    if second_kill_at is not None:
        second = run_child(
            setup.operation, data, setup.settings(data), kill_at=second_kill_at, arm_before_open=True
        )
    try:
        with open_engine(data, setup.settings) as lethe:
            after_kill = check(lethe, data, setup.expected, finished=False)
            setup.operation.finish(lethe)
    except Exception as exc:  # noqa: BLE001 - any failure to reopen or to finish is a finding
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        at = " < ".join(f"{Path(f.filename).stem}:{f.lineno} {f.name}" for f in reversed(frames))
        return Trial(outcome, [f"after the kill: {type(exc).__name__}: {exc} (at {at})"], [], second)
    with open_engine(data, setup.settings) as lethe:
        after_rerun = check(lethe, data, setup.expected, finished=True)
    return Trial(outcome, after_kill, after_rerun, second)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        sys.exit("usage: crash_harness.py child DATA OP [...] (the parent side is a library)")
