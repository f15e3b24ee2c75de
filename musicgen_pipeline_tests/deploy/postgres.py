"""A throwaway PostgreSQL cluster for tests: `initdb` into a temporary folder, started on a free port.

Debian's `postgresql` package (installed by `make postgres`) provides the binaries under
/usr/lib/postgresql/<version>/bin. `initdb` refuses to run as root, so as root the cluster belongs to
the `postgres` system user the package creates. The cluster listens on 127.0.0.1 only, with password
authentication over TCP (the DAGSTER_PG_PASSWORD path a deployment uses), and is stopped (immediate
shutdown) and removed when the context exits, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "dagster"
PASSWORD = "dagster-test-password"
DATABASE = "dagster"


def postgres_bin_dir() -> Path | None:
    """Folder holding initdb/pg_ctl/postgres: PATH first, then Debian's versioned folders (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name),
        reverse=True,
    )
    return versions[0].parent if versions else None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if postgres_bin_dir() is None:
        return (
            "PostgreSQL server binaries not found (run `make postgres` as root: apt-get install postgresql)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own the cluster (initdb refuses root)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str
    password: str
    database: str
    folder: Path

    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.prod.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_cluster(timeout: float = 60.0) -> Iterator[Cluster]:
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="musicgen-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (root, sockets, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    started = False
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(root / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        started = True
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            check=True,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
        yield Cluster("127.0.0.1", port, USER, PASSWORD, DATABASE, root)
    finally:
        if started:
            subprocess.run(
                _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=timeout,
            )
        shutil.rmtree(root, ignore_errors=True)
