"""The emulator's state directory: everything it held is there again after a restart."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.jobs import Renderer
from reelforge.emulator.render import RenderedAssets, RenderSpec
from reelforge.emulator.service import Emulator
from reelforge.emulator.state import STATE_FILE, StateDirBusy, StateFile, read_ledger
from reelforge.emulator.store import Job
from tests.emulator.helpers import API_KEY, cached_render, make_settings
from tests.emulator.test_emulator_http import data_url, image, wait_done
from tests.support.webhooks import receiving

pytestmark = pytest.mark.anyio

PROMPT = "a lighthouse on a cliff"
VARIANTS = ("video", "thumbnail", "spritesheet")


def must_not_render(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
    raise AssertionError(f"rendered again: {spec.prompt!r}")


@asynccontextmanager
async def opened(
    state_dir: Path, renderer: Renderer = cached_render, **settings: Any
) -> AsyncIterator[tuple[Emulator, httpx2.AsyncClient]]:
    """An emulator on `state_dir` and plain HTTP to it; closed (as a process would end) after."""
    app = create_emulator_app(make_settings(state_dir=state_dir, **settings), renderer=renderer)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://e",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as http:
            yield app.state.emulator, http
    finally:
        app.state.emulator.close()


async def job_where(emulator: Emulator, video_id: str, condition: Callable[[Job], bool]) -> Job:
    with anyio.fail_after(60):
        while True:
            job = emulator.store.get(video_id)
            assert job is not None
            if condition(job):
                return job
            await anyio.sleep(0.02)


async def contents(http: httpx2.AsyncClient, video_id: str) -> dict[str, bytes]:
    found = {}
    for variant in VARIANTS:
        response = await http.get(f"/v1/videos/{video_id}/content", params={"variant": variant})
        assert response.status_code == 200, response.text
        found[variant] = response.content
    return found


async def test_a_reopened_state_has_every_job_ledger_row_character_and_asset(
    tmp_path: Path,
) -> None:
    reference = image(720, 1280)
    async with opened(tmp_path) as (emulator, http):
        created = await http.post(
            "/v1/videos",
            json={"prompt": PROMPT, "input_reference": {"image_url": data_url(reference)}},
        )
        source = await wait_done(http, created.json()["id"])
        assert source["status"] == "completed"
        # Failed jobs never render, yet carry their source's whole render spec.
        remix = await http.post(f"/v1/videos/{source['id']}/remix", json={"prompt": "x [[fail]]"})
        extension = await http.post(
            "/v1/videos/extensions",
            json={"prompt": "dusk [[fail]]", "video": {"id": source["id"]}, "seconds": "4"},
        )
        for answer in (remix, extension):
            assert (await wait_done(http, answer.json()["id"]))["status"] == "failed"
        assets = await contents(http, source["id"])
        character = await http.post(
            "/v1/videos/characters",
            data={"name": "Keeper"},
            files={"video": ("v.mp4", assets["video"], "video/mp4")},
        )
        clock = await http.post("/_emulator/clock", json={"advance_seconds": 30})
        assert clock.status_code == 200
        listed = (await http.get("/v1/videos", params={"order": "asc"})).json()
        ledger = (await http.get("/_emulator/ledger")).json()
        specs = {video["id"]: emulator.store.get(video["id"]).spec for video in listed["data"]}
        offset = emulator.clock.offset

    async with opened(tmp_path, renderer=must_not_render) as (emulator, http):
        assert (await http.get("/v1/videos", params={"order": "asc"})).json() == listed
        assert (await http.get("/_emulator/ledger")).json() == ledger
        assert {video_id: emulator.store.get(video_id).spec for video_id in specs} == specs
        assert specs[source["id"]].reference_image == reference
        assert await contents(http, source["id"]) == assets
        assert emulator.clock.offset == offset
        found = await http.get(f"/v1/videos/characters/{character.json()['id']}")
        assert found.json() == character.json()
        # The uploaded bytes still name their video: an edit finds its source by them.
        edit = await http.post(
            "/v1/videos/edits",
            data={"prompt": "now at night [[fail]]"},
            files={"video": ("v.mp4", assets["video"], "video/mp4")},
        )
        assert edit.status_code == 200, edit.text
        assert edit.json()["remixed_from_video_id"] == source["id"]
        # Creation order goes on where it stopped.
        newest = (await http.get("/v1/videos", params={"limit": 1})).json()["data"][0]
        assert newest["id"] == edit.json()["id"]


async def test_a_rendered_job_in_flight_resumes_on_its_wall_clock_without_rendering_again(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as (emulator, http):
        video = (await http.post("/v1/videos", json={"prompt": f"{PROMPT} [[latency=6]]"})).json()
        # Rendered, stored and recorded as such (the digest is written with the record).
        job = await job_where(emulator, video["id"], lambda job: bool(job.asset_sha256))
        before = (await http.get(f"/v1/videos/{video['id']}")).json()
        started_at, spec = job.started_at, job.spec
        assert before["status"] == "in_progress"

    async with opened(tmp_path, renderer=must_not_render) as (emulator, http):
        after = (await http.get(f"/v1/videos/{video['id']}")).json()
        assert after["status"] in ("in_progress", "completed")
        assert after["progress"] >= before["progress"]
        resumed = emulator.store.get(video["id"])
        assert resumed is not None
        assert resumed.started_at == started_at
        assert (await wait_done(http, video["id"]))["status"] == "completed"
        assert await contents(http, video["id"]) == _by_variant(cached_render(spec))
        rows = (await http.get("/_emulator/ledger")).json()["data"]
        assert [(row["id"], row["status"]) for row in rows] == [(video["id"], "completed")]


async def test_a_job_cut_off_mid_render_is_rendered_again_to_the_same_bytes(
    tmp_path: Path,
) -> None:
    release = threading.Event()

    def stuck(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
        assert progress is not None
        progress(0.5)
        release.wait(30)
        progress(1.0)  # the emulator has closed: this abandons the render
        raise AssertionError("a closed emulator's render went on")

    async with opened(tmp_path, renderer=stuck) as (emulator, http):
        video = (await http.post("/v1/videos", json={"prompt": PROMPT})).json()
        job = await job_where(emulator, video["id"], lambda job: job.render_fraction == 0.5)
        started_at, spec = job.started_at, job.spec
    release.set()

    async with opened(tmp_path) as (emulator, http):
        assert (await wait_done(http, video["id"]))["status"] == "completed"
        assert emulator.store.get(video["id"]).started_at == started_at
        assert await contents(http, video["id"]) == _by_variant(cached_render(spec))


async def test_deleted_and_evicted_jobs_stay_gone_with_their_ledger_rows(tmp_path: Path) -> None:
    async with opened(tmp_path, evict_after_seconds=0) as (_, http):
        reference = data_url(image(720, 1280))
        first = (
            await http.post(
                "/v1/videos", json={"prompt": PROMPT, "input_reference": {"image_url": reference}}
            )
        ).json()
        second = (await http.post("/v1/videos", json={"prompt": "a quiet harbour"})).json()
        for video in (first, second):
            assert (await wait_done(http, video["id"]))["status"] == "completed"
        assert (await http.delete(f"/v1/videos/{first['id']}")).status_code == 200
        await http.post("/_emulator/clock", json={"advance_seconds": 7200})

    async with opened(tmp_path) as (_, http):
        for video in (first, second):
            assert (await http.get(f"/v1/videos/{video['id']}")).status_code == 404
            assert not (tmp_path / "assets" / video["id"]).exists()
        rows = (await http.get("/_emulator/ledger")).json()["data"]
        assert [(row["deleted"], row["evicted"]) for row in rows] == [(True, False), (False, True)]
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        # The reference image went with the last job whose spec held it.
        assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)


async def test_reset_and_the_ledger_limit_reach_the_state_file(tmp_path: Path) -> None:
    async with opened(tmp_path, ledger_limit=2) as (_, http):
        ids = [
            (await http.post("/v1/videos", json={"prompt": f"x [[fail]] {n}"})).json()["id"]
            for n in range(3)
        ]
    async with opened(tmp_path, ledger_limit=2) as (_, http):
        rows = (await http.get("/_emulator/ledger")).json()["data"]
        assert [row["id"] for row in rows] == ids[1:]
        assert (await http.post("/_emulator/reset")).status_code == 200
    async with opened(tmp_path, ledger_limit=2) as (_, http):
        assert (await http.get("/_emulator/ledger")).json()["count"] == 0
        assert (await http.get("/v1/videos")).json()["data"] == []


def _by_variant(assets: RenderedAssets) -> dict[str, bytes]:
    return {variant: getattr(assets, variant) for variant in VARIANTS}


async def test_one_emulator_at_a_time_has_a_state_dir(tmp_path: Path) -> None:
    async with opened(tmp_path) as (_, http):
        failed = (await http.post("/v1/videos", json={"prompt": "x [[fail]]"})).json()
        with pytest.raises(StateDirBusy, match="in use"):
            create_emulator_app(make_settings(state_dir=tmp_path), renderer=cached_render)
        # Its ledger can still be read while it runs.
        assert [entry.id for entry in read_ledger(tmp_path)] == [failed["id"]]
    async with opened(tmp_path) as (_, http):
        assert (await http.get(f"/v1/videos/{failed['id']}")).status_code == 200


async def test_a_webhook_delivery_cut_off_by_a_restart_goes_on_with_its_id(
    tmp_path: Path,
) -> None:
    with receiving() as receiver:
        receiver.statuses = [500, 500]
        # The third attempt would come a minute later: the restart falls in that wait.
        first = {"webhook_url": receiver.url, "webhook_retry_delays": [0.05, 60, 60]}
        async with opened(tmp_path, **first) as (_, http):
            failed = (await http.post("/v1/videos", json={"prompt": "x [[fail]]"})).json()
            with anyio.fail_after(30):
                while len(await _attempts(http)) < 2:
                    await anyio.sleep(0.02)
        assert len(receiver.webhook_ids()) == 2

        again = {"webhook_url": receiver.url, "webhook_retry_delays": [0.05, 0.05, 0.05]}
        async with opened(tmp_path, **again) as (_, http):
            with anyio.fail_after(30):
                while len(await _attempts(http)) < 3:
                    await anyio.sleep(0.02)
            (delivery,) = (await http.get("/_emulator/webhooks")).json()["data"]
    assert delivery["state"] == "delivered"
    assert delivery["video_id"] == failed["id"]
    assert len(set(receiver.webhook_ids())) == 1  # the same webhook-id every time
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # the same event


async def test_a_job_finished_before_its_event_was_prepared_gets_it_after_a_restart(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as (_, http):
        failed = (await http.post("/v1/videos", json={"prompt": "x [[fail]]"})).json()
        assert (await wait_done(http, failed["id"]))["status"] == "failed"
    # The process died between recording the job's end and preparing its event.
    state = StateFile(tmp_path)
    (job,) = state.load().jobs
    assert job.notified  # with no webhook URL, there was nothing to send
    job.notified = False
    state.save(job, None)
    state.close()

    with receiving() as receiver:
        async with opened(tmp_path, webhook_url=receiver.url) as (emulator, _):
            with anyio.fail_after(30):
                while not receiver.received:
                    await anyio.sleep(0.02)
            assert emulator.store.get(failed["id"]).notified
        ((_, body),) = receiver.received
    assert json.loads(body)["data"] == {"id": failed["id"]}
    assert json.loads(body)["type"] == "video.failed"


async def _attempts(http: httpx2.AsyncClient) -> list[Any]:
    deliveries = (await http.get("/_emulator/webhooks")).json()["data"]
    return [attempt for delivery in deliveries for attempt in delivery["attempts"]]
