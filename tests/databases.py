"""Real databases for the tests: a SQLite file, or a private PostgreSQL server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server not installed: apt-get install postgresql (./dev test does this)")
    return found[-1].parent


class PostgresServer:
    """initdb + pg_ctl in a private folder, listening on 127.0.0.1 only; as root it runs as 'postgres'."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = pg_bin()
        self.data = Path(tempfile.mkdtemp(prefix="streams-pg-"))
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.data, "postgres", "postgres")

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pg(self, tool: str, *args: str) -> None:
        subprocess.run([*self.run_as, str(self.bin / tool), *args], check=True, capture_output=True, cwd=self.data)

    def start(self) -> None:
        self.pg("initdb", "-D", str(self.data / "db"), "-U", "streams", "--auth=trust", "-E", "UTF8")
        self.resume()

    def resume(self) -> None:
        """Start the server on the data it has."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off -c full_page_writes=off"
        self.pg("pg_ctl", "-D", str(self.data / "db"), "-l", str(self.data / "server.log"), "-o", options, "-w", "start")

    def halt(self) -> None:
        """Stop the server, closing every connection, and keep its data."""
        self.pg("pg_ctl", "-D", str(self.data / "db"), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.data, ignore_errors=True)

    def pid(self) -> int:
        """The postmaster's pid; the server's other processes are its children."""
        return int((self.data / "db" / "postmaster.pid").read_text().split()[0])

    def new_database(self) -> str:
        """A fresh, empty database, and its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"postgresql://streams@127.0.0.1:{self.port}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://streams@127.0.0.1:{self.port}/{name}"


def seed_users(url: str, *names: str, followers: dict[str, tuple[str, ...]] | None = None) -> None:
    """Migrate, then add users ``names`` (email name@example.com) and who follows whom."""
    from sqlalchemy.orm import Session

    from streams.db import migrate
    from streams.db.engine import sync_engine
    from streams.db.models import Follower, User

    migrate.upgrade(url)
    engine = sync_engine(url)
    with Session(engine) as session, session.begin():
        session.add_all(User(id=name, email=f"{name}@example.com", username=name) for name in names)
        session.flush()
        session.add_all(
            Follower(follower_id=follower, followed_id=followed)
            for followed, by in (followers or {}).items()
            for follower in by
        )
    engine.dispose()
