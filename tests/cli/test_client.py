"""The client commands end to end against a live `reelforge serve` with the emulator."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import av
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from reelforge.cli.exits import ExitCode
from reelforge.cli.main import app
from reelforge.emulator.server import free_port
from tests.support.server import ADMIN_EMAIL, ADMIN_PASSWORD, Server, clean_environment

SIZE = "1280x720"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "client.json"


@pytest.fixture
def cli(server: Server, api_key: str, config_file: Path) -> CliRunner:
    """A runner whose server and key come from the environment, as a script sets them."""
    return CliRunner(
        env={
            "REELFORGE_URL": server.url,
            "REELFORGE_API_KEY": api_key,
            "REELFORGE_CONFIG": str(config_file),
        }
    )


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(app, list(args))


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def created(cli: CliRunner, prompt: str, *extra: str) -> str:
    return ok(invoke(cli, "generate", prompt, "--size", SIZE, *extra)).strip().splitlines()[-1]


def frames_of(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert container.duration is not None
        return frames, container.duration / av.time_base


def test_login_saves_the_server_and_a_new_key_for_its_owner_only(
    server: Server, config_file: Path
) -> None:
    runner = CliRunner(env={"REELFORGE_CONFIG": str(config_file)})
    logged = runner.invoke(
        app,
        ["login", "--url", server.url, "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
    )
    listed = runner.invoke(app, ["list", "--json"])

    ok(logged)
    assert f"logged in to {server.url} as {ADMIN_EMAIL}" in logged.stderr
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    saved = json.loads(config_file.read_text())
    assert saved["url"] == server.url
    assert saved["api_key"].startswith("rf_")
    assert isinstance(json.loads(ok(listed)), list)


def test_login_with_a_wrong_password_saves_nothing(server: Server, config_file: Path) -> None:
    runner = CliRunner(env={"REELFORGE_CONFIG": str(config_file)})
    result = runner.invoke(
        app, ["login", "--url", server.url, "--email", ADMIN_EMAIL, "--password", "wrong"]
    )

    assert result.exit_code == ExitCode.AUTH
    assert "invalid_credentials" in result.stderr
    assert not config_file.exists()


def test_generate_wait_output_gives_a_playable_video(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "fox.mp4"

    video_id = created(cli, "a red fox in the snow", "--seconds", "4", "--output", str(target))

    frames, duration = frames_of(target)
    assert frames > 0
    assert duration == pytest.approx(4, abs=0.5)
    # Not a terminal here: one plain progress line per change, ending completed.
    lines = [line for line in invoke(cli, "show", video_id).stdout.splitlines()]
    assert any(line.startswith("status:") and "completed (100%)" in line for line in lines)


def test_generate_prints_the_id_and_show_list_find_it(cli: CliRunner) -> None:
    video_id = created(cli, "a lighthouse at dusk")

    shown = json.loads(ok(invoke(cli, "show", video_id, "--json")))
    listed = json.loads(ok(invoke(cli, "list", "--json", "--limit", "100")))
    table = ok(invoke(cli, "list", "--search", "lighthouse"))
    details = ok(invoke(cli, "show", video_id))

    assert video_id.startswith("video_")
    assert shown["id"] == video_id
    assert shown["prompt"] == "a lighthouse at dusk"
    assert shown["size"] == SIZE
    assert video_id in [video["id"] for video in listed]
    # Not a terminal: tab-separated lines under a header.
    header, *rows = table.splitlines()
    assert header.split("\t")[:3] == ["id", "status", "progress"]
    assert [row.split("\t")[0] for row in rows] == [video_id]
    assert rows[0].split("\t")[-1] == "a lighthouse at dusk"
    assert "prompt:        a lighthouse at dusk" in details


def test_plain_progress_lines_end_completed(cli: CliRunner) -> None:
    result = invoke(cli, "generate", "a paper boat", "--size", SIZE, "--wait")

    video_id = ok(result).strip()
    progress = [line for line in result.stderr.splitlines() if line.startswith(video_id)]
    assert progress[0] in (f"{video_id} queued 0%", f"{video_id} in_progress 0%")
    assert progress[-1] == f"{video_id} completed 100%"
    assert len(progress) == len(set(progress))


def test_estimate_prices_by_the_catalog(cli: CliRunner) -> None:
    four = json.loads(ok(invoke(cli, "estimate", "--size", SIZE, "--seconds", "4", "--json")))
    eight = ok(invoke(cli, "estimate", "--size", SIZE, "--seconds", "8"))

    assert four["seconds"] == "4"
    price = float(four["cost"])
    assert price > 0
    assert eight.strip() == f"emulator {four['model']} {SIZE} 8s: {price * 2:.2f} USD"


def test_remix_download_variants_and_delete(cli: CliRunner, tmp_path: Path) -> None:
    source = created(cli, "a blue whale", "--wait")

    remixed = ok(invoke(cli, "remix", source, "make it green", "--wait")).strip()
    shown = json.loads(ok(invoke(cli, "show", remixed, "--json")))
    thumbnail = Path(
        ok(
            invoke(
                cli, "download", remixed, "--variant", "thumbnail", "-o", str(tmp_path / "thumb")
            )
        ).strip()
    )
    default = Path(ok(invoke(cli, "download", source)).strip())
    deleted = invoke(cli, "delete", remixed)
    gone = invoke(cli, "show", remixed)

    assert shown["remixed_from_video_id"] == source
    assert shown["prompt"] == "make it green"
    with Image.open(thumbnail) as image:
        assert image.size[0] > 0
    assert default.name == f"{source}.mp4"
    assert frames_of(default)[0] > 0
    assert ok(deleted).strip() == f"{remixed} deleted"
    assert gone.exit_code == ExitCode.NOT_FOUND
    assert "not_found" in gone.stderr


def test_cancel_stops_a_pending_video(cli: CliRunner) -> None:
    video_id = created(cli, "a slow sunrise")

    result = invoke(cli, "cancel", video_id)
    waited = invoke(cli, "show", video_id, "--json")

    assert ok(result).strip() == f"{video_id} cancelled"
    shown = json.loads(ok(waited))
    assert (shown["status"], shown["error"]["code"]) == ("failed", "cancelled")


def test_generate_with_a_first_frame_image(cli: CliRunner, tmp_path: Path) -> None:
    image = tmp_path / "first.png"
    Image.new("RGB", (1280, 720), (200, 30, 30)).save(image)

    video_id = created(cli, "a red wall", "--image", str(image), "--wait")

    assert json.loads(ok(invoke(cli, "show", video_id, "--json")))["status"] == "completed"


def test_a_failed_video_exits_video_failed_with_its_reason(cli: CliRunner) -> None:
    result = invoke(cli, "generate", "something forbidden", "--size", SIZE, "--wait")

    assert result.exit_code == ExitCode.VIDEO_FAILED, result.stderr
    assert " failed: " in result.stderr


def test_waiting_past_the_timeout_exits_timeout(cli: CliRunner) -> None:
    result = invoke(cli, "generate", "a long wait", "--size", SIZE, "--wait", "--timeout", "0")

    assert result.exit_code == ExitCode.TIMEOUT, result.stderr
    assert "still queued after 0 s" in result.stderr


def test_a_rejected_value_exits_rejected_naming_the_field(cli: CliRunner) -> None:
    result = invoke(cli, "generate", "a cat", "--size", "3x3")

    assert result.exit_code == ExitCode.REJECTED
    assert "[size]" in result.stderr
    assert "720x1280" in result.stderr


def test_without_a_key_or_with_a_bad_one_exits_auth(server: Server, config_file: Path) -> None:
    runner = CliRunner(env={"REELFORGE_URL": server.url, "REELFORGE_CONFIG": str(config_file)})

    missing = runner.invoke(app, ["list"])
    wrong = runner.invoke(app, ["list", "--api-key", "rf_not_a_real_key_at_all"])

    assert missing.exit_code == ExitCode.AUTH
    assert "reelforge login" in missing.stderr
    assert wrong.exit_code == ExitCode.AUTH
    assert "unauthorized" in wrong.stderr


def test_an_unreachable_server_exits_unavailable(config_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    runner = CliRunner(env={"REELFORGE_CONFIG": str(config_file)})

    result = runner.invoke(app, ["show", "video_x", "--url", url, "--api-key", "rf_x"])

    assert result.exit_code == ExitCode.UNAVAILABLE
    assert f"cannot reach {url}" in result.stderr


def test_the_installed_command_with_the_environment(
    server: Server, api_key: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.mp4"
    env = clean_environment() | {
        "REELFORGE_URL": server.url,
        "REELFORGE_API_KEY": api_key,
        "REELFORGE_CONFIG": str(tmp_path / "none.json"),
    }

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reelforge.cli.main",
            "generate",
            "a kite",
            "--size",
            SIZE,
            "--output",
            str(target),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    video_id = done.stdout.strip()
    assert f"{video_id} completed 100%" in done.stderr.splitlines()
    assert "\x1b[" not in done.stderr
    assert frames_of(target)[0] > 0
