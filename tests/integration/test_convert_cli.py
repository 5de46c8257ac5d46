"""civitgrab-cli convert, end to end: images downloaded from the fake CivitAI with the real CLI,
then converted by the real CLI (worker processes, library claims, EXIF, verification, layout)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from civitgrab_desktop.core.civitai.records import parse_tag_vote
from civitgrab_desktop.core.media.embed import read_file_xmp
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.organize import layouts
from tests.fake_civitai.dataset import a1111_parameters
from tests.integration.conftest import media_files

IMAGE_EXTS = {".png", ".jpeg", ".jpg", ".webp", ".gif"}
BROWSE = "CivitAI_Browse"


def download(workspace, *args: str) -> None:
    run = workspace.cli(*args, "--no-save")
    assert run.returncode == 0, run.output


def store_dataset_tags(workspace, dataset, ids) -> dict[int, list[dict]]:
    """The tags job is another engineer's: put the replica's tags in the library directly."""
    tags = {}
    with workspace.store() as store:
        for image_id in ids:
            tags[image_id] = dataset.expected_tags(image_id)
            store.store_tags(image_id, "test", [parse_tag_vote(t) for t in tags[image_id]], "api")
    return tags


def downloaded_images(workspace) -> dict[int, Path]:
    with workspace.store() as store:
        rows = store.list_images(dl_state="done", type="image", limit=None)
    return {row.id: Path(row.path) for row in rows}


def test_every_image_gets_a_webp_with_tags_prompt_and_parameters_in_the_browse_layout(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    download(workspace, "--mode", "1", "--username", "alice")
    originals = downloaded_images(workspace)
    assert len(originals) == 24
    before = {i: p.read_bytes() for i, p in originals.items()}
    tags = store_dataset_tags(workspace, dataset, originals)

    run = workspace.cli("convert")
    assert run.returncode == 0, run.output
    assert "Converted: 24" in run.stdout and "Failed: 0" in run.stdout
    assert "saved" in run.stdout and f"Output: {workspace.downloads / BROWSE}" in run.stdout

    root = workspace.downloads
    with workspace.store() as store:
        for image_id, original in originals.items():
            item = dataset.image(image_id)
            row = store.image(image_id)
            folder = layouts.browse_target_dir(root, row)
            expected_class = "NSFW" if item.nsfw_level >= 4 else "SFW"
            assert folder.relative_to(root).parts[:3] == (BROWSE, "Images", expected_class)
            assert folder.name == "alice"
            webp = folder / f"{image_id}.webp"
            with Image.open(webp) as im, Image.open(original) as src:
                assert im.format == "WEBP" and im.size == src.size
                im.load()
            exif = read_exif(webp)
            names = [t["name"] for t in tags[image_id]]
            assert sorted(exif["keywords"]) == sorted(n.replace(";", ",") for n in names)
            xmp = read_file_xmp(webp)
            assert xmp["record"]["ImageId"] == str(image_id) and exif["artist"] == "alice"
            assert {t["name"]: t["score"] for t in xmp["record"].get("tags", [])} == {
                t["name"]: str(t["score"]) for t in tags[image_id]}
            assert sorted(xmp["subject"]) == sorted(names)
            prompt = (item.meta or {}).get("prompt")
            if prompt:
                assert xmp["description"] == prompt
                assert exif["user_comment"].startswith(prompt.strip())
                if prompt.isascii():
                    assert exif["description"] == prompt
            if item.media_format == "png" and a1111_parameters(item):
                assert exif["user_comment"] == a1111_parameters(item)
            sidecar = json.loads((folder / f"{image_id}.json").read_text(encoding="utf-8"))
            assert sidecar["id"] == image_id and sorted(t["name"] for t in sidecar["tags"]) == sorted(names)
            conv = store.conversion_of(image_id)
            assert conv.webp_path == str(webp) and conv.src_phash and conv.webp_phash
            assert conv.distance is not None and conv.distance <= 4
            assert conv.src_bytes == len(before[image_id]) and conv.webp_bytes == webp.stat().st_size
            assert row.cv_state == "done" and not conv.original_removed
            assert original.read_bytes() == before[image_id]  # dest mode deletes nothing

    again = workspace.cli("convert")
    assert again.returncode == 0 and "Converted: 0" in again.stdout


def test_in_place_replaces_originals_and_the_links_in_other_query_folders(workspace, fake_civitai):
    download(workspace, "--mode", "1", "--username", "alice")
    download(workspace, "--mode", "4", "--model_version_id", "2001")
    with workspace.store() as store:
        shared = [i for i in downloaded_images(workspace) if len(store.sources_for(i)) > 1]
    assert shared, "version 2001 shares images with alice"

    run = workspace.cli("convert", "--in-place")
    assert run.returncode == 0, run.output
    leftovers = [p for p in media_files(workspace.downloads) if p.suffix in IMAGE_EXTS - {".webp"}]
    assert leftovers == []
    with workspace.store() as store:
        for image_id, path in downloaded_images(workspace).items():
            assert path.suffix == ".webp" and path.exists()
            assert store.conversion_of(image_id).original_removed
            for source in store.sources_for(image_id):
                assert source.path.endswith(".webp") and Path(source.path).exists()
        for image_id in shared:
            paths = [Path(s.path) for s in store.sources_for(image_id)]
            assert all(os.path.samefile(paths[0], p) for p in paths[1:])  # still one file, linked


def test_failed_verification_keeps_the_original_and_says_why(workspace, fake_civitai):
    download(workspace, "--mode", "1", "--username", "alice")
    originals = downloaded_images(workspace)
    replaced_id = next(i for i, p in originals.items() if p.suffix == ".jpeg")
    replacement = Image.effect_mandelbrot((64, 64), (-2, -1, 1, 1), 30).convert("RGB")
    replacement.save(originals[replaced_id], "JPEG")  # not the image that was downloaded
    replaced_bytes = originals[replaced_id].read_bytes()

    # Quality 1 with a threshold of 0: pictures whose pHash moves get a lossless WebP instead
    # (said in the output); the changed original fails, and is kept with the reason.
    run = workspace.cli("convert", "--in-place", "--quality", "1", "--phash-threshold", "0")
    assert run.returncode == 1, run.output
    assert "failed verification (verification failed: perceptual hash distance" in run.output
    assert "saved as lossless WebP instead" in run.output
    assert f"{replaced_id}: the original changed since it was downloaded" in run.stdout
    with workspace.store() as store:
        failed = [r for r in store.list_images(cv_state="failed", limit=None)]
        assert [r.id for r in failed] == [replaced_id]
        row = failed[0]
        assert row.cv_error and Path(row.path) == originals[replaced_id] and originals[replaced_id].exists()
        assert not originals[replaced_id].with_suffix(".webp").exists()
        assert store.conversion_of(replaced_id) is None
        lossless = [c for c in (store.conversion_of(i) for i in originals if i != replaced_id) if c and c.lossless]
        assert lossless and all(c.distance == 0 and c.quality is None for c in lossless)
    assert originals[replaced_id].read_bytes() == replaced_bytes
    assert not [p for p in workspace.downloads.rglob(".*.tmp")]


def test_videos_are_copied_by_default_and_moved_on_request(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    download(workspace, "--mode", "1", "--username", "bob_art")
    with workspace.store() as store:
        videos = {r.id: Path(r.path) for r in store.list_images(type="video", limit=None)}
    assert len(videos) == 3
    first, *rest = sorted(videos)
    run = workspace.cli("convert", "--dest", "out", "--username", "bob_art", "--limit", "10")
    assert run.returncode == 0, run.output
    assert "Videos placed in the organized folder" in run.stdout
    out = workspace.root / "out" / BROWSE / "Videos"
    placed = {int(p.stem): p for p in out.rglob("*") if p.suffix in (".mp4", ".webm")}
    copied = set(placed)
    assert copied and copied <= set(videos)
    for image_id in copied:
        assert videos[image_id].exists() and os.path.samefile(videos[image_id], placed[image_id])
        assert json.loads(placed[image_id].with_suffix(".json").read_text())["id"] == image_id
        assert placed[image_id].suffix == "." + dataset.image(image_id).media_format

    moved = workspace.cli("convert", "--dest", "out", "--move-videos")
    assert moved.returncode == 0, moved.output
    with workspace.store() as store:
        for image_id in set(videos) - copied:
            row = store.image(image_id)
            assert not videos[image_id].exists() and Path(row.path).exists()
            assert Path(row.path).is_relative_to(out) and store.conversion_of(image_id).original_removed


def test_only_tagged_and_filters(workspace, fake_civitai):
    download(workspace, "--mode", "1", "--username", "alice")
    download(workspace, "--mode", "1", "--username", "bob_art")
    alice = sorted(i for i in downloaded_images(workspace) if fake_civitai.dataset.image(i).username == "alice")
    store_dataset_tags(workspace, fake_civitai.dataset, alice[:5])
    run = workspace.cli("convert", "--only-tagged", "--dest", "out")
    assert run.returncode == 0 and "Converted: 5" in run.stdout, run.output
    run = workspace.cli("convert", "--dest", "out", "--username", "bob_art", "--nsfw-class", "sfw", "--no-videos")
    assert run.returncode == 0, run.output
    with workspace.store() as store:
        for row in store.list_images(username="bob_art", limit=None):
            expected = row.type == "image" and row.nsfw_level < 4
            assert (row.cv_state == "done") == expected, row.id
    run = workspace.cli("convert", "--dest", "out", "--source", "username:alice", "--limit", "3")
    assert run.returncode == 0 and "Converted: 3" in run.stdout, run.output


def test_bad_options_are_usage_errors(workspace):
    assert workspace.cli("convert", "--in-place", "--dest", "x").returncode == 2
    bad = workspace.cli("convert", "--source", "alice")
    assert bad.returncode == 2 and "source must look like" in bad.stderr
    assert workspace.cli("convert", "--quality", "0").returncode == 2
