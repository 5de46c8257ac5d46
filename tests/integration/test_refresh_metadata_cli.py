"""`civitgrab-cli convert --refresh-metadata`, end to end: images downloaded from the replica and
converted by the real CLI, then turned into files as civitgrab's first format wrote them (JSON in an
ASCII UserComment, no XMP: what an existing library holds), then refreshed by the real CLI.

The picture must not change (image chunks byte for byte, decoded pixels equal); readers we did not
write must find the new metadata; a SIGKILLed refresh leaves every file old or new, never broken.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import piexif
import piexif.helper
from PIL import Image
from sd_parsers.data import Generators

from civitgrab_desktop.core.civitai.records import parse_tag_vote
from civitgrab_desktop.core.media.embed import read_file_xmp
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.media.webp_riff import build_webp, image_chunks, parse_chunks, with_metadata
from tests.integration.test_convert_cli import download, downloaded_images, store_dataset_tags
from tests.unit.test_metadata_readers import exiftool, sd_parse


def first_format(webp: Path, image_id: int, prompt: str | None) -> None:
    """Rewrite `webp` as civitgrab 0.1's converter left it: our JSON in UserComment, the prompt
    as raw UTF-8 in ImageDescription, no XMP (pixels untouched, mtime kept)."""
    stat = webp.stat()
    comment = json.dumps({"civitgrab": 1, "id": image_id, "meta": {"prompt": prompt}, "tags": []})
    zeroth = {piexif.ImageIFD.Software: b"civitgrab"}
    if prompt:
        zeroth[piexif.ImageIFD.ImageDescription] = prompt.encode("utf-8")
    exif = piexif.dump({"0th": zeroth,
                        "Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(comment, "ascii")}})
    webp.write_bytes(build_webp(with_metadata(parse_chunks(webp.read_bytes()), exif, None)))
    os.utime(webp, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def pixels(path: Path) -> bytes:
    with Image.open(path) as im:
        return im.convert("RGBA").tobytes()


def converted_library(workspace, fake_civitai) -> dict[int, Path]:
    download(workspace, "--mode", "1", "--username", "alice")
    originals = downloaded_images(workspace)
    store_dataset_tags(workspace, fake_civitai.dataset, originals)
    run = workspace.cli("convert")
    assert run.returncode == 0, run.output
    with workspace.store() as store:
        webps = {i: Path(store.conversion_of(i).webp_path) for i in originals}
        prompts = {i: (store.image(i).meta or {}).get("prompt") for i in originals}
    for image_id, webp in webps.items():
        first_format(webp, image_id, prompts[image_id])
    return webps


def test_refresh_rewrites_old_files_for_every_reader_without_touching_the_pictures(workspace, fake_civitai):
    webps = converted_library(workspace, fake_civitai)
    before = {i: (p.read_bytes(), pixels(p), p.stat().st_mtime) for i, p in webps.items()}
    assert all(read_file_xmp(p)["record"] == {} for p in webps.values())  # old files: no XMP

    run = workspace.cli("convert", "--refresh-metadata")
    assert run.returncode == 0, run.output
    assert f"Metadata refreshed: {len(webps)}" in run.stdout and f"Files rewritten: {len(webps)}" in run.stdout

    dataset = fake_civitai.dataset
    recognised = 0
    for image_id, webp in webps.items():
        old_bytes, old_pixels, old_mtime = before[image_id]
        assert image_chunks(parse_chunks(webp.read_bytes())) == image_chunks(parse_chunks(old_bytes))
        assert pixels(webp) == old_pixels  # decoded, the picture is the same
        assert abs(webp.stat().st_mtime - old_mtime) < 1
        tags = sorted(t["name"] for t in dataset.expected_tags(image_id))
        xmp = read_file_xmp(webp)
        assert xmp["record"]["ImageId"] == str(image_id) and sorted(xmp["subject"]) == tags
        prompt = (dataset.image(image_id).meta or {}).get("prompt")
        if prompt:
            assert xmp["description"] == prompt
            assert read_exif(webp)["user_comment"].startswith(prompt.strip())
            parsed = sd_parse(webp)  # its images are kept alive (sd-parsers caches by id(image))
            if parsed is not None and parsed.generator == Generators.AUTOMATIC1111:
                recognised += 1
                assert parsed.prompts[0].value == prompt.strip()
    assert recognised, "sd-parsers recognised none of the refreshed files"
    sample = next(p for i, p in webps.items() if dataset.expected_tags(i))
    tool = exiftool(sample)
    assert tool["XMP-dc:Subject"] and "ExifIFD:UserComment" in tool

    again = workspace.cli("convert", "--refresh-metadata")
    assert again.returncode == 0 and f"already up to date: {len(webps)}" in again.stdout  # nothing rewritten


def test_refresh_leaves_a_file_that_is_not_ours_alone(workspace, fake_civitai):
    webps = converted_library(workspace, fake_civitai)
    image_id, victim = next(iter(webps.items()))
    Image.new("RGB", (8, 8), "blue").save(victim, "WEBP")  # someone put another picture there
    foreign = victim.read_bytes()
    run = workspace.cli("convert", "--refresh-metadata")
    assert run.returncode == 1 and f"{image_id}:" in run.stdout and "left as it is" in run.stdout
    assert victim.read_bytes() == foreign


def test_a_killed_refresh_leaves_every_file_old_or_new(workspace, fake_civitai):
    webps = converted_library(workspace, fake_civitai)
    old = {i: p.read_bytes() for i, p in webps.items()}
    # What "new" is: refresh a copy of the library's files once, fully.
    run = workspace.cli("convert", "--refresh-metadata")
    assert run.returncode == 0, run.output
    new = {i: p.read_bytes() for i, p in webps.items()}
    assert all(new[i] != old[i] for i in webps)

    mixed = 0
    for _attempt in range(5):
        for image_id, path in webps.items():
            path.write_bytes(old[image_id])
        inodes = {p: p.stat().st_ino for p in webps.values()}
        proc = subprocess.Popen([sys.executable, "-m", "civitgrab_desktop.cli", "convert", "--refresh-metadata"],
                                cwd=workspace.root, env=workspace.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # SIGKILL the moment the first file was renamed into place (a new inode): mid-run
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.stat().st_ino != ino for p, ino in inodes.items()):
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        states = []
        for image_id, path in webps.items():
            data = path.read_bytes()
            assert data in (old[image_id], new[image_id]), f"{path.name} is neither the old nor the new file"
            states.append(data == new[image_id])
        mixed += 0 < sum(states) < len(states)
    # each run above was killed somewhere; at least one of them in the middle of the files
    assert mixed, "no kill landed while files were being rewritten"
    run = workspace.cli("convert", "--refresh-metadata")  # a rerun finishes the job and its leftovers
    assert run.returncode == 0 and all(p.read_bytes() == new[i] for i, p in webps.items())
    assert not [t for p in webps.values() for t in p.parent.glob(".*.tmp")]


def test_refresh_leaves_files_outside_the_chosen_folders_alone(workspace, fake_civitai):
    webps = converted_library(workspace, fake_civitai)
    listed = workspace.cli("roots", "list")
    assert listed.returncode == 0, listed.output
    folders = [line.split(None, 1)[1] for line in listed.stdout.splitlines() if line.strip()]  # "<kind>  <folder>"
    assert folders
    for folder in folders:  # the user takes back the download folder: its files become read-only
        removed = workspace.cli("roots", "remove", folder)
        assert removed.returncode == 0, removed.output
    before = {p: p.read_bytes() for p in webps.values()}
    run = workspace.cli("convert", "--refresh-metadata")
    assert run.returncode == 0, run.output
    assert "trust its folder to rewrite its metadata" in run.stdout  # the reason names this job's action
    assert {p: p.read_bytes() for p in webps.values()} == before  # not one byte rewritten


def test_refresh_gives_the_json_sidecar_the_librarys_tags_and_keeps_the_rest(workspace, fake_civitai):
    webps = converted_library(workspace, fake_civitai)
    image_id, webp = next(iter(webps.items()))
    sidecar = webp.with_suffix(".json")
    before = json.loads(sidecar.read_text(encoding="utf-8"))
    assert before["id"] == image_id and "civitgrab" in before  # the converter's own facts
    votes = [{"id": 901, "name": "retagged later", "type": "Label", "score": 7, "upVotes": 7, "downVotes": 0}]
    with workspace.store() as store:
        store.store_tags(image_id, "test", [parse_tag_vote(t) for t in votes], "api")

    run = workspace.cli("convert", "--refresh-metadata")
    assert run.returncode == 0, run.output
    after = json.loads(sidecar.read_text(encoding="utf-8"))
    assert [t["name"] for t in after["tags"]] == ["retagged later"]
    assert read_file_xmp(webp)["subject"] == ["retagged later"]  # the file and its sidecar agree
    assert {k: v for k, v in after.items() if k != "tags"} == {k: v for k, v in before.items() if k != "tags"}
    assert all(json.loads(w.with_suffix(".json").read_text(encoding="utf-8")).get("tags") is not None
               for w in webps.values())
