"""civitgrab-cli downloads, end to end against the fake CivitAI over HTTP."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from civitgrab_desktop.core.organize import sidecars
from tests.fake_civitai import FaultRule
from tests.integration.conftest import media_files

ALL_LEVELS = 31


def cdn_requests(fake) -> list:
    return [r for r in fake.request_log if "/original=true" in r.path or "/width=" in r.path]


def assert_exact_copy(dataset, path: Path) -> None:
    image_id = int(path.name.split(".")[0])
    expected, content_type = dataset.media(image_id)
    assert path.read_bytes() == expected, f"{path} differs from the original"
    ext = {"image/png": ".png", "image/jpeg": ".jpeg", "image/webp": ".webp", "video/mp4": ".mp4", "video/webm": ".webm"}
    assert path.suffix == ext[content_type]


def test_mode1_user_downloads_every_original_in_classic_layout(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    run = workspace.cli("--mode", "1", "--username", "alice")
    assert run.returncode == 0, run.output
    assert "API returned 24 items for user alice" in run.output

    expected = {i.id: i for i in dataset.images_for_user("alice", mask=ALL_LEVELS)}
    files = media_files(workspace.downloads / "Username_Search" / "alice")
    assert sorted(int(p.stem) for p in files) == sorted(expected)
    for path in files:
        assert_exact_copy(dataset, path)
        item = expected[int(path.stem)]
        folder = path.parent.name
        if item.meta is None:
            assert folder == "no_metadata"
            assert (path.parent / f"{item.id}_no_meta.txt").read_text().startswith("No metadata available.")
        else:
            assert (path.parent / f"{item.id}_meta.txt").exists()
            assert folder not in ("no_metadata",)
            assert not folder.startswith("urn")  # URN model names never become folders
        sidecar = json.loads((path.parent / f"{item.id}.json").read_text())
        assert sidecar["id"] == item.id
    named = dataset.named
    assert (workspace.downloads / "Username_Search/alice/invalid_metadata").is_dir()
    assert any(p.stem == str(named["alice_invalid_meta"]) and p.parent.name == "invalid_metadata" for p in files)

    with workspace.store() as store:
        for path in files:
            row = store.image(int(path.stem))
            assert row.dl_state == "done"
            assert Path(row.path) == path.resolve()
            assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            assert row.bytes == path.stat().st_size
    # mtime is the image's creation time
    sample = files[0]
    created = expected[int(sample.stem)].created_at
    from civitgrab_desktop.core.media.files import parse_iso_datetime

    assert abs(sample.stat().st_mtime - parse_iso_datetime(created).timestamp()) < 2


def test_second_run_downloads_nothing(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "bob_art").returncode == 0
    first = len(cdn_requests(fake_civitai))
    assert first == len(fake_civitai.dataset.images_for_user("bob_art"))
    fake_civitai.clear_log()
    again = workspace.cli("--mode", "1", "--username", "bob_art")
    assert again.returncode == 0, again.output
    assert cdn_requests(fake_civitai) == []
    assert "already downloaded" in again.stdout


def test_videos_keep_their_container(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "bob_art", "--no_sort")
    assert run.returncode == 0, run.output
    folder = workspace.downloads / "Username_Search" / "bob_art"
    named = fake_civitai.dataset.named
    assert (folder / f"{named['bob_mp4']}.mp4").read_bytes()[4:8] == b"ftyp"
    assert (folder / f"{named['bob_webm']}.webm").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"
    for path in media_files(folder):
        assert_exact_copy(fake_civitai.dataset, path)


def test_other_modes_link_instead_of_downloading_again(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    assert workspace.cli("--mode", "1", "--username", "alice").returncode == 0
    alice_ids = {i.id for i in dataset.images_for_user("alice")}
    fake_civitai.clear_log()

    run = workspace.cli("--mode", "4", "--model_version_id", "2001")
    assert run.returncode == 0, run.output
    version_items = dataset.images_for_version(2001)
    overlap = {i.id for i in version_items} & alice_ids
    assert overlap, "the dataset must share images between alice and version 2001"
    cdn_paths = [r.path for r in cdn_requests(fake_civitai)]
    for item in version_items:
        downloaded = any(item.uuid in p for p in cdn_paths)
        assert downloaded == (item.id not in overlap)

    folder = workspace.downloads / "Model_Version_ID_Search" / "modelVersion_2001"
    files = {int(p.stem): p for p in media_files(folder)}
    assert set(files) == {i.id for i in version_items}
    for image_id in overlap:
        assert files[image_id].stat().st_nlink >= 2  # a hard link to alice's copy
    with workspace.store() as store:
        for image_id in overlap:
            kinds = {(s.target_type, s.target_value) for s in store.sources_for(image_id)}
            assert ("username", "alice") in kinds and ("modelVersion", "2001") in kinds


def test_mode2_model_covers_all_versions(workspace, fake_civitai):
    run = workspace.cli("--mode", "2", "--model_id", "1003", "--no_sort")
    assert run.returncode == 0, run.output
    expected = {i.id for i in fake_civitai.dataset.images_for_model(1003)}
    files = media_files(workspace.downloads / "Model_ID_Search" / "model_1003")
    assert {int(p.stem) for p in files} == expected
    for v in (2004, 2005, 2006):
        assert f"version {v}" in run.output


def test_mode3_tag_sorts_and_writes_summary_csv(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    run = workspace.cli("--mode", "3", "--tags", "landscape", "--disable_prompt_check", "y")
    assert run.returncode == 0, run.output
    tag_dir = workspace.downloads / "Model_Tag_Search" / "landscape"
    models = dataset.models_with_tag("landscape")
    expected = set()
    for model in models:
        expected |= {i.id for i in dataset.images_for_model(model.id)}
    files = media_files(tag_dir)
    assert {int(p.stem) for p in files} == expected
    # tag mode sorts into model-name subfolders (the classic tool never did)
    assert all(p.parent.parent.name.startswith("model_") for p in files)
    # a second tag sharing images records the first one as "previously downloaded"
    run2 = workspace.cli("--mode", "3", "--tags", "photography", "--disable_prompt_check", "y")
    assert run2.returncode == 0, run2.output
    summaries = list((workspace.downloads / "Model_Tag_Search" / "photography").glob("summary_photography_*.csv"))
    assert len(summaries) == 1
    rows = list(csv.DictReader(summaries[0].open(encoding="utf-8")))
    assert rows and all(r["Current Tag"] == "photography" for r in rows)
    assert any(r["Previously Downloaded Tag"] == "landscape" for r in rows)


def test_mode3_unknown_tag_is_reported(workspace):
    run = workspace.cli("--mode", "3", "--tags", "no-such-tag-anywhere")
    assert run.returncode == 1
    assert "unknown tag" in run.output
    assert not (workspace.downloads / "Model_Tag_Search" / "no-such-tag-anywhere").exists()


def test_mode3_prompt_check_keeps_only_matching_prompts(workspace, fake_civitai):
    run = workspace.cli("--mode", "3", "--tags", "landscape")
    assert run.returncode == 0, run.output
    for path in media_files(workspace.downloads / "Model_Tag_Search" / "landscape"):
        prompt = (fake_civitai.dataset.image(int(path.stem)).meta or {}).get("prompt", "")
        assert "landscape" in prompt.lower()


def test_quality_one_fetches_resized_jpeg(workspace, fake_civitai):
    run = workspace.cli("--mode", "4", "--model_version_id", "2003", "--quality", "1", "--no_videos")
    assert run.returncode == 0, run.output
    assert cdn_requests(fake_civitai) and all("/width=" in r.path for r in cdn_requests(fake_civitai))
    files = media_files(workspace.downloads / "Model_Version_ID_Search" / "modelVersion_2003")
    assert files and all(p.suffix == ".jpeg" and p.read_bytes()[:3] == b"\xff\xd8\xff" for p in files)


def test_redownload_refetches_only_the_given_target(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "grace").returncode == 0
    assert workspace.cli("--mode", "1", "--username", "heidi").returncode == 0
    fake_civitai.clear_log()
    run = workspace.cli("--mode", "1", "--username", "grace", "--redownload", "1")
    assert run.returncode == 0, run.output
    grace = {i.uuid for i in fake_civitai.dataset.images_for_user("grace")}
    fetched = {r.path.split("/")[2] for r in cdn_requests(fake_civitai)}
    assert fetched == grace


def test_unknown_user_and_empty_user(workspace):
    run = workspace.cli("--mode", "1", "--username", "nobody_here,empty_user")
    assert run.returncode == 1
    assert "Not found: nobody_here" in run.stdout
    assert "Found nothing: empty_user" in run.stdout


def test_deleted_user_returning_other_users_items_is_stopped(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "ghost")
    assert run.returncode == 1
    assert "another user's items" in run.output
    assert cdn_requests(fake_civitai) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "1", "--username", "bad name!"], "not a valid CivitAI username"),
        (["--mode", "2", "--model_id", "12a"], "not a numeric model ID"),
        (["--mode", "4", "--model_version_id", "-5"], "not a numeric model version ID"),
        (["--username", "alice"], "--mode is required"),
        (["--mode", "1"], "--username is required"),
        (["--mode", "1", "--username", "alice", "--semaphore_limit", "50"], "not between 1 and 20"),
        (["--mode", "7"], "invalid choice"),
        ([], "--mode is required"),
    ],
)
def test_bad_input_is_a_clear_usage_error(workspace, args, message):
    run = workspace.cli(*args)
    assert run.returncode == 2, run.output
    assert message in run.stderr
    assert not workspace.downloads.exists()


def test_mismatched_arguments_warn(workspace):
    run = workspace.cli("--mode", "4", "--model_version_id", "2003", "--username", "alice", "--no_videos")
    assert run.returncode == 0
    assert "Warning: --username is not used in model version ID mode" in run.stderr


def test_pasted_urls_are_understood(workspace):
    run = workspace.cli("--mode", "1", "--username", "https://civitai.com/user/grace")
    assert run.returncode == 0, run.output
    assert (workspace.downloads / "Username_Search" / "grace").is_dir()


def test_faults_at_five_percent_still_get_everything(workspace, fake_civitai):
    for n, kind in enumerate(("429", "500", "503", "reset", "truncate", "html200", "corrupt")):
        fake_civitai.add_fault(FaultRule(kind, rate=0.05 / 7 * 2, seed=100 + n))
    run = workspace.cli("--mode", "1", "--username", "alice,bob_art,carol", "--retries", "10", timeout=300)
    assert run.returncode == 0, run.output
    faults = [r for r in fake_civitai.request_log if r.fault]
    assert len(faults) >= 3, "the fault switches should have fired"
    for user in ("alice", "bob_art", "carol"):
        folder = workspace.downloads / "Username_Search" / user
        files = media_files(folder)
        assert len(files) == len(fake_civitai.dataset.images_for_user(user))
        for path in files:
            assert_exact_copy(fake_civitai.dataset, path)
    assert not list(workspace.downloads.rglob("*.part"))


def test_hostile_names_stay_inside_the_output_folder(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "hostile")
    assert run.returncode == 0, run.output
    run2 = workspace.cli("--mode", "2", "--model_id", "1005,1012")
    assert run2.returncode in (0, 1), run2.output
    root = workspace.downloads.resolve()
    for path in workspace.root.rglob("*"):
        if path.is_file() and path.suffix in (".png", ".jpeg", ".webp", ".json", ".txt", ".mp4", ".webm"):
            if "data" in path.relative_to(workspace.root).parts[:1]:
                continue
            assert path.resolve().is_relative_to(root), path
    names = [p.name for p in root.rglob("*")]
    for name in names:
        assert name.upper().split(".")[0] not in ("CON", "NUL", "PRN", "AUX")
        assert not name.endswith((" ", "."))
        assert len(name.encode()) <= 255
        assert not any(c in name for c in '<>:"\\|?*')
    expected = {i.id for i in fake_civitai.dataset.images_for_user("hostile")}
    assert {int(p.stem) for p in media_files(root / "Username_Search" / "hostile")} == expected
    # "Model: evil" inside a prompt never becomes a folder
    assert not list(root.rglob("evil"))


def test_next_page_to_another_host_is_not_followed(workspace, fake_civitai):
    fake_civitai.set_item_cap(None)
    fake_civitai.configure(next_page_host_override="http://127.0.0.2:9")
    run = workspace.cli("--mode", "1", "--username", "bigcap", "--max_images", "5")
    assert "not CivitAI" in run.output
    listings = [r for r in fake_civitai.request_log if r.path == "/api/v1/images"]
    assert len(listings) == 1  # the first page only; its foreign nextPage was not followed


def test_media_on_another_host_is_refused(workspace, fake_civitai):
    fake_civitai.configure(allowed_media_host_override="http://127.0.0.2:9")
    run = workspace.cli("--mode", "1", "--username", "grace")
    assert run.returncode == 1
    assert "non-CivitAI host" in run.stdout
    assert media_files(workspace.downloads) == []


def test_api_key_goes_to_the_api_only_as_bearer(workspace, fake_civitai):
    key = "secret-key-1234567890"
    run = workspace.cli("--mode", "1", "--username", "grace", CIVITAI_API_KEY=key)
    assert run.returncode == 0, run.output
    api = [r for r in fake_civitai.request_log if r.path.startswith("/api/")]
    assert api and all(r.headers.get("Authorization") == f"Bearer {key}" for r in api)
    assert all(key not in r.path for r in fake_civitai.request_log)
    for path in list(workspace.root.rglob("*")):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_max_images_is_never_exceeded(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "alice,carol", "--max_images", "7", "--semaphore_limit", "10")
    assert run.returncode == 0, run.output
    assert len(media_files(workspace.downloads)) == 7


def test_filter_tags_match_whole_prompt_words(workspace, fake_civitai):
    run = workspace.cli("--mode", "1", "--username", "alice", "--filter_tags", "lighthouse")
    assert run.returncode == 0, run.output
    files = media_files(workspace.downloads)
    assert files
    for path in files:
        assert "lighthouse" in fake_civitai.dataset.image(int(path.stem)).meta["prompt"].lower()


def test_meta_txt_has_one_line_per_key(workspace, fake_civitai):
    """Every image with meta gets a `_meta.txt` with exactly one `key: value` line per key of the
    API's meta, in API order, although the hostile prompts carry line breaks and `Model:` lines."""
    assert workspace.cli("--mode", "1", "--username", "hostile").returncode == 0
    with_meta = {img.id: img for img in fake_civitai.dataset.images_for_user("hostile") if img.meta}
    meta_files = sorted(workspace.downloads.rglob("*_meta.txt"))
    assert len(with_meta) == 12 and len(meta_files) == len(with_meta)
    multiline_prompts = 0
    for meta_file in meta_files:
        meta = with_meta[int(meta_file.name.split("_")[0])].meta
        lines = meta_file.read_bytes().decode("utf-8").split("\n")
        assert lines[-1] == "" and len(lines[:-1]) == len(meta), meta_file.name
        assert [line.split(": ", 1)[0] for line in lines[:-1]] == list(meta)
        parsed = sidecars.read_meta_txt(meta_file)
        for key, value in meta.items():
            assert (parsed[key] if isinstance(value, str) else json.loads(parsed[key])) == value, key
        multiline_prompts += "\n" in meta["prompt"]
    assert multiline_prompts == len(meta_files)  # the case this test is about really occurred


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_stop_then_rerun_resumes_without_downloading_twice(workspace, fake_civitai, signame):
    import signal
    import subprocess
    import sys
    import time

    fake_civitai.set_latency(0.15)
    proc = subprocess.Popen(
        [sys.executable, "-m", "civitgrab_desktop.cli", "--mode", "1", "--username", "carol", "--semaphore_limit", "2"],
        cwd=workspace.root, env=workspace.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline and len(cdn_requests(fake_civitai)) < 3:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))  # Ctrl+C, or a service manager's stop
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Stopping after the current files" in err
    got_first = {p.stem for p in media_files(workspace.downloads)}
    assert 0 < len(got_first) < len(fake_civitai.dataset.images_for_user("carol"))
    assert not list(workspace.downloads.rglob("*.part"))
    fake_civitai.set_latency(0)
    before = {r.path for r in cdn_requests(fake_civitai)}
    run = workspace.cli("--mode", "1", "--username", "carol")
    assert run.returncode == 0, run.output
    after = [r.path for r in cdn_requests(fake_civitai) if r.path not in before]
    refetched = {p.split("/")[2] for p in after}
    done_uuids = {fake_civitai.dataset.image(int(s)).uuid for s in got_first}
    assert not (refetched & done_uuids)
    assert len(media_files(workspace.downloads)) == len(fake_civitai.dataset.images_for_user("carol"))


def test_unwritable_output_folder_is_a_clear_error(workspace):
    blocker = workspace.root / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    run = workspace.cli("--mode", "1", "--username", "grace", "--output_dir", str(blocker / "out"))
    assert run.returncode == 2
    assert "cannot write to the output folder" in run.stderr
    assert blocker.read_text() == "a file where the output folder should be"
