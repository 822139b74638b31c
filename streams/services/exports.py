"""Data exports: a user's data and newest posts as CSV, JSON or PDF (fpdf2).

File names are built from the export's event id alone, never from text a user controls, and
files are written whole or not at all (written aside, then renamed into place), so a retried
export overwrites the same file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

from streams.errors import PermanentError


class UnknownFormatError(PermanentError):
    """The export format is not csv, json or pdf: permanent."""


@dataclass(frozen=True)
class ExportUser:
    id: str
    username: str
    email: str
    full_name: str | None
    bio: str | None
    created_at: datetime


@dataclass(frozen=True)
class ExportPost:
    id: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class ExportData:
    user: ExportUser
    posts: list[ExportPost]


def as_json(data: ExportData) -> bytes:
    def record(item: ExportUser | ExportPost) -> dict[str, str | None]:
        return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in vars(item).items()}

    return json.dumps({"user": record(data.user), "posts": [record(post) for post in data.posts]}, indent=2).encode()


def as_csv(data: ExportData) -> bytes:
    """One row per post, each with the user's fields; a user without posts still gets one row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["user_id", "username", "email", "full_name", "bio", "post_id", "post_created_at", "content"])
    user = data.user
    user_fields = [user.id, user.username, user.email, user.full_name or "", user.bio or ""]
    posts = [[post.id, post.created_at.isoformat(), post.content] for post in data.posts] or [["", "", ""]]
    writer.writerows(user_fields + post for post in posts)
    return out.getvalue().encode()


def latin1(text: str) -> str:
    """The PDF core fonts cover Latin-1; other characters show as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def as_pdf(data: ExportData) -> bytes:
    pdf = FPDF()
    pdf.set_title(latin1(f"Data export: {data.user.username}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, latin1(f"Data export for {data.user.username}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    for label, value in (("User id", data.user.id), ("Email", data.user.email), ("Name", data.user.full_name or ""),
                         ("Bio", data.user.bio or ""), ("Joined", data.user.created_at.isoformat())):
        pdf.multi_cell(0, 7, latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 9, f"Posts ({len(data.posts)})", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for post in data.posts:
        pdf.multi_cell(0, 6, latin1(f"{post.created_at:%Y-%m-%d %H:%M}  {post.content}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


FORMATS: dict[str, Callable[[ExportData], bytes]] = {"csv": as_csv, "json": as_json, "pdf": as_pdf}


def check_format(name: str) -> None:
    if name not in FORMATS:
        raise UnknownFormatError(f"unknown export format {name!r}; known: {', '.join(sorted(FORMATS))}")


def write_export(directory: Path, export_id: uuid.UUID, format: str, data: ExportData) -> Path:
    """Write the export file and return its path; the name comes from ``export_id`` only."""
    check_format(format)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"export-{uuid.UUID(str(export_id)).hex}.{format}"
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(FORMATS[format](data))
    os.replace(partial, path)
    return path
