"""Complete galleries (deep scan past the listing cap) and cheap incremental updates."""

from __future__ import annotations

from tests.integration.conftest import media_files


def cdn_paths(fake) -> list[str]:
    return [r.path for r in fake.request_log if "/original=true" in r.path]


def listing_requests(fake) -> list:
    return [r for r in fake.request_log if r.path == "/api/v1/images"]


def test_listing_cap_is_reported_without_deep_scan(workspace, fake_civitai):
    fake_civitai.set_item_cap(200)
    run = workspace.cli("--mode", "1", "--username", "bigcap", "--no_sort", "--no-save")
    assert "the service's cap" in run.output and "--deep_scan" in run.output
    assert len(media_files(workspace.downloads)) == 200
    assert "hit the service's listing cap" in run.stdout


def test_deep_scan_gets_a_capped_user_completely(workspace, fake_civitai):
    fake_civitai.set_item_cap(200)
    run = workspace.cli("--mode", "1", "--username", "bigcap", "--no_sort", "--deep_scan", timeout=300)
    assert run.returncode == 0, run.output
    expected = {i.id for i in fake_civitai.dataset.images_for_user("bigcap")}
    assert {int(p.stem) for p in media_files(workspace.downloads)} == expected
    assert "deep scan" in run.output
    # nothing was fetched twice although the passes overlap
    assert len(cdn_paths(fake_civitai)) == len(expected)


def test_update_fetches_only_new_items_and_stops_early(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "bigcap", "--no_sort").returncode == 0
    listed_first = len(listing_requests(fake_civitai))
    assert listed_first >= 3  # 600 items = 3 pages
    new_ids = fake_civitai.publish_images("bigcap", 7)
    fake_civitai.clear_log()

    run = workspace.cli("update", "--stop-after", "20")
    assert run.returncode == 0, run.output
    assert "7 new" in run.stdout
    fetched = cdn_paths(fake_civitai)
    assert len(fetched) == 7
    new_uuids = {fake_civitai.dataset.image(i).uuid for i in new_ids}
    assert {p.split("/")[2] for p in fetched} == new_uuids
    assert len(listing_requests(fake_civitai)) == 1  # stopped on the first page
    on_disk = {int(p.stem) for p in media_files(workspace.downloads)}
    assert set(new_ids) <= on_disk

    fake_civitai.clear_log()
    again = workspace.cli("update")
    assert again.returncode == 0
    assert cdn_paths(fake_civitai) == []


def test_saved_queries_can_be_listed_paused_edited_and_removed(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "grace,heidi", "--nsfw", "soft").returncode == 0
    assert workspace.cli("--mode", "4", "--model_version_id", "2003", "--no-save").returncode == 0
    listing = workspace.cli("queries")
    assert "username grace" in listing.stdout and "username heidi" in listing.stdout
    assert "2003" not in listing.stdout  # --no-save
    with workspace.store() as store:
        queries = {q["identifier"]: q for q in store.list_queries()}
    assert queries["grace"]["options"]["nsfw"] == "soft"  # a saved query remembers its options

    grace, heidi = queries["grace"]["id"], queries["heidi"]["id"]
    assert workspace.cli("queries", "pause", str(heidi)).returncode == 0
    assert workspace.cli("queries", "set", str(grace), "--option", "nsfw=\"x\"").returncode == 0
    fake_civitai.clear_log()
    assert workspace.cli("update").returncode == 0
    users = {dict(r.query).get("username") for r in listing_requests(fake_civitai)}
    assert users == {"grace"}  # heidi is paused
    assert all(dict(r.query).get("nsfw") == "X" for r in listing_requests(fake_civitai))

    assert workspace.cli("queries", "remove", str(grace)).returncode == 0
    assert "username grace" not in workspace.cli("queries").stdout
    assert workspace.cli("queries", "pause", "999").returncode == 2


def test_identifiers_the_service_does_not_know_are_not_kept_as_queries(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "grace,nobody_here_at_all")
    assert run.returncode == 1 and "Not found: nobody_here_at_all" in run.stdout
    run = workspace.cli("--mode", "3", "--tags", "no_such_tag_anywhere")
    listing = workspace.cli("queries").stdout
    assert "username grace" in listing
    assert "nobody_here_at_all" not in listing and "no_such_tag_anywhere" not in listing
    # a query saved earlier stays when its user later disappears from the service
    fake_civitai.delete_images([i.id for i in fake_civitai.dataset.images_for_user("grace")])
    workspace.cli("--mode", "1", "--username", "grace")
    assert "username grace" in workspace.cli("queries").stdout


def test_images_that_disappear_are_kept_and_marked_gone(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "grace").returncode == 0
    victims = [i.id for i in fake_civitai.dataset.images_for_user("grace")[:2]]
    fake_civitai.delete_images(victims)
    # only an authenticated listing is evidence (tests/integration/test_gone_evidence.py)
    run = workspace.cli("--mode", "1", "--username", "grace", "--api-key", "k")
    assert run.returncode == 0, run.output
    assert "no longer listed" in run.output
    with workspace.store() as store:
        for image_id in victims:
            row = store.image(image_id)
            assert row.gone_at and row.dl_state == "done"
            assert row.path and __import__("pathlib").Path(row.path).exists()


def test_urls_are_accepted_as_identifiers(workspace):
    run = workspace.cli("--mode", "4", "--model_version_id", "https://civitai.red/models/1002?modelVersionId=2003")
    assert run.returncode == 0, run.output
    assert (workspace.downloads / "Model_Version_ID_Search" / "modelVersion_2003").is_dir()
    bad = workspace.cli("--mode", "2", "--model_id", "https://civitai.com/user/alice")
    assert bad.returncode == 2 and "does not fit" in bad.stderr


def test_post_and_image_links_download_what_they_point_at(workspace, fake_civitai):
    ds = fake_civitai.dataset
    alice = ds.images_for_user("alice")
    post_id = alice[0].post_id
    in_post = {i.id for i in alice if i.post_id == post_id}
    run = workspace.cli("--mode", "5", "--post_id", f"https://civitai.com/posts/{post_id}")
    assert run.returncode == 0, run.output
    folder = workspace.downloads / "Post_ID_Search" / f"post_{post_id}"
    assert {int(p.stem) for p in folder.rglob("*") if p.suffix in (".png", ".jpeg", ".webp", ".mp4", ".webm")} == in_post
    single = alice[-1].id
    run = workspace.cli("--mode", "6", "--image_id", f"https://civitai.red/images/{single}, 999999999")
    assert run.returncode == 1, run.output  # one of the two does not exist
    assert "Not found: 999999999" in run.stdout
    assert [int(p.stem) for p in (workspace.downloads / "Image_ID_Search").rglob("*")
            if p.suffix in (".png", ".jpeg", ".webp", ".mp4", ".webm")] == [single]
    hint = workspace.cli("--mode", "1", "--username", f"https://civitai.com/posts/{post_id}")
    assert hint.returncode == 2 and "--mode 5 --post_id" in hint.stderr
