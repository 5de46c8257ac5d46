"""The fake image page (§8): server-side __NEXT_DATA__ and the tag group its script renders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fake_civitai import FaultRule, display_name
from tests.fake_civitai.client import get

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
NEXT_DATA_RE = re.compile(r'<script id="__NEXT_DATA__" type="application/json">(.*?)</script>', re.S)


def next_data(html: str) -> dict:
    return json.loads(NEXT_DATA_RE.search(html).group(1))


def test_page_has_next_data(fake_civitai):
    ds = fake_civitai.dataset
    for iid in (ds.named["tags_showcase"], ds.named["nested_meta"], ds.named["bob_webm"]):
        img = ds.images[iid]
        r = get(f"{fake_civitai.base_url}/images/{iid}")
        assert r.status == 200 and r.header("Content-Type").startswith("text/html")
        data = next_data(r.text)["props"]["pageProps"]["trpcState"]["json"]["queries"][0]["state"]["data"]
        assert data["id"] == iid and data["url"] == img.uuid and data["width"] == img.width
        assert data["meta"] == img.meta and data["user"]["username"] == img.username
        assert data["createdAt"] == img.created_at
        assert "getVotableTags" not in r.text.split("__NEXT_DATA__")[1].split("</script>")[0]  # tags not in SSR
    assert get(f"{fake_civitai.base_url}/images/999").status == 404
    assert get(f"{fake_civitai.base_url}/images/abc").status == 404


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("system chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


TAGS = '[data-testid="votable-tags"]'
ANCHORS = f'{TAGS} a[href*="?tags="]'


def read_anchors(page):
    return page.eval_on_selector_all(
        ANCHORS, "els => els.map(a => [a.getAttribute('href'), a.getAttribute('title'), a.textContent])")


def test_browser_renders_tags(browser, fake_civitai):
    ds = fake_civitai.dataset
    iid = ds.named["tags_showcase"]
    expected = ds.page_tag_order(iid)
    assert len(expected) > 6
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"{fake_civitai.base_url}/images/{iid}")
        page.wait_for_selector(ANCHORS, timeout=10_000)
        assert page.get_attribute(TAGS, "data-state") == "loaded"
        assert page.inner_text(f"{TAGS} .browsing-level-badge") == "PG"
        assert len(read_anchors(page)) == 6
        chevron = page.locator(f"{TAGS} button[aria-label='Show all tags']")
        assert chevron.locator("svg.tabler-icon-chevron-down").count() == 1
        chevron.click()
        page.wait_for_function(f"document.querySelectorAll('{ANCHORS}').length === {len(expected)}")
        anchors = read_anchors(page)
        assert page.locator(f"{TAGS} button[aria-label='Show fewer tags'] svg.tabler-icon-chevron-up").count() == 1
        got_ids = [int(re.search(r"tags=(\d+)", href).group(1)) for href, _, _ in anchors]
        assert got_ids == [t["id"] for t in expected]
        for (href, title, text), tag in zip(anchors, expected, strict=True):
            assert href == f"/images?tags={tag['id']}&view=feed"
            assert text == display_name(tag["name"])
            if tag["concrete"]:
                assert title == f"Score: {tag['score']}"
            else:
                assert title is None
        assert "woman" in [a[2] for a in anchors] and "butt" in [a[2] for a in anchors]
        assert page.locator(f"{TAGS} .tabler-icon-flag").count() == sum(t["needsReview"] for t in expected)
        # the tags came from the same origin, so the Referer passed the origin gate
        calls = fake_civitai.requests("/api/trpc/tag.getVotableTags")
        assert calls and calls[-1].status == 200 and calls[-1].headers.get("Referer", "").startswith(
            fake_civitai.base_url)

        # a video, devalue encoding, and few tags (no chevron)
        fake_civitai.configure(trpc_encoding="devalue")
        vid = next(i for i in ds.images.values()
                   if i.type == "video" and 0 < len(ds.expected_tags(i.id)) <= 6)
        page.goto(f"{fake_civitai.base_url}/images/{vid.id}")
        page.wait_for_selector(ANCHORS, timeout=10_000)
        anchors = read_anchors(page)
        assert [a[0] for a in anchors] == [f"/videos?tags={t['id']}&view=feed" for t in ds.page_tag_order(vid.id)]
        assert page.locator(f"{TAGS} button.show-all-tags").count() == 0

        # a failing tag request shows an error instead of tags
        fake_civitai.add_fault(FaultRule("500", where="trpc"))
        page.goto(f"{fake_civitai.base_url}/images/{iid}")
        page.wait_for_selector(f"{TAGS} .tags-error", timeout=10_000)
        assert page.locator(ANCHORS).count() == 0
    finally:
        ctx.close()
