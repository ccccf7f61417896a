"""The API docs pages work offline: Swagger UI at /docs and ReDoc at /redoc load their JS and CSS
from the API itself (the fastapi-offline package's copies), never from a CDN."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

ASSETS = {
    "/docs/assets/swagger-ui-bundle.js": "text/javascript",
    "/docs/assets/swagger-ui.css": "text/css",
    "/docs/assets/redoc.standalone.js": "text/javascript",
    "/docs/assets/favicon.png": "image/png",
}


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_docs_pages_name_only_assets_the_api_serves(server: str, page_path: str) -> None:
    html = httpx.get(f"{server}{page_path}", timeout=10)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    # The browser itself refuses anything from elsewhere (ReDoc's sidebar logo is on a CDN).
    csp = html.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src 'self' data:" in csp, csp
    urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html.text) + re.findall(r"url: '([^']+)'", html.text)
    assert urls, html.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page_path} loads {url} from elsewhere"


def test_docs_assets_answer_with_their_types(server: str) -> None:
    for path, kind in ASSETS.items():
        r = httpx.get(f"{server}{path}", timeout=10)
        assert r.status_code == 200, path
        assert r.headers["content-type"].split(";")[0] == kind, (path, r.headers["content-type"])
        assert len(r.content) > 1000, path


def _offline(page: Page) -> list[str]:
    """Abort every request to a host other than the server's: the network of a closed site."""
    tried: list[str] = []

    def handler(route: Route) -> None:
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            tried.append(route.request.url)
            route.abort()

    page.context.route("**/*", handler)
    return tried


def test_swagger_ui_renders_offline(page: Page) -> None:
    tried = _offline(page)
    page.goto("/docs")
    post_edits = page.locator('.opblock-post .opblock-summary-path[data-path="/v1/edits"]')
    expect(post_edits).to_be_visible()
    expect(page.locator('.opblock-get .opblock-summary-path[data-path="/v1/edits/{job_id}"]')).to_be_visible()
    assert tried == [], f"/docs tried to reach {tried}"


def test_redoc_renders_offline(page: Page) -> None:
    tried = _offline(page)
    page.goto("/redoc")
    expect(page.locator("h1")).to_contain_text("diffeditor")
    # The operation's own section, with its method and path.
    section = page.locator('[data-section-id^="tag/"][data-section-id*="operation/"]').first
    expect(section).to_be_attached()
    expect(page.get_by_role("heading", name="Submit an edit")).to_be_visible()
    expect(page.get_by_text("/v1/edits", exact=True).first).to_be_attached()
    assert tried == [], f"/redoc tried to reach {tried}"
