"""The convert job's worker functions: encode, verify, place; one item at a time, in-process."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from civitgrab_desktop.core.media.embed import read_file_xmp
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.media.webp_riff import image_chunks, parse_chunks
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.convert_tasks import EncodeOptions, ImageTask, ItemFailed, TaskResult, VideoTask
from civitgrab_desktop.jobs.convert_worker import _Expected, image_hash, run_task, verify_webp
from tests.unit.test_media_samples import frames, photo

MEDIA = Path(__file__).resolve().parents[1] / "fake_civitai" / "media"
PROMPT = "a lighthouse on a cliff, sunset, 灯台"
PARAMETERS = f"{PROMPT}\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42"
TAGS = [
    {"id": 5, "name": "lighthouse", "type": "Label", "score": 12, "upVotes": 3, "downVotes": 0,
     "automated": True, "needsReview": False},
    {"id": 7, "name": "sunset", "type": "Label", "score": 4, "upVotes": 1, "downVotes": 1,
     "automated": False, "needsReview": True},
]


def record(image_id: int, **extra) -> dict:
    return {"id": image_id, "url": f"https://image.civitai.com/x/{image_id}.jpeg", "username": "alice",
            "createdAt": "2025-03-04T05:06:07.000Z", "nsfwLevel": 1,
            "meta": {"prompt": PROMPT, "negativePrompt": "blurry", "seed": 42}, **extra}


def task(src: Path, out: Path, image_id: int = 1, **kw) -> ImageTask:
    rec = kw.pop("record", None) or record(image_id)
    info = {"id": image_id, "username": "alice", "createdAt": rec["createdAt"], "nsfwLevel": 1,
            "modelVersionName": "v1.0", "meta": rec["meta"]}
    defaults = dict(image_id=image_id, src=str(src), out_dir=str(out), in_place=False, options=EncodeOptions(),
                    info=info, tags=TAGS, record=rec, sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
                    created_at=rec["createdAt"], roots=roots_of(src, out))
    defaults.update(kw)
    return ImageTask(**defaults)


def roots_of(*paths) -> Roots:
    """The test's folder is the folder the user chose (core/roots.py)."""
    return Roots((os.path.commonpath([os.path.dirname(str(p)) for p in paths] + [str(paths[0])]),))


def save(im: Image.Image, path: Path, fmt: str, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **params)
    return path


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*.tmp")]


def test_jpeg_becomes_a_verified_webp_with_exif_and_sidecar(tmp_path):
    src = save(photo((320, 240)), tmp_path / "dl" / "1.jpeg", "JPEG", quality=92)
    out = tmp_path / "out"
    result = run_task(task(src, out))
    assert result.status == "converted", result.reason
    final = out / "1.webp"
    assert result.webp_path == str(final) and result.how == "encoded"
    with Image.open(final) as im:
        assert im.format == "WEBP" and im.size == (320, 240)
    assert result.distance is not None and result.distance <= 4
    assert result.src_phash and result.webp_phash and result.webp_bytes == final.stat().st_size
    exif = read_exif(final)
    assert exif["description"] is None  # not ASCII: EXIF declares the tag ASCII; XMP has it
    assert read_file_xmp(final)["description"] == PROMPT
    assert exif["keywords"] == ["lighthouse", "sunset"]
    assert exif["artist"] == "alice"
    assert exif["datetime"] == "2025:03:04 05:06:07"
    assert exif["user_comment"] == f"{PROMPT}\nNegative prompt: blurry\nSeed: 42"
    record_ = read_file_xmp(final)["record"]
    assert record_["ImageId"] == "1" and json.loads(record_["Meta"])["prompt"] == PROMPT
    assert [(t["name"], t["score"]) for t in record_["tags"]] == [("lighthouse", "12"), ("sunset", "4")]
    sidecar = json.loads((out / "1.json").read_text())
    assert sidecar["id"] == 1 and sidecar["tags"] == TAGS
    assert sidecar["civitgrab"]["convertedFrom"] == "1.jpeg"
    assert src.exists()  # dest mode keeps the original
    assert abs(final.stat().st_mtime - 1741064767) < 2  # createdAt
    assert no_temp_files(tmp_path)


def test_png_parameters_are_copied_verbatim_into_the_user_comment(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", PARAMETERS)
    src = save(photo((200, 200), seed=3), tmp_path / "2.png", "PNG", pnginfo=info)
    result = run_task(task(src, tmp_path / "out", image_id=2))
    assert result.status == "converted", result.reason
    assert read_exif(tmp_path / "out" / "2.webp")["user_comment"] == PARAMETERS
    assert read_file_xmp(tmp_path / "out" / "2.webp")["record"]["ParametersSource"] == "file"
    assert json.loads((tmp_path / "out" / "2.json").read_text())["civitgrab"]["parameters"] == PARAMETERS


def test_webp_original_gets_exif_without_re_encoding(tmp_path):
    src = save(photo((256, 160), seed=4), tmp_path / "3.webp", "WEBP", quality=70)
    result = run_task(task(src, tmp_path / "out", image_id=3))
    assert result.status == "converted" and result.how == "exif-only", result.reason
    final = tmp_path / "out" / "3.webp"
    assert image_chunks(parse_chunks(final.read_bytes())) == image_chunks(parse_chunks(src.read_bytes()))
    assert result.distance == 0
    assert read_exif(final)["keywords"] == ["lighthouse", "sunset"]


def test_webp_original_in_place_is_replaced_by_the_same_picture_with_exif(tmp_path):
    src = save(photo((256, 160), seed=4), tmp_path / "dl" / "3.webp", "WEBP", quality=70)
    before = image_chunks(parse_chunks(src.read_bytes()))
    result = run_task(task(src, src.parent, image_id=3, in_place=True))
    assert result.status == "converted", result.reason
    assert result.original_removed and result.webp_path == str(src)
    assert image_chunks(parse_chunks(src.read_bytes())) == before
    assert read_exif(src)["user_comment"].startswith(PROMPT) and read_file_xmp(src)["description"] == PROMPT


def test_animated_gif_stays_animated(tmp_path):
    first, *rest = frames(5)
    src = tmp_path / "4.gif"
    first.save(src, "GIF", save_all=True, append_images=rest, duration=80, loop=0)
    result = run_task(task(src, tmp_path / "out", image_id=4))
    assert result.status == "converted", result.reason
    with Image.open(tmp_path / "out" / "4.webp") as im:
        assert im.n_frames == 5


def test_exif_orientation_is_applied_and_verified(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    src = save(photo((300, 200), seed=5), tmp_path / "5.jpeg", "JPEG", exif=exif.tobytes())
    result = run_task(task(src, tmp_path / "out", image_id=5))
    assert result.status == "converted", result.reason
    with Image.open(tmp_path / "out" / "5.webp") as im:
        assert im.size == (200, 300)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    pairs = zip(a.tobytes(), b.tobytes(), strict=True)
    return sum(abs(x - y) for x, y in pairs) / (a.width * a.height * len(a.getbands()))


def test_transparent_and_cmyk_sources(tmp_path):
    """The WebP keeps a PNG's transparency (the same alpha, read back by Pillow) and shows a CMYK
    JPEG in its colours, not inverted or dropped to grey."""
    rgba = photo((128, 96), seed=6).convert("RGBA")
    alpha = Image.linear_gradient("L").resize((128, 96))
    rgba.putalpha(alpha)
    png = save(rgba, tmp_path / "6.png", "PNG")
    cmyk_source = photo((128, 96), seed=7).convert("CMYK")
    cmyk = save(cmyk_source, tmp_path / "7.jpeg", "JPEG", quality=95)
    for image_id, src in ((6, png), (7, cmyk)):
        result = run_task(task(src, tmp_path / "out", image_id=image_id))
        assert result.status == "converted", result.reason
    with Image.open(tmp_path / "out" / "6.webp") as im:
        assert im.mode == "RGBA"
        kept = im.getchannel("A")
    assert kept.getextrema() == alpha.getextrema()  # fully transparent to opaque, as in the PNG
    assert _mean_abs_diff(kept, alpha) < 2
    with Image.open(cmyk) as original, Image.open(tmp_path / "out" / "7.webp") as im:
        assert im.mode == "RGB"
        expected = original.convert("RGB")
        assert _mean_abs_diff(im.convert("RGB"), expected) < 8


def test_changed_original_is_not_converted(tmp_path):
    src = save(photo((128, 96)), tmp_path / "8.jpeg", "JPEG")
    stale = task(src, tmp_path / "out", image_id=8, sha256=hashlib.sha256(b"what was downloaded").hexdigest())
    result = run_task(stale)
    assert result.status == "failed"
    assert "changed since it was downloaded" in result.reason
    assert not (tmp_path / "out" / "8.webp").exists() and src.exists()


def test_truncated_original_fails_cleanly(tmp_path):
    src = save(photo((320, 240)), tmp_path / "9.jpeg", "JPEG")
    src.write_bytes(src.read_bytes()[:2000])
    result = run_task(task(src, tmp_path / "out", image_id=9, sha256=None))
    assert result.status == "failed" and "cannot decode the original" in result.reason
    assert not (tmp_path / "out" / "9.webp").exists()
    assert no_temp_files(tmp_path)


def test_missing_original_and_non_images(tmp_path):
    missing = run_task(replace(task(save(photo(), tmp_path / "10.jpeg", "JPEG"), tmp_path, image_id=10),
                               src=str(tmp_path / "gone.jpeg")))
    assert missing.status == "failed" and "missing" in missing.reason
    text = tmp_path / "11.jpeg"
    text.write_bytes(b"not an image at all")
    other = run_task(task(text, tmp_path / "out", image_id=11))
    assert other.status == "skipped" and "not a JPG/PNG/GIF/WebP" in other.reason


def test_verification_rejects_another_picture_or_size(tmp_path):
    path = save(photo((256, 192), seed=1), tmp_path / "a.webp", "WEBP", quality=90)
    with Image.open(path) as im:
        im.load()
        own = image_hash(im)
    assert verify_webp(path, _Expected((256, 192), 1, own), 0) == own
    other = image_hash(Image.effect_mandelbrot((256, 192), (-2, -1.2, 1, 1.2), 60).convert("RGB"))
    with pytest.raises(ItemFailed, match="perceptual hash distance"):
        verify_webp(path, _Expected((256, 192), 1, other), 4)
    with pytest.raises(ItemFailed, match="the WebP is 256x192, the original 512x384"):
        verify_webp(path, _Expected((512, 384), 1, own), 4)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ItemFailed, match="cannot be decoded"):
        verify_webp(path, _Expected((256, 192), 1, own), 4)


def test_verification_rejects_a_webp_whose_metadata_is_not_what_was_built(tmp_path):
    from civitgrab_desktop.core.media.embed import build_metadata

    built = build_metadata({"id": 1, "meta": {"prompt": "a"}}, [{"name": "cat", "score": 1}])
    path = save(photo((256, 192), seed=1), tmp_path / "a.webp", "WEBP", quality=90, exif=built.exif.data,
                xmp=built.xmp)
    with Image.open(path) as im:
        im.load()
        own = image_hash(im)
    assert verify_webp(path, _Expected((256, 192), 1, own), 4, built) == own
    other = build_metadata({"id": 2, "meta": {"prompt": "a"}}, [])
    with pytest.raises(ItemFailed, match="EXIF/XMP are not what was written"):
        verify_webp(path, _Expected((256, 192), 1, own), 4, other)
    save(photo((256, 192), seed=1), path, "WEBP", quality=90, exif=built.exif.data)  # XMP lost
    with pytest.raises(ItemFailed, match="EXIF/XMP are not what was written"):
        verify_webp(path, _Expected((256, 192), 1, own), 4, built)


def test_threshold_decides_between_the_lossy_encode_and_a_lossless_one(tmp_path):
    """Quality 1 moves a detailed picture's pHash: within a loose threshold the lossy WebP is kept;
    past a strict one it is replaced by a lossless WebP (every pixel kept), and the note says so."""
    src = save(Image.effect_mandelbrot((256, 256), (-2, -1.5, 1, 1.5), 200).convert("RGB"),
               tmp_path / "12.png", "PNG")
    loose = replace(task(src, tmp_path / "loose", image_id=12), options=EncodeOptions(quality=1, phash_threshold=64))
    lossy = run_task(loose)
    assert lossy.status == "converted" and lossy.how == "encoded" and lossy.distance > 0 and not lossy.notes
    strict = replace(task(src, tmp_path / "strict", image_id=12), options=EncodeOptions(quality=1, phash_threshold=0))
    result = run_task(strict)
    assert result.status == "converted" and result.how == "encoded-lossless" and result.distance == 0
    assert any("saved as lossless WebP" in n and "above the threshold 0" in n for n in result.notes)
    with Image.open(src) as a, Image.open(tmp_path / "strict" / "12.webp") as b:
        assert a.convert("RGB").tobytes() == b.convert("RGB").tobytes()
    assert src.exists() and no_temp_files(tmp_path)


def test_exif_overflow_keeps_tags_and_settings_and_the_xmp_and_sidecar_keep_everything(tmp_path):
    huge = {"prompt": "猫" * 100_000, "negativePrompt": "n", "seed": 42}
    rec = record(13, meta=huge)
    src = save(photo((128, 96)), tmp_path / "13.jpeg", "JPEG")
    result = run_task(task(src, tmp_path / "out", image_id=13, record=rec))
    assert result.status == "converted", result.reason
    assert "parameters" in result.exif_dropped
    exif = read_exif(tmp_path / "out" / "13.webp")
    assert exif["keywords"] == ["lighthouse", "sunset"]
    assert "cut: the full text is in the file's XMP" in exif["user_comment"]
    assert exif["user_comment"].endswith("Negative prompt: n\nSeed: 42")
    assert read_file_xmp(tmp_path / "out" / "13.webp")["description"] == "猫" * 100_000
    sidecar = json.loads((tmp_path / "out" / "13.json").read_text())
    assert sidecar["meta"]["prompt"] == "猫" * 100_000
    assert sidecar["civitgrab"]["exifDropped"] == list(result.exif_dropped)


def test_in_place_replaces_every_copy_then_removes_the_original(tmp_path):
    src = save(photo((160, 120)), tmp_path / "user" / "14.jpeg", "JPEG")
    linked = tmp_path / "version" / "14.jpeg"
    linked.parent.mkdir()
    os.link(src, linked)
    foreign = save(photo((160, 120), seed=9), tmp_path / "tag" / "14.jpeg", "JPEG")
    result = run_task(task(src, src.parent, image_id=14, in_place=True, copies=(str(linked), str(foreign))))
    assert result.status == "converted", result.reason
    webp, linked_webp = src.with_suffix(".webp"), linked.with_suffix(".webp")
    assert result.original_removed and not src.exists() and not linked.exists()
    assert os.path.samefile(webp, linked_webp)
    assert result.moved_paths == {str(linked): str(linked_webp)}
    assert foreign.exists() and any("not a copy of the original" in n for n in result.notes)
    assert json.loads((linked.parent / "14.json").read_text())["tags"] == TAGS


def test_in_place_run_killed_after_the_removal_is_finished_not_lost(tmp_path):
    src = save(photo((160, 120)), tmp_path / "user" / "15.jpeg", "JPEG")
    t = task(src, src.parent, image_id=15, in_place=True)
    assert run_task(t).status == "converted"
    # The library never heard of it (killed): the rerun finds the WebP and no original.
    again = run_task(t)
    assert again.status == "converted" and again.how == "adopted" and again.original_removed
    assert again.webp_phash and again.notes
    other = replace(t, image_id=16, src=str(src.parent / "16.jpeg"))
    (src.parent / "16.webp").write_bytes((src.parent / "15.webp").read_bytes())
    refused = run_task(other)
    assert refused.status == "failed" and "not written by civitgrab for this image" in refused.reason


def test_adopted_conversion_keeps_the_source_hash_from_its_sidecar(tmp_path):
    src = save(photo((160, 120), seed=5), tmp_path / "user" / "17.jpeg", "JPEG")
    t = task(src, src.parent, image_id=17, in_place=True)
    first = run_task(t)
    assert first.status == "converted" and not src.exists()
    again = run_task(t)  # killed before the library recorded the first one
    assert again.how == "adopted" and again.src_phash == first.src_phash and again.distance == first.distance
    about = json.loads((src.parent / "17.json").read_text())["civitgrab"]
    assert about["sourcePhash"] == first.src_phash and about["convertedFrom"] == "17.jpeg"


def test_webp_original_in_place_killed_before_it_was_recorded_is_adopted(tmp_path):
    src = save(photo((256, 160), seed=4), tmp_path / "dl" / "18.webp", "WEBP", quality=70)
    t = task(src, src.parent, image_id=18, in_place=True)  # sha256 of the download
    first = run_task(t)
    assert first.status == "converted" and src.read_bytes() != b""
    # The file under the original's name is now ours (SHA-256 differs from the download's):
    # not "the original changed", and not converted again.
    again = run_task(t)
    assert again.status == "converted" and again.how == "adopted", again.reason
    assert again.webp_path == str(src) and again.src_phash == again.webp_phash == first.webp_phash
    # A WebP that someone else changed is still refused.
    other = save(photo((256, 160), seed=8), tmp_path / "dl2" / "19.webp", "WEBP", quality=70)
    changed = replace(task(other, other.parent, image_id=19, in_place=True), sha256="0" * 64)
    refused = run_task(changed)
    assert refused.status == "failed" and "changed since it was downloaded" in refused.reason


def test_a_killed_run_s_temp_files_are_removed_when_the_image_is_done_again(tmp_path):
    src = save(photo((160, 120)), tmp_path / "dl" / "24.jpeg", "JPEG")
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".24.webp.0badf00d.tmp", out / ".24.json.k3x9_q2a.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    assert run_task(task(src, out, image_id=24)).status == "converted"
    assert not any(p.exists() for p in stale) and no_temp_files(tmp_path)


def test_moved_video_killed_before_it_was_recorded_is_not_lost(tmp_path):
    src = tmp_path / "dl" / "25.mp4"
    src.parent.mkdir()
    src.write_bytes((MEDIA / "clip_64.mp4").read_bytes())
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    t = VideoTask(25, str(src), str(tmp_path / "out"), True, TAGS, record(25, type="video"), sha,
                  roots=Roots((str(tmp_path),)))
    assert run_task(t).status == "converted" and not src.exists()
    (tmp_path / "out" / ".25.json.k1l2m3n4.tmp").write_text("{half")  # killed writing the sidecar
    again = run_task(t)  # the library still points at the old place
    assert no_temp_files(tmp_path)
    assert again.status == "converted" and again.how == "moved" and again.original_removed, again.reason
    assert again.webp_path == str(tmp_path / "out" / "25.mp4")
    (tmp_path / "out" / "25.mp4").write_bytes(b"not the video")
    assert run_task(t).status == "failed"


@pytest.mark.parametrize("move", [False, True])
def test_video_placed_by_a_killed_run_leaves_no_temp_link(tmp_path, move):
    # rename() of a hard link onto another link of the same file succeeds and does nothing: a
    # rerun that finds the video linked already must not leave its temp link behind.
    src = tmp_path / "dl" / "26.webm"
    src.parent.mkdir()
    src.write_bytes((MEDIA / "clip_64.webm").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    os.link(src, out / "26.webm")  # the killed run's work, not recorded
    t = VideoTask(26, str(src), str(out), move, TAGS, record(26, type="video"),
                  hashlib.sha256(src.read_bytes()).hexdigest(), roots=Roots((str(tmp_path),)))
    result = run_task(t)
    assert result.status == "converted", result.reason
    assert no_temp_files(tmp_path) and (out / "26.webm").read_bytes() == (MEDIA / "clip_64.webm").read_bytes()
    assert src.exists() == (not move) and result.original_removed == move


def test_in_place_rerun_over_replaced_links_leaves_no_temp_link(tmp_path):
    src = save(photo((160, 120)), tmp_path / "user" / "27.jpeg", "JPEG")
    linked = tmp_path / "version" / "27.jpeg"
    linked.parent.mkdir()
    os.link(src, linked)
    t = task(src, src.parent, image_id=27, in_place=True, copies=(str(linked),))
    webp = src.with_suffix(".webp")
    # A killed run: the WebP verified and linked into the other folder, the old link still there.
    assert run_task(replace(t, copies=())).status == "converted"
    src.write_bytes(linked.read_bytes())  # (as if the original had not been removed yet)
    os.link(webp, linked.with_suffix(".webp"))
    (linked.parent / ".27.json.x1y2z3w4.tmp").write_text("{half")  # killed writing the sidecar
    result = run_task(t)
    assert result.status == "converted", result.reason
    assert no_temp_files(tmp_path) and not linked.exists() and not src.exists()
    assert result.moved_paths == {str(linked): str(linked.with_suffix(".webp"))}
    assert os.path.samefile(webp, linked.with_suffix(".webp"))  # relinked to the new encode
    assert json.loads((linked.parent / "27.json").read_text())["tags"] == TAGS
    # Killed again after the original was removed: the adoption finishes the other folder too.
    (linked.parent / "27.json").unlink()
    (src.parent / ".27.json.a1b2c3d4.tmp").write_text("{half")
    adopted = run_task(t)
    assert adopted.how == "adopted" and no_temp_files(tmp_path)
    assert json.loads((linked.parent / "27.json").read_text())["tags"] == TAGS


@pytest.mark.parametrize("move", [False, True])
def test_videos_are_placed_with_their_sidecar(tmp_path, move):
    src = tmp_path / "dl" / "20.mp4"
    src.parent.mkdir()
    src.write_bytes((MEDIA / "clip_64.mp4").read_bytes())
    original = src.read_bytes()
    (src.parent / "20.json").write_text(json.dumps(record(20, type="video")))
    (src.parent / "20_meta.txt").write_text("prompt: a lighthouse")
    result = run_task(VideoTask(20, str(src), str(tmp_path / "out"), move, TAGS, record(20, type="video"),
                                roots=Roots((str(tmp_path),))))
    assert result.status == "converted", result.reason
    placed = tmp_path / "out" / "20.mp4"
    assert placed.read_bytes() == original and result.webp_path == str(placed)
    assert result.original_removed == move and src.exists() == (not move)
    # A moved video takes its sidecars along; a copy leaves the download's folder as it was.
    assert (src.parent / "20.json").exists() == (not move) and (src.parent / "20_meta.txt").exists() == (not move)
    assert (tmp_path / "out" / "20_meta.txt").exists() == move
    if not move:
        assert os.path.samefile(src, placed)
    assert json.loads((tmp_path / "out" / "20.json").read_text())["tags"] == TAGS


def test_damaged_video_is_not_placed(tmp_path):
    src = tmp_path / "21.mp4"
    src.write_bytes((MEDIA / "clip_64.mp4").read_bytes()[:900])
    result = run_task(VideoTask(21, str(src), str(tmp_path / "out"), True, [], record(21), roots=Roots((str(tmp_path),))))
    assert result.status == "failed" and "damaged" in result.reason and src.exists()


def test_tasks_and_results_pickle(tmp_path):
    src = save(photo(), tmp_path / "22.jpeg", "JPEG")
    t = task(src, tmp_path, image_id=22)
    assert pickle.loads(pickle.dumps(t)) == t
    r = TaskResult(22, "converted", moved_paths={"a": "b"}, notes=["x"])
    assert pickle.loads(pickle.dumps(r)) == r


def test_runs_in_a_worker_process(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    from civitgrab_desktop.jobs.convert import pool_context
    from civitgrab_desktop.jobs.convert_worker import init_worker

    src = save(photo(), tmp_path / "23.jpeg", "JPEG")
    ctx = pool_context()
    lifeline, keep = ctx.Pipe(duplex=False)
    try:
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=init_worker, initargs=(lifeline,)) as pool:
            result = pool.submit(run_task, task(src, tmp_path / "out", image_id=23)).result(timeout=120)
            pid = pool.submit(os.getpid).result(timeout=60)
            keep.close()  # this process "dies": the worker must go away on its own
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(pid), "the worker outlived its job process"
    finally:
        lifeline.close()
        keep.close()
    assert result.status == "converted", result.reason


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["still", "alpha", "animated"])
def test_fast_webp_decode_matches_pillow_s_public_path(tmp_path, kind, monkeypatch):
    from civitgrab_desktop.core.media import webp as webp_mod

    path = tmp_path / f"{kind}.webp"
    if kind == "animated":
        first, *rest = frames(4)
        first.save(path, "WEBP", save_all=True, append_images=rest, duration=50, quality=80)
    elif kind == "alpha":
        im = photo((200, 130)).convert("RGBA")
        im.putalpha(Image.linear_gradient("L").resize((200, 130)))
        im.save(path, "WEBP", quality=80)
    else:
        photo((300, 200)).save(path, "WEBP", quality=80)
    data = path.read_bytes()
    fast = webp_mod.decode_webp(data)

    def broken(_data):
        raise AttributeError("no such private API")

    monkeypatch.setattr(webp_mod, "_decode_direct", broken)
    slow = webp_mod.decode_webp(data)
    assert (fast.size, fast.frames) == (slow.size, slow.frames)
    assert image_hash(fast.first) == image_hash(slow.first)
    assert fast.first.convert("RGBA").tobytes() == slow.first.convert("RGBA").tobytes()
    with pytest.raises((OSError, ValueError)):  # truncated
        webp_mod.decode_webp(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not WebP"):
        buf = tmp_path / "x.png"
        photo((20, 20)).save(buf, "PNG")
        webp_mod.decode_webp(buf.read_bytes())
