"""Every fault control, from settings, from prompt tags and at runtime, seen through the SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import openai
import pytest
from fastapi import FastAPI
from openai.types import Video

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer
from reelforge.emulator.service import Emulator
from reelforge.emulator.settings import EmulatorSettings
from tests.emulator.helpers import API_KEY, SDK, cached_render, make_settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

PROMPT = "a calm ocean at sunset"


@pytest.fixture
def app_with(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build extra emulator apps with given settings; closed at teardown."""
    apps: list[FastAPI] = []

    def build(**overrides: Any) -> FastAPI:
        app = create_emulator_app(make_settings(**overrides), renderer=cached_render)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.state.emulator.close()


def async_sdk(app: FastAPI, **options: Any) -> SDK:
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app))
    return SDK(
        openai.AsyncOpenAI(
            base_url="http://emulator.test/v1", api_key=API_KEY, http_client=http, **options
        )
    )


# --- job outcomes ---------------------------------------------------------------------------


async def test_latency_keeps_jobs_in_progress_with_rising_progress(sdk: SDK) -> None:
    video: Video = await sdk("videos.create", prompt=f"{PROMPT} [[latency=1]]")
    seen: list[int] = []
    with anyio.fail_after(10):
        while video.status != "completed":
            video = await sdk("videos.retrieve", video.id)
            if video.status == "in_progress":
                seen.append(video.progress)
            await anyio.sleep(0.05)
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert 0 < seen[0] < 99
    assert seen[-1] > seen[0]


async def test_latency_from_settings(app_with: Any) -> None:
    sdk = async_sdk(app_with(latency_seconds=0.3))
    started = time.monotonic()
    video: Video = await sdk("videos.create_and_poll", prompt=PROMPT)
    assert video.status == "completed"
    assert time.monotonic() - started >= 0.3


async def test_failure_rate_one_fails_every_job(app_with: Any) -> None:
    sdk = async_sdk(app_with(failure_rate=1.0))
    video: Video = await sdk("videos.create_and_poll", prompt=PROMPT)
    assert video.status == "failed"
    assert video.error is not None
    assert video.error.code == "video_generation_failed"


async def test_failure_rate_is_seeded(app_with: Any) -> None:
    async def outcomes(seed: int) -> list[str]:
        sdk = async_sdk(app_with(failure_rate=0.5, seed=seed))
        statuses = []
        for _ in range(12):
            video = await sdk("videos.create_and_poll", prompt=PROMPT)
            statuses.append(video.status)
        return statuses

    first = await outcomes(7)
    assert first == await outcomes(7)
    assert {"completed", "failed"} == set(first)


async def test_moderation_words_fail_the_job(app_with: Any) -> None:
    sdk = async_sdk(app_with(moderation_words=["dragon", "Bad Word"]))
    blocked: Video = await sdk("videos.create_and_poll", prompt="A DRAGON over the sea")
    assert blocked.status == "failed"
    assert blocked.error is not None
    assert blocked.error.code == "moderation_blocked"
    assert blocked.error.message == "Your request was blocked by our moderation system."
    assert (await sdk("videos.create_and_poll", prompt="dragonfly")).status == "completed"
    phrase: Video = await sdk("videos.create_and_poll", prompt="say bad word twice")
    assert phrase.status == "failed"


async def test_fail_and_moderation_tags(sdk: SDK) -> None:
    custom: Video = await sdk("videos.create_and_poll", prompt=f"{PROMPT} [[fail=internal_error]]")
    assert custom.error is not None
    assert custom.error.code == "internal_error"
    moderated: Video = await sdk("videos.create_and_poll", prompt=f"{PROMPT} [[moderation]]")
    assert moderated.error is not None
    assert moderated.error.code == "moderation_blocked"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk("videos.create", prompt=f"{PROMPT} [[moderation=create]]")
    assert caught.value.code == "moderation_blocked"


async def test_a_failing_render_fails_the_job(app_with: Any) -> None:
    def broken(spec: Any, progress: Any = None) -> Any:
        raise RuntimeError("boom")

    app = create_emulator_app(make_settings(), renderer=broken)
    try:
        video: Video = await async_sdk(app)("videos.create_and_poll", prompt=PROMPT)
        assert video.status == "failed"
        assert video.error is not None
        assert video.error.code == "internal_error"
    finally:
        app.state.emulator.close()


# --- rate limits and server errors -----------------------------------------------------------


async def test_tagged_429_is_retried_by_the_sdk(sdk: SDK, emulator: Emulator) -> None:
    video: Video = await sdk("videos.create", prompt=f"{PROMPT} [[429=2]]")
    assert video.status in ("queued", "in_progress", "completed")
    assert emulator.stats.snapshot()["statuses"]["videos.create"] == {"429": 2, "200": 1}
    assert len(list(emulator.store.ledger_rows())) == 1  # rejected attempts created nothing


async def test_tagged_429_carries_retry_after(sdk: SDK) -> None:
    no_retries = sdk.with_options(max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        await no_retries("videos.create", prompt=f"{PROMPT} [[429=3]]")
    headers = caught.value.response.headers
    assert headers["retry-after-ms"] == "10"
    assert headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


async def test_tagged_5xx_bursts(sdk: SDK, emulator: Emulator) -> None:
    video: Video = await sdk("videos.create", prompt=f"{PROMPT} [[5xx=2]]")
    assert video.id
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.with_options(max_retries=0)("videos.create", prompt=f"{PROMPT} [[503=1]]")
    assert caught.value.status_code == 503
    assert caught.value.type == "server_error"
    counts = emulator.stats.snapshot()["statuses"]["videos.create"]
    assert counts == {"500": 2, "200": 1, "503": 1}


async def test_configured_rate_limit(app_with: Any) -> None:
    sdk = async_sdk(app_with(rate_limit_rpm=2), max_retries=0)
    await sdk("videos.create", prompt=PROMPT)
    await sdk("videos.create", prompt=PROMPT)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk("videos.create", prompt=PROMPT)
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) > 0
    assert headers["x-ratelimit-limit-requests"] == "2"
    await sdk("videos.list")  # reads are not rate limited


async def test_runtime_error_burst_on_chosen_routes(sdk: SDK, emulator: Emulator) -> None:
    video: Video = await sdk("videos.create", prompt=PROMPT)
    emulator.faults.update(
        {"error_burst": 2, "error_status": 502, "error_routes": ["videos.retrieve"]}
    )
    assert (await sdk("videos.list")).data  # not covered by the burst
    fetched: Video = await sdk("videos.retrieve", video.id)  # two 502s, retried by the SDK
    assert fetched.id == video.id
    assert emulator.stats.snapshot()["statuses"]["videos.retrieve"] == {"502": 2, "200": 1}
    assert emulator.faults.snapshot()["error_burst_remaining"] == 0


async def test_runtime_faults_over_http(sdk: SDK) -> None:
    client = sdk.client
    # The control surface sits beside /v1: "/../" leaves the SDK's base path.
    changed = await sdk(
        "put", "/../_emulator/faults", body={"error_burst": 1, "error_status": 429}, cast_to=object
    )
    assert changed["error_burst"] == 1
    with pytest.raises(openai.RateLimitError):
        await SDK(client.with_options(max_retries=0))("videos.list")
    await sdk("videos.list")


# --- creates answered too late -----------------------------------------------------------------


async def test_late_create_times_out_but_the_job_exists(
    live: RunningServer, emulator: Emulator
) -> None:
    async with openai.AsyncOpenAI(
        base_url=live.base_url, api_key=API_KEY, max_retries=0, timeout=0.3
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.videos.create(prompt=f"{PROMPT} [[late-create=1]]")
        rows = list(emulator.store.ledger_rows())
        assert len(rows) == 1
        listed = await client.videos.list()
        assert [video.id for video in listed.data] == [rows[0]["id"]]


async def test_late_create_from_runtime_faults(sdk: SDK, emulator: Emulator) -> None:
    emulator.faults.update({"late_create_seconds": 0.3})
    started = time.monotonic()
    await sdk("videos.create", prompt=PROMPT)
    assert time.monotonic() - started >= 0.3


# --- downloads -------------------------------------------------------------------------------


async def test_slow_download(sdk: SDK) -> None:
    video: Video = await sdk("videos.create_and_poll", prompt=f"{PROMPT} [[slow-download=40000]]")
    started = time.monotonic()
    data = await sdk.download(video.id, variant="thumbnail")
    elapsed = time.monotonic() - started
    assert data[:4] == b"RIFF"
    assert elapsed >= 0.5 * len(data) / 40000


def test_truncated_download_breaks_the_connection(live: RunningServer, emulator: Emulator) -> None:
    with httpx2.Client(base_url=live.root, headers={"authorization": f"Bearer {API_KEY}"}) as http:
        created = http.post("/v1/videos", json={"prompt": f"{PROMPT} [[truncate=0.25]]"}).json()
        deadline = time.monotonic() + 30
        while http.get(f"/v1/videos/{created['id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(httpx2.RemoteProtocolError):
            http.get(f"/v1/videos/{created['id']}/content")
        with http.stream("GET", f"/v1/videos/{created['id']}/content") as response:
            promised = int(response.headers["content-length"])
            received: list[int] = []

            def drain() -> None:
                received.extend(len(chunk) for chunk in response.iter_raw())

            with pytest.raises(httpx2.RemoteProtocolError):
                drain()
            assert sum(received) == int(promised * 0.25)
    with (
        openai.OpenAI(base_url=live.base_url, api_key=API_KEY, max_retries=1) as client,
        pytest.raises(openai.APIConnectionError),
    ):
        client.videos.download_content(created["id"])


async def test_runtime_truncation_and_throttle_apply_to_every_download(
    live: RunningServer, emulator: Emulator
) -> None:
    async with httpx2.AsyncClient(
        base_url=live.root, headers={"authorization": f"Bearer {API_KEY}"}
    ) as http:
        video = (await http.post("/v1/videos", json={"prompt": PROMPT})).json()
        with anyio.fail_after(30):
            while (await http.get(f"/v1/videos/{video['id']}")).json()["status"] != "completed":
                await anyio.sleep(0.01)
        url = f"/v1/videos/{video['id']}/content"
        intact = await http.get(url)
        emulator.faults.update({"truncate_downloads": 0.5})
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get(url)
        emulator.faults.update({"truncate_downloads": None, "slow_download_bps": 1_000_000})
        started = time.monotonic()
        slow = await http.get(url)
        assert slow.content == intact.content
        assert time.monotonic() - started >= 0.5 * len(intact.content) / 1_000_000


# --- settings --------------------------------------------------------------------------------


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_EMULATOR_API_KEY", "sk-env")
    monkeypatch.setenv("REELFORGE_EMULATOR_MODERATION_WORDS", "dragon, knight ,")
    monkeypatch.setenv("REELFORGE_EMULATOR_ERROR_ROUTES", "videos.retrieve")
    monkeypatch.setenv("REELFORGE_EMULATOR_WEBHOOK_RETRY_DELAYS", "1,2.5")
    monkeypatch.setenv("REELFORGE_EMULATOR_LATENCY_SECONDS", "2.5")
    settings = EmulatorSettings(_env_file=None)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk-env"
    assert settings.moderation_words == ["dragon", "knight"]
    assert settings.error_routes == ["videos.retrieve"]
    assert settings.webhook_retry_delays == [1.0, 2.5]
    assert settings.latency_seconds == 2.5
    assert settings.ttl_seconds == 3600
    assert settings.render_concurrency == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"webhook_secret": "nope"},
        {"webhook_secret": "whsec_!!!"},
        {"webhook_url": "ftp://x"},
        {"error_status": 404},
        {"error_routes": ["videos.nope"]},
        {"failure_rate": 1.5},
        {"webhook_retry_delays": [-1]},
    ],
)
def test_settings_reject_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        make_settings(**overrides)


async def test_render_concurrency_bounds_parallel_renders(app_with: Any) -> None:
    import threading

    active = 0
    peak = 0
    lock = threading.Lock()

    def slow_render(spec: Any, progress: Any = None) -> Any:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.3)
        with lock:
            active -= 1
        return cached_render(spec, progress)

    app = create_emulator_app(make_settings(render_concurrency=2), renderer=slow_render)
    try:
        sdk = async_sdk(app)
        videos = [await sdk("videos.create", prompt=PROMPT) for _ in range(5)]
        queued = [video.status for video in videos].count("queued")
        assert queued >= 2  # beyond the pool, jobs wait their turn
        for video in videos:
            assert (await sdk("videos.poll", video.id)).status == "completed"
        assert peak == 2
    finally:
        app.state.emulator.close()
