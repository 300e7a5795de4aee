"""The studio in a real browser against a live `reelforge serve`: a user's whole journey, the
admin's dashboard, and another user who sees none of it; every page checked by axe-core."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import httpx
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    SCREENSHOTS,
    USER_PASSWORD,
    Inspector,
    make_user,
    signed_in,
)
from tests.support.processes import ServerProcess

# The emulator holds the video in progress this long, so there is progress to watch.
SLOW = "[[latency=5]]"
FINISH_MS = 90_000


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def _wait_finished(page: Page) -> None:
    expect(page.locator("#video-root")).to_have_attribute(
        "data-status", "completed", timeout=FINISH_MS
    )


def _playable(page: Page, selector: str, seconds: float) -> None:
    """The player's duration is the video's, and a seek lands where it was asked to."""
    page.wait_for_function(
        f"() => document.querySelector('{selector}').readyState >= 1", timeout=30_000
    )
    duration = page.evaluate(f"() => document.querySelector('{selector}').duration")
    assert abs(duration - seconds) < 0.25, duration
    landed = page.evaluate(
        f"""() => new Promise((resolve) => {{
            const video = document.querySelector('{selector}');
            video.addEventListener('seeked', () => resolve(video.currentTime), {{once: true}});
            video.currentTime = {seconds / 2};
        }})"""
    )
    assert abs(landed - seconds / 2) < 0.2, landed


def test_a_user_creates_watches_plays_remixes_compares_and_deletes(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    make_user(studio, "maker@example.com")
    context, page = signed_in(browser, studio, inspector, "maker@example.com", USER_PASSWORD)
    inspector.look(page, "gallery-empty")

    page.click("text=New video")
    page.wait_for_url("**/create")
    prompt = f"A lighthouse on a cliff in a storm at dusk, slow dolly-in {SLOW}"
    page.fill("#prompt", prompt)
    expect(page.locator("#prompt-count")).to_have_text(f"{len(prompt)} / 1000")
    page.select_option("#model", "sora-2-pro")
    page.select_option("#size", "1280x720")
    page.select_option("#seconds", "4")
    # 4 s of 720p on sora-2-pro at $0.30 a second, confirmed by POST /api/videos/estimate.
    expect(page.locator("#estimate")).to_have_text("$1.20")
    # A first frame of the wrong size is refused before anything is sent, and says why.
    page.set_input_files(
        "#input_reference",
        files=[{"name": "frame.png", "mimeType": "image/png", "buffer": _png(640, 480)}],
    )
    expect(page.locator("#reference-preview")).to_be_visible()
    expect(page.locator('[data-error="input_reference"]')).to_contain_text(
        "This image is 640\u00d7480, but the video is 1280\u00d7720"
    )
    expect(page.locator("#create-submit")).to_be_disabled()
    inspector.look(page, "create-reference-refused")
    page.click("#reference-clear")
    expect(page.locator("#create-submit")).to_be_enabled()
    inspector.look(page, "create")

    page.click("#create-submit")
    page.wait_for_url(re.compile(r".*/videos/video_[0-9a-f]+$"))
    video_id = page.url.rsplit("/", 1)[1]
    page.evaluate("() => { window.__sameDocument = true; }")
    expect(page.locator("#video-root")).to_have_attribute(
        "data-status", re.compile("queued|in_progress")
    )
    inspector.look(page, "video-running")
    _wait_finished(page)
    expect(page.locator("#video-root")).to_have_attribute("data-progress", "100")
    # It got there live: the page was never reloaded.
    assert page.evaluate("() => window.__sameDocument === true")
    _playable(page, "#player", 4.0)
    for variant in ("video", "thumbnail", "spritesheet"):
        expect(page.locator(f'#downloads [data-variant="{variant}"]')).to_be_visible()
    page.reload()
    inspector.look(page, "video-completed")

    page.click('[data-action="remix"]')
    page.fill("#remix-prompt", "The same shot at night under a full moon")
    inspector.look(page, "remix-dialog")
    with page.expect_navigation():
        page.click("#remix-form button[type=submit]")
    remix_id = page.url.rsplit("/", 1)[1]
    assert remix_id != video_id
    _wait_finished(page)
    page.reload()
    expect(page.locator(".tree a.node")).to_have_count(2)

    page.select_option("#compare-b", video_id)
    page.click("form[action='/compare'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/compare\?a=.*&b=.*"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare video')].every(v => v.readyState >= 2)",
        timeout=30_000,
    )
    page.click("#sync-play")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare video')].every(v => v.currentTime > 0.5)",
        timeout=30_000,
    )
    page.click("#sync-play")
    times = page.evaluate(
        "() => [...document.querySelectorAll('#compare video')].map(v => v.currentTime)"
    )
    assert abs(times[0] - times[1]) < 0.3, times
    inspector.look(page, "compare")

    page.goto("/")
    expect(page.locator(".card")).to_have_count(2)
    # Scrubbing: the pointer's place across a card picks a frame of its spritesheet.
    media = page.locator(f'.card[data-video-id="{video_id}"] .media')
    box = media.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    expect(media).to_have_class(re.compile("scrubbing"))
    late = media.locator(".scrub").evaluate("e => e.style.backgroundPosition")
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2)
    early = media.locator(".scrub").evaluate("e => e.style.backgroundPosition")
    assert late != early
    inspector.look(page, "gallery")
    page.fill("#q", "full moon")
    page.press("#q", "Enter")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(f'.card[data-video-id="{remix_id}"]')).to_have_count(1)
    page.select_option("#status", "failed")
    expect(page.locator(".card")).to_have_count(0)
    expect(page.get_by_text("Nothing matches")).to_be_visible()
    page.goto("/")
    page.goto(f"/videos/{remix_id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click('[data-action="delete"]')
    page.wait_for_url(f"{studio.base_url}/")
    expect(page.locator(".card")).to_have_count(1)
    expect(page.locator(f'.card[data-video-id="{remix_id}"]')).to_have_count(0)
    assert page.request.get(f"/api/videos/{remix_id}").status == 404

    page.goto("/account")
    page.fill("#key-name", "laptop")
    page.click("#key-form button[type=submit]")
    expect(page.locator("#new-key-value")).to_have_text(re.compile(r"^rf_"))
    key = page.locator("#new-key-value").inner_text()
    with httpx.Client(base_url=studio.base_url) as client:
        mine = client.get("/api/videos", headers={"authorization": f"Bearer {key}"}).json()
    assert [v["id"] for v in mine["data"]] == [video_id]
    page.fill("#current_password", "not my password")
    page.fill("#new_password", "a-brand-new-password")
    page.click("#password-form button[type=submit]")
    expect(page.locator('#password-form [data-error="current_password"]')).to_contain_text(
        "Does not match your current password"
    )
    inspector.look(page, "account")
    page.click('[data-action="logout"]')
    page.wait_for_url("**/login")
    inspector.look(page, "login")
    page.goto(f"/videos/{video_id}")
    page.wait_for_url(re.compile(r".*/login\?next=/videos/video_[0-9a-f]+$"))
    context.close()
    inspector.assert_clean()


def test_the_admin_sees_charts_and_edits_a_quota(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    make_user(studio, "quota@example.com")
    with httpx.Client(base_url=studio.base_url) as client:
        token = client.post(
            "/api/auth/token", json={"email": "quota@example.com", "password": USER_PASSWORD}
        ).json()["data"]["access_token"]
        key = client.post(
            "/api/keys", json={"name": "cron job"}, headers={"authorization": f"Bearer {token}"}
        ).json()["data"]
    context, page = signed_in(browser, studio, inspector, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto("/admin")
    expect(page.locator('[data-chart="videos"] svg')).to_be_visible()
    expect(page.locator('[data-chart="spend"] svg path.spend-line')).to_have_count(1)
    row = page.locator('tr[data-email="quota@example.com"]')
    row.locator('input[name="max_videos"]').fill("7")
    row.locator('input[name="monthly_budget"]').fill("12.50")
    row.locator("button[type=submit]").click()
    expect(page.locator("#toast")).to_contain_text("Saved: 7 videos")
    inspector.look(page, "admin")
    # The job inspector: one video's job and its events timeline.
    page.locator("#jobs-h").scroll_into_view_if_needed()
    first_job = page.locator('a[href^="/admin/jobs/video_"]').first
    if first_job.count():
        first_job.click()
        page.wait_for_url(re.compile(r".*/admin/jobs/video_[0-9a-f]+$"))
        inspector.look(page, "admin-job")
        page.go_back()

    # Any user's key, revoked by the admin: it stops working at once.
    key_row = page.locator(f'tr[data-key-id="{key["id"]}"]')
    expect(key_row).to_contain_text("quota@example.com")
    page.once("dialog", lambda dialog: dialog.accept())
    key_row.locator('[data-action="revoke-key"]').click()
    expect(key_row.locator(".pill")).to_have_text("Revoked")
    with httpx.Client(base_url=studio.base_url) as client:
        refused = client.get("/api/me", headers={"authorization": f"Bearer {key['key']}"})
    assert refused.status_code == 401

    user_id = row.get_attribute("data-user-id")
    usage = page.request.get(f"/api/admin/users/{user_id}/usage").json()["data"]
    assert (usage["max_videos"], usage["monthly_budget"]) == (7, "12.50")
    context.close()
    inspector.assert_clean()


def test_another_user_sees_none_of_it(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    make_user(studio, "owner@example.com")
    make_user(studio, "stranger@example.com")
    with httpx.Client(base_url=studio.base_url) as client:
        token = client.post(
            "/api/auth/token", json={"email": "owner@example.com", "password": USER_PASSWORD}
        ).json()["data"]["access_token"]
        created = client.post(
            "/api/videos",
            json={"prompt": "A private garden at dawn", "seconds": "4"},
            headers={"authorization": f"Bearer {token}"},
        ).json()["data"]

    context, page = signed_in(browser, studio, inspector, "stranger@example.com", USER_PASSWORD)
    expect(page.locator(".card")).to_have_count(0)
    expect(page.get_by_text("A private garden at dawn")).to_have_count(0)
    for path in (
        f"/videos/{created['id']}",
        f"/compare?a={created['id']}&b={created['id']}",
        f"/create?from={created['id']}",
        "/admin",
        f"/admin/jobs/{created['id']}",
    ):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 404, path
        expect(page.get_by_text("A private garden at dawn")).to_have_count(0)
    inspector.look(page, "not-found")
    context.close()
    inspector.assert_clean()


def test_docs_render_offline_under_the_csp(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    context = browser.new_context(base_url=studio.base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    inspector.watch(page)
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(studio.base_url) else outside.append(request.url)
        ),
    )

    page.goto("/docs")

    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    assert outside == []
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"docs-{width}.png"))
    context.close()
    inspector.assert_clean()


def test_the_studio_installs_and_shows_its_offline_page(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    make_user(studio, "traveller@example.com")
    context, page = signed_in(browser, studio, inspector, "traveller@example.com", USER_PASSWORD)
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == f"{studio.base_url}/"
    # The manifest a browser installs from: the one the page links, with its icons.
    manifest = page.request.get(page.locator('link[rel="manifest"]').get_attribute("href") or "")
    assert manifest.json()["display"] == "standalone"

    context.set_offline(True)
    page.goto("/account")
    expect(page.get_by_role("heading", name="You're offline")).to_be_visible()
    # Its stylesheet came from the worker's cache: the page is styled, not bare HTML.
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != (
        "rgba(0, 0, 0, 0)"
    )
    inspector.look(page, "offline")
    context.set_offline(False)
    page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    context.close()
    # Offline, the page's own script can't load: that refusal is the point, not a defect.
    inspector.problems = [p for p in inspector.problems if "offline" not in p]
    inspector.assert_clean()


def test_a_failure_shows_up_live_with_its_reason(
    browser: Browser, studio: ServerProcess, inspector: Inspector
) -> None:
    make_user(studio, "unlucky@example.com")
    context, page = signed_in(browser, studio, inspector, "unlucky@example.com", USER_PASSWORD)
    created = page.request.post(
        "/api/videos",
        data={"prompt": f"A crowded beach {SLOW} [[moderation]]", "seconds": "4"},
        headers={
            "x-csrf-token": next(
                c["value"] for c in context.cookies() if c["name"] == "reelforge_csrf"
            )
        },
    ).json()["data"]

    page.goto(f"/videos/{created['id']}")
    expect(page.locator("#video-root")).to_have_attribute(
        "data-status", re.compile("queued|in_progress")
    )
    page.evaluate("() => { window.__sameDocument = true; }")

    root = page.locator("#video-root")
    expect(root).to_have_attribute("data-status", "failed", timeout=FINISH_MS)
    expect(page.locator("#waiting")).to_contain_text("blocked by our moderation system")
    expect(page.locator("#waiting")).to_contain_text("moderation_blocked")
    expect(page.locator('[data-action="cancel"]')).to_be_hidden()
    # The timeline, re-read live, dates its events today (the API gives Unix seconds).
    expect(page.locator("#timeline .when").last).to_contain_text(str(datetime.now(UTC).year))
    assert page.evaluate("() => window.__sameDocument === true")
    inspector.look(page, "video-failed")
    context.close()
    inspector.assert_clean()
