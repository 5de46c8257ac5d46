"""The real service's quirks, as the corrected replica reproduces them (issue 18): the legacy
path's nested null meta, other CivitAI domains in pasted links, and a last page of exactly the
page size that is not the service's cap."""

from __future__ import annotations

from tests.integration.conftest import media_files


def test_a_nested_null_meta_is_no_metadata(workspace, fake_civitai):
    """`/images?imageId=` is the legacy path: an image without metadata comes back as
    `"meta": {"id": <id>, "meta": null}` (image-search.service.ts runImageSearch)."""
    ds = fake_civitai.dataset
    iid = ds.named["alice_no_meta"]
    run = workspace.cli("--mode", "6", "--image_id", str(iid))
    assert run.returncode == 0, run.output
    raw = [r for r in fake_civitai.requests("/api/v1/images") if dict(r.query).get("imageId") == str(iid)]
    assert raw and dict(raw[0].query).get("withMeta") == "true"  # so the service sent the nested null
    files = media_files(workspace.downloads / "Image_ID_Search")
    assert [int(p.stem) for p in files] == [iid]
    path = files[0]
    assert path.parent.name == "no_metadata"
    assert (path.parent / f"{iid}_no_meta.txt").read_text().startswith("No metadata available.")
    assert not (path.parent / f"{iid}_meta.txt").exists()
    with workspace.store() as store:
        assert store.image(iid).meta == {}  # not {"id": .., "meta": None}


def test_links_from_the_green_site_are_understood(workspace, fake_civitai):
    """civitai.green is the site's SFW domain (src/providers/AppProvider.tsx useServerDomains,
    src/server/schema/blocks/civitai-image-url.ts CIVITAI_IMAGE_HOSTS)."""
    ds = fake_civitai.dataset
    iid = ds.named["large_png"]
    run = workspace.cli("--mode", "6", "--image_id", f"https://civitai.green/images/{iid}")
    assert run.returncode == 0, run.output
    assert [int(p.stem) for p in media_files(workspace.downloads / "Image_ID_Search")] == [iid]


def test_a_last_page_of_exactly_the_page_size_is_not_the_cap(workspace, fake_civitai):
    """A user with exactly 200 items: one full page and no next page, like a capped stream, but
    the listing did reach the oldest item."""
    fake_civitai.publish_images("exactly200", 200, width=16, height=16)
    run = workspace.cli("--mode", "1", "--username", "exactly200", timeout=300)
    assert run.returncode == 0, run.output
    assert "the service's cap" not in run.output and "--deep_scan" not in run.output
    assert "API returned 200 items for user exactly200" in run.output
