"""The emulator's parts on their own: tags, ranges, form keys, seeds, storage and eviction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.bodies import unflatten
from reelforge.emulator.downloads import ByteRange, Unsatisfiable, parse_range
from reelforge.emulator.errors import EmulatorError
from reelforge.emulator.faults import parse_tags
from reelforge.emulator.render import render
from reelforge.emulator.requests import derive_seed
from tests.emulator.helpers import API_KEY, cached_render, make_settings

PROMPT = "a calm ocean at sunset"


def test_tags_are_parsed_and_stripped() -> None:
    tags = parse_tags(
        "[[latency=2.5]] a fox [[fail]] in snow [[ttl=60]] [[slow-download]] [[truncate=0.1]]"
        " [[429=3]] [[late-create=4]] [[no-webhook]]"
    )
    assert tags.text == "a fox in snow"
    assert tags.latency_seconds == 2.5
    assert tags.fail_code == "video_generation_failed"
    assert tags.ttl_seconds == 60
    assert tags.slow_download_bps == 64 * 1024
    assert tags.truncate_fraction == 0.1
    assert (tags.error_status, tags.error_count) == (429, 3)
    assert tags.late_create_seconds == 4
    assert tags.no_webhook is True
    assert parse_tags("[[5xx]] x").error_status == 500
    assert parse_tags("[[503=2]] x").error_count == 2
    assert parse_tags("[[moderation]] x").fail_code == "moderation_blocked"
    assert parse_tags("[[moderation=create]] x").moderation_at_create is True


def test_unknown_tags_stay_in_the_prompt() -> None:
    tags = parse_tags("a [[wiki link]] and [[404]] and [[Fail]]")
    assert tags.text == "a [[wiki link]] and [[404]] and [[Fail]]"
    assert tags.names == ()


@pytest.mark.parametrize(
    "prompt",
    ["[[latency=-1]] x", "[[latency=nan]] x", "[[ttl=0]] x", "[[429=0]] x", "[[latency]] x"],
)
def test_bad_tag_values_are_400(prompt: str) -> None:
    with pytest.raises(EmulatorError) as caught:
        parse_tags(prompt)
    assert (caught.value.status, caught.value.param) == (400, "prompt")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=5-", ByteRange(5, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-1000", ByteRange(0, 99)),
        ("bytes=90-1000", ByteRange(90, 99)),
        ("bytes=9-3", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_range_parsing(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_unflatten_form_keys() -> None:
    fields = unflatten(
        [
            ("prompt", "p"),
            ("input_reference[image_url]", "data:x"),
            ("characters[][id]", "char_a"),
            ("characters[][id]", "char_b"),
            ("tags[]", "1"),
            ("tags[]", "2"),
            ("odd[", "kept"),
        ]
    )
    assert fields == {
        "prompt": "p",
        "input_reference": {"image_url": "data:x"},
        "characters": [{"id": "char_a"}, {"id": "char_b"}],
        "tags": ["1", "2"],
        "odd[": "kept",
    }


def test_seeds_depend_on_every_part_of_the_request() -> None:
    base = derive_seed(0, "create", "sora-2", "a fox", "720x1280", "4", None)
    assert base == derive_seed(0, "create", "sora-2", "a fox", "720x1280", "4", None)
    assert 0 <= base < 2**63
    for changed in (
        derive_seed(1, "create", "sora-2", "a fox", "720x1280", "4", None),
        derive_seed(0, "create", "sora-2-pro", "a fox", "720x1280", "4", None),
        derive_seed(0, "create", "sora-2", "a cat", "720x1280", "4", None),
        derive_seed(0, "create", "sora-2", "a fox", "1280x720", "4", None),
        derive_seed(0, "create", "sora-2", "a fox", "720x1280", "8", None),
        derive_seed(0, "create", "sora-2", "a fox", "720x1280", "4", "abc"),
    ):
        assert changed != base


async def _render_once(seed: int, prompt: str = PROMPT) -> bytes:
    """Create, wait and download on a fresh emulator with the uncached real renderer."""
    app = create_emulator_app(make_settings(seed=seed), renderer=render)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://e",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:
            video = (await http.post("/v1/videos", json={"prompt": prompt})).json()
            with anyio.fail_after(60):
                while (await http.get(f"/v1/videos/{video['id']}")).json()["status"] != (
                    "completed"
                ):
                    await anyio.sleep(0.02)
            return (await http.get(f"/v1/videos/{video['id']}/content")).content
    finally:
        app.state.emulator.close()


@pytest.mark.anyio
async def test_the_same_request_renders_the_same_bytes() -> None:
    first = await _render_once(seed=0)
    assert first == await _render_once(seed=0)
    assert first != await _render_once(seed=1)


@pytest.mark.anyio
async def test_tags_do_not_change_the_picture() -> None:
    app = create_emulator_app(make_settings(), renderer=cached_render)
    try:
        emulator = app.state.emulator
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://e",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:
            plain = (await http.post("/v1/videos", json={"prompt": PROMPT})).json()
            tagged = (await http.post("/v1/videos", json={"prompt": f"{PROMPT} [[ttl=9]]"})).json()
        assert emulator.store.get(plain["id"]).spec == emulator.store.get(tagged["id"]).spec
    finally:
        app.state.emulator.close()


async def _complete(http: httpx2.AsyncClient, prompt: str = PROMPT) -> dict[str, Any]:
    video: dict[str, Any] = (await http.post("/v1/videos", json={"prompt": prompt})).json()
    with anyio.fail_after(30):
        while video["status"] != "completed":
            await anyio.sleep(0.01)
            video = (await http.get(f"/v1/videos/{video['id']}")).json()
    return video


@pytest.mark.anyio
async def test_assets_can_live_in_a_directory(tmp_path: Path) -> None:
    app = create_emulator_app(make_settings(asset_dir=tmp_path / "assets"), renderer=cached_render)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://e",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:
            video = await _complete(http)
            folder = tmp_path / "assets" / video["id"]
            assert sorted(path.name for path in folder.iterdir()) == [
                "spritesheet.jpg",
                "thumbnail.webp",
                "video.mp4",
            ]
            content = await http.get(f"/v1/videos/{video['id']}/content")
            assert content.content == (folder / "video.mp4").read_bytes()
            assert app.state.emulator.assets.bytes_held() == 0
            await http.delete(f"/v1/videos/{video['id']}")
            assert not folder.exists()
    finally:
        app.state.emulator.close()


@pytest.mark.anyio
async def test_the_janitor_evicts_on_its_own() -> None:
    settings = make_settings(janitor_interval_seconds=0.05, evict_after_seconds=0)
    app = create_emulator_app(settings, renderer=cached_render)
    try:
        emulator = app.state.emulator
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://e",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:
            video = await _complete(http)
            failed = (await http.post("/v1/videos", json={"prompt": "x [[fail]]"})).json()
            with anyio.fail_after(5):
                while emulator.store.get(failed["id"]).status != "failed":
                    await anyio.sleep(0.01)
            emulator.clock.advance(3600)  # no sweep here: the janitor must notice by itself
            with anyio.fail_after(5):
                while emulator.store.get(video["id"]) or emulator.store.get(failed["id"]):
                    await anyio.sleep(0.02)
            assert emulator.assets.bytes_held() == 0
            assert (await http.get(f"/v1/videos/{video['id']}")).status_code == 404
    finally:
        app.state.emulator.close()


def test_close_is_idempotent_and_final() -> None:
    app = create_emulator_app(make_settings(), renderer=cached_render)
    emulator = app.state.emulator
    emulator.close()
    emulator.close()
    with pytest.raises(RuntimeError, match="closed"):
        emulator.engine.submit(None)


def test_the_docs_cover_every_setting_tag_route_and_control() -> None:
    from reelforge.emulator.app import create_emulator_app
    from reelforge.emulator.settings import ENV_PREFIX, ROUTE_NAMES, EmulatorSettings

    docs = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text()
    table = [line for line in docs.splitlines() if line.startswith("| `")]
    for name in EmulatorSettings.model_fields:
        assert any(f"`{ENV_PREFIX}{name.upper()}`" in line for line in table), name
    for tag in ("latency", "fail", "moderation", "429", "5xx", "late-create", "slow-download"):
        assert f"[[{tag}" in docs, tag
    for tag in ("truncate", "ttl", "no-webhook"):
        assert f"`[[{tag}" in docs, tag
    for route in ROUTE_NAMES:
        assert f"`{route}`" in docs, route
    app = create_emulator_app(make_settings(), renderer=cached_render)
    try:
        for route in app.routes:
            path = getattr(route, "path", "")
            if path.startswith("/_emulator"):
                assert f"`{path}`" in docs or f"{path}`" in docs, path
    finally:
        app.state.emulator.close()
