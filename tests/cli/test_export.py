"""`reelforge export` and `import`: a live server's archive out, into a fresh installation."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from reelforge.cli.main import app
from tests.support.server import ADMIN_EMAIL, Server

SIZE = "1280x720"


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def archived(data_dir: Path) -> dict[str, dict[str, object]]:
    """Each archived video's row in an installation's SQLite database, by id."""
    with sqlite3.connect(data_dir / "reelforge.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "select * from videos where job_state = 'completed' and deleted_at is null"
        ).fetchall()
    return {row["id"]: dict(row) for row in rows}


@pytest.fixture(scope="module")
def made(server: Server, api_key: str) -> list[str]:
    """Two archived videos on the server, the second a remix of the first."""
    client = CliRunner(env={"REELFORGE_URL": server.url, "REELFORGE_API_KEY": api_key})
    first = ok(client.invoke(app, ["generate", "an old mill", "--size", SIZE, "--wait"])).strip()
    second = ok(client.invoke(app, ["remix", first, "in winter", "--wait"])).strip()
    return [first, second]


def on(data_dir: Path) -> CliRunner:
    return CliRunner(env={"REELFORGE_DATA_DIR": str(data_dir)})


def test_export_then_import_into_a_fresh_installation(
    server: Server, made: list[str], tmp_path: Path
) -> None:
    export = tmp_path / "export"
    fresh = tmp_path / "fresh"

    exported = ok(on(server.data_dir).invoke(app, ["export", str(export)]))
    ok(on(fresh).invoke(app, ["users", "create", ADMIN_EMAIL, "--password", "x" * 12]))
    imported = ok(on(fresh).invoke(app, ["import", str(export)]))
    again = ok(on(fresh).invoke(app, ["import", str(export)]))

    source = archived(server.data_dir)
    target = archived(fresh)
    assert set(made) <= set(source)
    assert f"exported {len(source)} videos" in exported
    assert f"imported {len(source)} videos" in imported
    assert f"imported 0 videos from {export} ({len(source)} already here)" in again
    assert set(target) == set(source)
    for video_id, row in source.items():
        copy = target[video_id]
        metadata = json.loads((export / "videos" / video_id / "metadata.json").read_text())
        assert metadata["prompt"] == row["prompt"] == copy["prompt"]
        assert metadata["provider"] == row["provider"]
        assert metadata["lineage"]["remixed_from_video_id"] == row["remixed_from_video_id"]
        assert copy["remixed_from_video_id"] == row["remixed_from_video_id"]
        for variant, ext in (("video", "mp4"), ("thumbnail", "webp"), ("spritesheet", "jpg")):
            digest = row[f"{variant}_sha256"]
            assert metadata["files"][variant]["sha256"] == digest
            assert sha256(export / "videos" / video_id / f"{variant}.{ext}") == digest
            assert copy[f"{variant}_sha256"] == digest
            stored = fresh / "objects" / str(copy[f"{variant}_key"])
            assert sha256(stored) == digest
    assert target[made[1]]["remixed_from_video_id"] == made[0]
    # Made and paid for on the other installation: here a zero `import` row each, and none
    # of them counts against the importing user's quota, budget or spend.
    with sqlite3.connect(fresh / "reelforge.db") as db:
        ledger = db.execute("select video_id, kind, amount from ledger").fetchall()
    assert sorted(ledger) == sorted((video_id, "import", 0) for video_id in source)
    usage = ok(on(fresh).invoke(app, ["quota", "show", ADMIN_EMAIL]))
    assert f"{ADMIN_EMAIL}: 0 of " in usage
    assert "spent 0.00 USD this month" in usage


def test_an_interrupted_export_resumes_where_it_stopped(
    server: Server, made: list[str], tmp_path: Path
) -> None:
    export = tmp_path / "export"
    ok(on(server.data_dir).invoke(app, ["export", str(export)]))
    total = len(archived(server.data_dir))
    # What a run killed inside the second video leaves: files, but no metadata yet.
    (export / "videos" / made[1] / "metadata.json").unlink()
    # And a damaged file in the first.
    (export / "videos" / made[0] / "thumbnail.webp").write_bytes(b"broken")

    resumed = ok(on(server.data_dir).invoke(app, ["export", str(export)]))

    assert f"exported 2 videos to {export} ({total - 2} already there)" in resumed
    thumbnail = export / "videos" / made[0] / "thumbnail.webp"
    assert sha256(thumbnail) == archived(server.data_dir)[made[0]]["thumbnail_sha256"]


def test_a_zip_export_round_trips_and_a_tampered_one_is_refused(
    server: Server, made: list[str], tmp_path: Path
) -> None:
    bundle = tmp_path / "all.zip"
    ok(on(server.data_dir).invoke(app, ["export", str(bundle), "--user", ADMIN_EMAIL]))
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as good, zipfile.ZipFile(tampered, "w") as bad:
        for item in good.infolist():
            data = good.read(item)
            if item.filename == f"videos/{made[0]}/video.mp4":
                data = data[:-10] + b"0123456789"
            bad.writestr(item, data)
    ok(
        on(tmp_path / "one").invoke(
            app, ["users", "create", "ops@example.com", "--password", "x" * 12]
        )
    )
    ok(
        on(tmp_path / "two").invoke(
            app, ["users", "create", "ops@example.com", "--password", "x" * 12]
        )
    )

    imported = ok(
        on(tmp_path / "one").invoke(app, ["import", str(bundle), "--user", "ops@example.com"])
    )
    refused = on(tmp_path / "two").invoke(
        app, ["import", str(tampered), "--user", "ops@example.com"]
    )

    assert not (tmp_path / "all.zip.partial").exists()
    assert f"imported {len(archived(server.data_dir))} videos" in imported
    assert refused.exit_code == 1
    assert f"{made[0]}/video.mp4 does not match its sha256" in refused.stderr
    assert made[0] not in archived(tmp_path / "two")
