"""The studio's browser tests' parts: Debian's chromium, axe-core from npm, an inspector of
pages (axe findings, CSP reports, screenshots) and signing in."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.processes import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
# Test-only npm packages (axe-core), installed here by the first run; gitignored.
NODE_DIR = REPO / ".cache" / "test-node"
AXE_VERSION = "4.14.1"
SCREENSHOTS = REPO / ".cache" / "screenshots"
WIDTHS = (1280, 390)

ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "studio-admin-password"
USER_PASSWORD = "studio-user-password"


def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("REELFORGE_TEST_NO_SKIPS"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return CHROMIUM


def axe_script() -> str:
    """axe-core's browser build, from the npm package (never committed)."""
    script = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core for the accessibility checks")
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(NODE_DIR),
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script.read_text()


def make_user(studio: ServerProcess, email: str) -> None:
    """A plain user, made by the admin through the API."""
    with httpx.Client(base_url=studio.base_url) as client:
        signed = client.post(
            "/api/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        token = signed.json()["data"]["access_token"]
        answer = client.post(
            "/api/admin/users",
            json={"email": email, "password": USER_PASSWORD},
            headers={"authorization": f"Bearer {token}"},
        )
        assert answer.status_code in (201, 409), answer.text


@dataclass
class Inspector:
    """Looks at every page: axe-core's serious and critical findings, CSP reports, screenshots."""

    axe: str
    problems: list[str] = field(default_factory=list)
    shot: list[Path] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def console(message: Any) -> None:
            # A failed fetch is reported by the test that makes it; the rest is a defect.
            if "Content Security Policy" in message.text or (
                message.type == "error" and "Failed to load resource" not in message.text
            ):
                self.problems.append(f"console {message.type} on {page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: self.problems.append(f"page error {page.url}: {error}"))

    def look(self, page: Page, name: str) -> None:
        original = page.viewport_size
        for width in WIDTHS:
            screen = 900 if width > 600 else 844
            page.set_viewport_size({"width": width, "height": screen})
            page.evaluate("() => window.scrollTo(0, 0)")
            page.wait_for_timeout(150)  # layout settles after a resize (not an assertion)
            # The whole page in one viewport, so fixed bars sit at its bottom as on a screen
            # (a full-page capture of a short viewport leaves them mid-page).
            height = page.evaluate("() => document.documentElement.scrollHeight")
            page.set_viewport_size({"width": width, "height": max(screen, height)})
            page.wait_for_timeout(100)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            path = SCREENSHOTS / f"{name}-{width}.png"
            page.screenshot(path=str(path))
            self.shot.append(path)
            self._axe(page, f"{name} at {width} px")
        if original:
            page.set_viewport_size(original)

    def _axe(self, page: Page, where: str) -> None:
        if not page.evaluate("() => Boolean(window.axe)"):
            # Through the DevTools protocol, which the page's CSP does not govern.
            page.evaluate(self.axe)
        results = page.evaluate(
            "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
        )
        for violation in results:
            if violation["impact"] in ("serious", "critical"):
                targets = [n["target"] for n in violation["nodes"]][:3]
                self.problems.append(
                    f"axe {violation['impact']} on {where}: {violation['id']} "
                    f"({violation['help']}) at {targets}"
                )

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def signed_in(
    browser: Browser, studio: ServerProcess, inspector: Inspector, email: str, password: str
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=studio.base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    inspector.watch(page)
    page.goto("/")
    page.wait_for_url("**/login?next=/")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{studio.base_url}/")
    return context, page
