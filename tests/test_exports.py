"""Export files: formats, safe names, and content a user can read."""

import csv
import io
import json
import uuid
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader

from streams.services.exports import ExportData, ExportPost, ExportUser, UnknownFormatError, write_export

WHEN = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
USER = ExportUser("../../etc/passwd", "zoë", "zoe@example.com", "Zoë Ünicode 🚀", "I like #streams", WHEN)
POSTS = [ExportPost("p2", "Second post, with a comma", WHEN), ExportPost("p1", "First post 🚀", WHEN)]


@pytest.mark.parametrize("format", ["csv", "json", "pdf"])
def test_the_file_name_comes_from_the_export_id_only(tmp_path, format: str) -> None:
    export_id = uuid.uuid4()
    path = write_export(tmp_path / "exports", export_id, format, ExportData(USER, POSTS))
    assert path == tmp_path / "exports" / f"export-{export_id.hex}.{format}"
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [path.name]


def test_json_holds_the_user_and_posts(tmp_path) -> None:
    path = write_export(tmp_path, uuid.uuid4(), "json", ExportData(USER, POSTS))
    document = json.loads(path.read_text())
    assert document["user"]["full_name"] == "Zoë Ünicode 🚀"
    assert [post["id"] for post in document["posts"]] == ["p2", "p1"]
    assert document["posts"][0]["created_at"] == "2026-11-22T09:00:00+00:00"


def test_csv_has_one_row_per_post_and_a_row_for_a_user_without_posts(tmp_path) -> None:
    rows = list(csv.DictReader(io.StringIO(write_export(tmp_path, uuid.uuid4(), "csv", ExportData(USER, POSTS)).read_text())))
    assert [(row["post_id"], row["content"]) for row in rows] == [("p2", "Second post, with a comma"), ("p1", "First post 🚀")]
    lonely = list(csv.DictReader(io.StringIO(write_export(tmp_path, uuid.uuid4(), "csv", ExportData(USER, [])).read_text())))
    assert [(row["username"], row["post_id"]) for row in lonely] == [("zoë", "")]


def test_pdf_is_a_readable_document_even_with_characters_outside_latin1(tmp_path) -> None:
    path = write_export(tmp_path, uuid.uuid4(), "pdf", ExportData(USER, POSTS))
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    assert "Data export for zoë" in text
    assert "Second post, with a comma" in text and "Posts (2)" in text


def test_an_unknown_format_writes_nothing(tmp_path) -> None:
    with pytest.raises(UnknownFormatError, match="'xlsx'"):
        write_export(tmp_path / "exports", uuid.uuid4(), "xlsx", ExportData(USER, POSTS))
    assert not (tmp_path / "exports").exists()
