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
    # [imageId].tsx: a numeric id always renders (200); only a non-numeric one is Next's 404
    missing = get(f"{fake_civitai.base_url}/images/999")
    assert missing.status == 200 and next_data(missing.text)["props"]["pageProps"]["trpcState"]["json"]["queries"] == []
    assert get(f"{fake_civitai.base_url}/images/abc").status == 404
    # nothing the real page does not have
    for invented in ("data-testid", "data-state", "tags-error", "aria-label=\"Show"):
        assert invented not in r.text


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


LINKS = 'a[data-activity="tag-click:image"][href*="?tags="]'
GROUP_JS = "() => { const a = document.querySelector('%s'); return a && a.closest('.mantine-Badge-root').parentElement; }"


def read_anchors(page):
    return page.eval_on_selector_all(
        LINKS, "els => els.map(a => [a.getAttribute('href'), a.getAttribute('title'), a.textContent])")


def badge_labels(page):
    return page.evaluate(
        "(sel) => Array.from(document.querySelector(sel).closest('.mantine-Badge-root').parentElement"
        ".querySelectorAll(':scope > .mantine-Badge-root')).map(b => b.textContent)", LINKS)


def test_browser_renders_tags_like_the_site(browser, fake_civitai):
    ds = fake_civitai.dataset
    iid = ds.named["tags_showcase"]
    expected = ds.page_tag_order(iid)
    assert len(expected) > 6
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        response = page.goto(f"{fake_civitai.base_url}/images/{iid}", wait_until="domcontentloaded")
        # VotableTags.tsx: a Mantine Loader while the tags load (the server-rendered HTML), then the badges
        assert '<div class="mantine-Center-root"><span class="mantine-Loader-root">' in response.text()
        page.wait_for_selector(LINKS, timeout=10_000)
        assert page.locator(".mantine-Loader-root").count() == 0
        labels = badge_labels(page)
        assert labels[:2] == ["PG", "Tag"]
        assert len(read_anchors(page)) == 6
        chevron = page.locator(".mantine-ActionIcon-root:has(svg.tabler-icon-chevron-down)")
        assert chevron.count() == 1
        chevron.click()
        page.wait_for_function(f"document.querySelectorAll('{LINKS}').length === {len(expected)}")
        assert page.locator(".mantine-ActionIcon-root svg.tabler-icon-chevron-up").count() == 1
        anchors = read_anchors(page)
        got_ids = [int(re.search(r"tags=(\d+)", href).group(1)) for href, _, _ in anchors]
        assert got_ids == [t["id"] for t in expected]
        for (href, title, text), tag in zip(anchors, expected, strict=True):
            assert href == f"/images?tags={tag['id']}&view=feed"
            assert text == display_name(tag["name"])
            assert title == (None if not tag["concrete"] else f"Score: {tag['score']}")
        texts = [a[2] for a in anchors]
        assert "woman" in texts and "butt" in texts and "suggestive content" in texts
        assert page.locator(".tabler-icon-flag").count() == sum(t["needsReview"] for t in expected)
        assert page.locator(".tabler-icon-hourglass-empty").count() == sum(not t["concrete"] for t in expected)
        # the tags came from the same origin, so the Referer passed the origin gate; no `take`
        calls = fake_civitai.requests("/api/trpc/tag.getVotableTags")
        assert calls and calls[-1].status == 200 and calls[-1].headers.get("Referer", "").startswith(
            fake_civitai.base_url)
        assert json.loads(dict(calls[-1].query)["input"]) == {"json": {"id": iid, "type": "image"}}

        # localStorage keeps "show all"; a video links to /videos; devalue answers render the same
        fake_civitai.configure(trpc_encoding="devalue")
        vid = next(i for i in ds.images.values()
                   if i.type == "video" and 0 < len(ds.expected_tags(i.id)) <= 6)
        page.goto(f"{fake_civitai.base_url}/images/{vid.id}")
        page.wait_for_selector(LINKS, timeout=10_000)
        anchors = read_anchors(page)
        assert [a[0] for a in anchors] == [f"/videos?tags={t['id']}&view=feed" for t in ds.page_tag_order(vid.id)]
        assert page.locator(".mantine-ActionIcon-root").count() == 0

        # a failing tag request: one retry, then the group without tags (no error element)
        fake_civitai.configure(trpc_encoding="superjson")
        fake_civitai.clear_log()
        fake_civitai.add_fault(FaultRule("500", where="trpc"))
        page.goto(f"{fake_civitai.base_url}/images/{iid}")
        page.wait_for_function("() => !document.querySelector('.mantine-Loader-root')", timeout=10_000)
        assert page.locator(LINKS).count() == 0
        assert len(fake_civitai.requests("/api/trpc/tag.getVotableTags")) == 2
        assert page.locator("text=Tag").count() >= 1
    finally:
        ctx.close()


def test_missing_and_gated_pages(browser, fake_civitai):
    ds = fake_civitai.dataset
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        # a deleted image: 200, a page loader, then NotFound (after image.get and its one retry)
        gone = ds.named["tags_showcase"]
        fake_civitai.delete_images([gone])
        response = page.goto(f"{fake_civitai.base_url}/images/{gone}")
        assert response.status == 200
        page.wait_for_selector("h1:text-is('404')", timeout=10_000)
        assert "The page you are looking for doesn't exist" in page.inner_text("main")
        assert page.title() == "Page Not Found"
        assert len(fake_civitai.requests("/api/trpc/image.get")) == 2

        # an R image for a visitor without a session: the login card, no tags, no tag request
        fake_civitai.clear_log()
        r_img = next(i for i in ds.images.values() if i.nsfw_level == 4 and ds.expected_tags(i.id))
        page.goto(f"{fake_civitai.base_url}/images/{r_img.id}")
        assert "This content requires an account" in page.inner_text("main")
        page.wait_for_timeout(300)
        assert page.locator(LINKS).count() == 0 and not fake_civitai.requests("/api/trpc/tag.getVotableTags")
        # with a key (a session) the page and its tags show
        ctx.set_extra_http_headers({"Authorization": "Bearer k"})
        page.goto(f"{fake_civitai.base_url}/images/{r_img.id}")
        page.wait_for_selector(LINKS, timeout=10_000)
        # the SFW (green) site hides non-public tags and redirects mature content
        fake_civitai.configure(site_color="green")
        page.goto(f"{fake_civitai.base_url}/images/{r_img.id}")
        assert "Mature content now lives on" in page.inner_text("main")
        showcase = next(
            i.id for i in ds.images.values()
            if i.nsfw_level == 1 and any(t["nsfwLevel"] != 1 for t in ds.expected_tags(i.id)))
        page.goto(f"{fake_civitai.base_url}/images/{showcase}")
        page.wait_for_function("() => !document.querySelector('.mantine-Loader-root')", timeout=10_000)
        shown = {int(re.search(r"tags=(\d+)", a[0]).group(1)) for a in read_anchors(page)}
        assert shown and all(t["nsfwLevel"] == 1 for t in ds.expected_tags(showcase) if t["id"] in shown)
        assert shown == {t["id"] for t in ds.page_tag_order(showcase, can_view_nsfw=False)[:6]}
    finally:
        ctx.close()
