"""A throwaway PostgreSQL server for the tests (not part of Lethe).

:func:`server` starts one per test process on first use: ``initdb`` into a fresh folder under the
system temporary directory, ``pg_ctl start`` on a free 127.0.0.1 port with its unix socket in that
folder, a random password for the one (superuser) role. :func:`stop` (called when the pytest
session ends, and at exit) stops it and deletes the folder. With pytest-xdist every worker runs its
own server. PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user
(``runuser -u postgres --``), which owns the folder.

``LETHE_TEST_POSTGRES_URL`` (``postgresql://user:password@host:port/dbname``, a role that may
create databases) points the tests at an existing server instead; the databases they create there
are dropped at the end. Without either, :func:`server` raises :class:`Unavailable` and the
PostgreSQL tests skip with its reason.

The binaries are looked up on ``PATH`` (``pg_ctl``) and then in Debian's
``/usr/lib/postgresql/<version>/bin`` (``apt-get install postgresql``; ``.ci/run`` does it).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "LETHE_TEST_POSTGRES_URL"
RUN_AS = "postgres"  # PostgreSQL will not run as root
ROLE = "lethe"
#: Durability is pointless for a throwaway cluster; the rest keeps it small.
SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class Unavailable(RuntimeError):
    """No PostgreSQL server can be had: the message says why (the tests skip with it)."""


@dataclass
class Server:
    """A PostgreSQL server the tests may create databases on."""

    dsn: str  #: libpq URI of the maintenance database ``postgres``
    cluster_dir: Path | None = None  #: the data directory when this process runs the server
    bin_dir: Path | None = None
    _folder: Path | None = None
    #: key -> name of the databases made by :meth:`database`; names are unique to this process
    _names: dict[str, str] = field(default_factory=dict)
    _prefix: str = field(default_factory=lambda: f"lethe_{secrets.token_hex(3)}_")

    def url(self, database: str) -> str:
        """The database's URL as a user writes it (``postgresql://``; Lethe maps it to psycopg)."""
        parts = urlsplit(self.dsn)
        return urlunsplit(parts._replace(path="/" + quote(database)))

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            yield conn

    def database(self, key: str, *, copy_of: str | None = None) -> str:
        """URL of the database known by ``key``, made on first use: empty, or a copy of the
        database of ``copy_of`` (sessions still open there are ended: a template may have none)."""
        if key not in self._names:
            template = None if copy_of is None else self._names[copy_of]
            name = f"{self._prefix}{len(self._names)}"
            self._create(name, template=template)
            self._names[key] = name
        return self.url(self._names[key])

    def _create(self, name: str, *, template: str | None) -> None:
        with self.admin() as conn:
            if template is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (template,),
                )
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )

    def database_dir(self, name: str) -> Path | None:
        """The folder holding database ``name``'s files, written out first (a checkpoint), or
        None when this process does not run the server (it cannot see its files)."""
        if self.cluster_dir is None:
            return None
        with self.admin() as conn:
            row = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if row is None:
                raise KeyError(name)
            conn.execute("CHECKPOINT")
        return self.cluster_dir / "base" / str(row[0])

    def stop(self) -> None:
        if self.cluster_dir is None:  # someone else's server: drop what the tests made there
            with contextlib.suppress(psycopg.Error), self.admin() as conn:
                for name in self._names.values():
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
            self._names.clear()
            return
        assert self.bin_dir is not None and self._folder is not None
        _tool(self.bin_dir, "pg_ctl", "stop", "-D", str(self.cluster_dir), "-m", "immediate", check=False)
        shutil.rmtree(self._folder, ignore_errors=True)
        self.cluster_dir = None


_server: Server | None = None
_failure: str | None = None


def server() -> Server:
    """This process's server, started on first use; raises :class:`Unavailable` (every time) when
    there is none to be had."""
    global _server, _failure
    if _server is not None:
        return _server
    if _failure is not None:
        raise Unavailable(_failure)
    try:
        external = os.environ.get(ENV_URL)
        _server = Server(dsn=_libpq_uri(external)) if external else _start()
        with _server.admin():
            pass
    except (Unavailable, OSError, subprocess.SubprocessError, psycopg.Error) as exc:
        _server = None
        _failure = str(exc) if isinstance(exc, Unavailable) else f"PostgreSQL did not start: {exc}"
        raise Unavailable(_failure) from exc
    atexit.register(stop)
    return _server


def stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, or Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").is_file()]
    if not versions:
        return None
    return max(versions, key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])


def _libpq_uri(url: str) -> str:
    """Accept the SQLAlchemy spelling too (``postgresql+psycopg://``)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        raise Unavailable(
            f"PostgreSQL refuses to run as root and there is no {RUN_AS!r} user to run it as "
            "(apt-get install postgresql creates one)"
        ) from None
    return ["runuser", "-u", RUN_AS, "--"]


def _tool(bin_dir: Path, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one of the server's programs (as ``postgres`` when root); a failure is :class:`Unavailable`."""
    done = subprocess.run(
        [*_as_server_user(), str(bin_dir / name), *args], capture_output=True, text=True, timeout=120
    )
    if check and done.returncode:
        raise Unavailable(f"{name} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start() -> Server:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise Unavailable(
            "no PostgreSQL binaries (pg_ctl, initdb) on PATH or under /usr/lib/postgresql/*/bin: "
            f"apt-get install postgresql, or set {ENV_URL}"
        )
    prefix = _as_server_user()
    # Not pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="lethe-pg-"))
    try:
        if prefix:
            user = pwd.getpwnam(RUN_AS)
            os.chown(folder, user.pw_uid, user.pw_gid)
        password = secrets.token_hex(16)
        pwfile = folder / "pw"
        pwfile.write_text(password + "\n")
        if prefix:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        cluster = folder / "cluster"
        _tool(
            bin_dir,
            "initdb",
            "-D",
            str(cluster),
            "--username",
            ROLE,
            "--pwfile",
            str(pwfile),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        pwfile.unlink()
        options = " ".join(f"-c {k}={v}" for k, v in SERVER_OPTIONS.items())
        log = folder / "server.log"
        for attempt in range(5):  # another process may take the free port first: then try another
            port = _free_port()
            started = _tool(
                bin_dir,
                "pg_ctl",
                "start",
                "-D",
                str(cluster),
                "-w",
                "-l",
                str(log),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {folder} {options}",
                check=False,
            )
            if started.returncode == 0:
                break
            if attempt == 4:
                tail = log.read_text()[-2000:] if log.is_file() else started.stderr
                raise Unavailable(f"pg_ctl start failed: {tail}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    dsn = f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/postgres"
    return Server(dsn=dsn, cluster_dir=cluster, bin_dir=bin_dir, _folder=folder)
