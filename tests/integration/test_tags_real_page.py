"""Tags against the image page as the real site builds it (issue 18): a deleted image fails in
seconds with a reason, a 150-tag image keeps all its tags by both methods, a mature image's login
gate is a clear per-image failure, and the rendered tag-feed links are read correctly when the
page's own answer is not available."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from civitgrab_desktop.core.civitai.browser_tags import BrowserTagFetcher, with_own_names
from civitgrab_desktop.core.civitai.client import CivitaiClient
from tests.integration.test_tags_cli import (
    api_view,
    download,
    downloaded_ids,
    library_api_view,
    needs_chromium,
    page_tag_calls,
)

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if Path(p).exists()), None)


@needs_chromium
def test_a_deleted_image_fails_within_seconds_with_a_reason(workspace, fake_civitai):
    download(workspace, "grace")
    with workspace.store() as store:
        ids = downloaded_ids(store)
    gone = ids[0]
    fake_civitai.delete_images([gone])  # the page now answers 200 with the NotFound view
    started = time.monotonic()
    run = workspace.cli("tags", "--method", "browser", "--api-key", "k", "--workers", "1", timeout=240)
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.output
    with workspace.store() as store:
        row = store.image(gone)
        assert row.tag_state == "failed"
        assert "the image page says the image does not exist" in row.tag_error
        assert all(store.image(i).tag_state == "done" for i in ids if i != gone)
    assert len(fake_civitai.requests(f"/images/{gone}")) == 1  # not retried: the page said why
    # one browser start, len(ids) pages: far from the old 60 s x 6 attempts for the missing one
    assert elapsed < 10 + 3 * len(ids), run.output


@needs_chromium
def test_a_mature_image_without_a_key_is_a_clear_per_image_failure(workspace, fake_civitai):
    download(workspace, "bob_art")
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "browser", timeout=240)
    assert run.returncode == 1, run.output
    ds = fake_civitai.dataset
    with workspace.store() as store:
        for iid in downloaded_ids(store):
            row = store.image(iid)
            if ds.images[iid].nsfw_level == 1:
                assert row.tag_state == "done", row.tag_error
            else:
                assert row.tag_state == "failed" and "asks to log in" in row.tag_error
    # the gated pages asked no tags at all (as the site's Gated component does)
    asked = set(page_tag_calls(fake_civitai))
    assert asked and asked <= {i for i, img in ds.images.items() if img.nsfw_level == 1}


@pytest.mark.parametrize("method", ["api", "browser"])
def test_an_image_with_150_tags_keeps_all_of_them(workspace, fake_civitai, method):
    if method == "browser" and CHROMIUM is None:
        pytest.skip("no system Chromium")
    ds = fake_civitai.dataset
    many = ds.named["many_tags"]
    download(workspace, "carol")
    run = workspace.cli("tags", "--method", method, "--api-key", "k", timeout=240)
    assert run.returncode == 0, run.output
    expected = {t["id"]: api_view(t) for t in ds.all_tags(many)}
    assert len(expected) == 150
    with workspace.store() as store:
        got = {t["id"]: library_api_view(t) for t in store.tags_of(many)}
        assert got == expected


@needs_chromium
def test_rendered_links_are_read_like_the_site_renders_them(fake_civitai):
    """The fallback when the page's answer cannot be read: the badges' tag-feed links, after the
    chevron shows all of them, then the tags' own names by id."""
    ds = fake_civitai.dataset
    iid = ds.named["tags_showcase"]
    expected = ds.all_tags(iid)

    async def read() -> tuple[list, list]:
        async with CivitaiClient(fake_civitai.base_url) as client:
            fetcher = BrowserTagFetcher(client, browser_path=CHROMIUM)
            try:
                await fetcher.start()
                page = await fetcher._take_page()
                url = f"{fake_civitai.base_url}/images/{iid}"
                await page.goto(url)
                await page.wait_for_selector(fetcher.selectors.link)
                shown = await fetcher._read_rendered(page, url)
                return shown, with_own_names(shown, await fetcher._own_names(iid))
            finally:
                await fetcher.close()

    shown, named = asyncio.run(read())
    assert [t.id for t in shown] == [t["id"] for t in ds.page_tag_order(iid)]  # all, not the first 6
    by_id = {t["id"]: t for t in expected}
    for tag in shown:
        want = by_id[tag.id]
        assert tag.needs_review == want["needsReview"] and tag.concrete == want["concrete"]
        assert tag.score == (want["score"] if want["concrete"] else min(want["score"], 10))
    assert {t.id: t.name for t in named} == {t["id"]: t["name"] for t in expected}
    assert "woman" in [t.name for t in shown] and "1girl" in [t.name for t in named]
