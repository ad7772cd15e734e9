"""End to end, in a real browser: an operator adds a credential and a client, then refreshes its token.

Headless Debian Chromium (``/usr/bin/chromium``, installed by ``scripts/test.sh``) driven
by Playwright for Python, against pytest-django's ``live_server`` (a real HTTP server in
a thread of this process), a real OAuth2 endpoint (:class:`StubTokenEndpoint`) and tokens in a
django-redis cache on a real redis-server, so the live server's thread and this test
share them. Playwright's own browser downloads are never used (``playwright install`` is
not run): a missing Chromium FAILS the test, it is not skipped.

The screenshot of the status page is kept as a test artifact:
``test-artifacts/admin-token-status.png`` (git-ignored).

While the browser runs, this thread makes no database query: Playwright's sync API runs
an event loop in this thread, and Django refuses ORM calls from a thread with a running
loop (``SynchronousOnlyOperation``). Everything the test reads from the database it reads
before the browser starts or after it closes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django.contrib.admin
import pytest
from django.contrib.auth.models import User
from django.test.utils import override_settings

from requestforge_django import get_token_manager
from requestforge_django.testing import StubTokenEndpoint
from tests.admin.conftest import KEY_A
from tests.django.settings_factory import requestforge_setting

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "test-artifacts" / "admin-token-status.png"
ADMIN_STATIC_ROOT = Path(django.contrib.admin.__file__).resolve().parent / "static"
PASSWORD = "correct-horse-battery-staple"
STATUS_PATH = "/admin/requestforge_django/clientdefinition/token-status/"


@pytest.fixture(scope="session")
def admin_static_files() -> Iterator[None]:
    """Serve the admin's CSS and JavaScript from the live server, so the browser renders the real admin.

    The test settings have no ``django.contrib.staticfiles``; the live server then serves
    ``STATIC_ROOT`` under ``STATIC_URL``, which it reads once, when it starts. Hence a
    session fixture, listed before ``live_server`` so it is set up first.
    """
    with override_settings(STATIC_URL="/static/", STATIC_ROOT=str(ADMIN_STATIC_ROOT)):
        yield


def launch_chromium(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does: apt-get install -y chromium)", pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.mark.slow
def test_add_a_credential_and_a_client_then_refresh_its_token(
    admin_static_files: None, live_server: Any, settings: Any, redis_cache: str, token_server: StubTokenEndpoint
) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail('playwright is not installed: pip install -e ".[redis,celery,crypto]" --group dev', pytrace=False)
    server = token_server
    # A settings client and pipeline too: the page lists them next to the database client.
    settings.REQUESTFORGE = requestforge_setting(server, redis_cache, KEY_PREFIX="rf-browser", ENCRYPTION_KEYS=[KEY_A])
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    base = live_server.url
    pages: dict[str, str] = {}

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(20_000)
            expect.set_options(timeout=20_000)

            # Log in.
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page).to_have_url(f"{base}/admin/")

            # A credential: the secret is typed once and never shown again.
            page.goto(f"{base}/admin/requestforge_django/credential/add/")
            page.fill("#id_name", "erp")
            page.fill("#id_client_id", server.client_id)
            page.fill("#id_client_secret", server.client_secret)
            page.fill("#id_allowed_origins", server.url)  # where its secret may go: the local token endpoint
            page.click("input[name=_save]")
            expect(page.locator(".messagelist .success")).to_contain_text("erp")
            expect(page.locator("#result_list td.field-client_secret_state")).to_have_text("set")
            pages["credential list"] = page.content()
            page.click("#result_list a:text-is('erp')")
            expect(page.locator("#id_client_secret")).to_have_value("")
            pages["credential page"] = page.content()

            # A client that uses it, against the local token endpoint.
            page.goto(f"{base}/admin/requestforge_django/clientdefinition/add/")
            page.fill("#id_name", "erp-api")
            page.fill("#id_base_url", server.url)
            page.select_option("#id_auth_type", "client_credentials")
            page.select_option("#id_credential", label="erp")
            page.fill("#id_token_url", server.token_url)
            page.click("input[name=_save]")
            expect(page.locator(".messagelist .success")).to_contain_text("erp-api")
            expect(page.locator("#result_list td.field-token_status")).to_have_text("not cached")

            # The token status page, from the change list's link.
            page.click(".object-tools a:text-is('Token status')")
            expect(page).to_have_url(base + STATUS_PATH)
            row = page.locator("#token-client-erp-api")
            expect(row.locator("td.source")).to_have_text("database")
            expect(row.locator("td.state")).to_have_text("not cached")
            expect(page.locator("#token-client-billing td.source")).to_have_text("settings")

            row.get_by_role("button", name="Refresh now erp-api").click()
            expect(page.locator(".messagelist .success")).to_contain_text("Refreshed erp-api: new token ")
            row = page.locator("#token-client-erp-api")
            expect(row.locator("td.state")).to_have_text("cached")
            expect(row.locator("td.expires-in")).to_have_text(re.compile(r"^expires in (59 min \d\d s|1 h 00 min)$"))
            expect(row.locator("td.token")).to_have_text(re.compile(r"^.{4}\*{4}$"))
            expect(row.locator("td.last-obtained")).not_to_have_text("-")
            pages["status page"] = page.content()

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()

    assert SCREENSHOT.stat().st_size > 10_000
    assert server.stats().token_requests == 1  # one click, one fetch
    token = get_token_manager("erp-api").peek_token()
    assert token is not None
    for name, html in pages.items():
        assert server.client_secret not in html, name
        assert token.access_token not in html, name
    assert token.access_token[:4] + "****" in pages["status page"]
