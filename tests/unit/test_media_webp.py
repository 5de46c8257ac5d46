from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from civitgrab_desktop.core.media.phash import verify_conversion
from civitgrab_desktop.core.media.webp import (
    ConvertError,
    ConvertOutcome,
    build_exif,
    convert_to_webp,
    insert_exif,
    png_parameters,
    read_exif,
)
from civitgrab_desktop.core.media.webp_riff import FLAG_ALPHA, FLAG_EXIF, image_chunks, parse_chunks
from tests.unit.test_media_samples import frames, photo

PARAMETERS = "a cat in a hat, 猫\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 42"
EXIF = build_exif({"id": 1, "username": "bob", "meta": {"prompt": "a cat"}}, [{"name": "cat", "score": 3}]).data
WEBPMUX = shutil.which("webpmux")


def converted(src: Path, tmp_path: Path, **kwargs) -> tuple[Path, ConvertOutcome]:
    dst = tmp_path / (src.stem + ".webp.tmp")
    return dst, convert_to_webp(src, dst, exif=kwargs.pop("exif", EXIF), **kwargs)


def frame_info(path: Path) -> tuple[int, list[int]]:
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # WebP reports a frame's duration once it is decoded
            durations.append(im.info.get("duration"))
        return im.n_frames, durations


# --- PNG parameters --------------------------------------------------------------------------


def test_png_parameters_from_text_chunks(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", PARAMETERS)  # not Latin-1: Pillow writes iTXt
    path = tmp_path / "a.png"
    photo((32, 32)).save(path, pnginfo=info)
    assert png_parameters(path) == PARAMETERS

    latin = PngImagePlugin.PngInfo()
    latin.add_text("parameters", "plain text, Steps: 20")
    photo((32, 32)).save(path, pnginfo=latin)
    assert png_parameters(path) == "plain text, Steps: 20"

    compressed = PngImagePlugin.PngInfo()
    compressed.add_text("parameters", "zipped " * 50, zip=True)
    photo((32, 32)).save(path, pnginfo=compressed)
    assert png_parameters(path) == "zipped " * 50


def test_png_parameters_after_the_image_data_and_absent(tmp_path):
    path = tmp_path / "late.png"
    photo((16, 16)).save(path)
    data = path.read_bytes()
    payload = b"parameters\x00late text"
    chunk = len(payload).to_bytes(4, "big") + b"tEXt" + payload + zlib.crc32(b"tEXt" + payload).to_bytes(4, "big")
    path.write_bytes(data[:-12] + chunk + data[-12:])  # just before IEND
    assert png_parameters(path) == "late text"
    photo((16, 16)).save(path)
    assert png_parameters(path) is None
    photo((16, 16)).save(tmp_path / "x.jpeg")
    assert png_parameters(tmp_path / "x.jpeg") is None


# --- conversion ------------------------------------------------------------------------------


def test_png_with_parameters_converts_with_everything_in_exif(tmp_path):
    src = tmp_path / "101.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", PARAMETERS)
    photo().save(src, pnginfo=info)
    exif = build_exif({"id": 101, "meta": {"prompt": "a cat", "parameters": png_parameters(src)}}, []).data
    dst, outcome = converted(src, tmp_path, exif=exif)
    assert (outcome.width, outcome.height, outcome.frames) == (256, 192, 1)
    assert outcome.src_bytes == src.stat().st_size and outcome.webp_bytes == dst.stat().st_size
    assert read_exif(dst)["user_comment"] == PARAMETERS
    check = verify_conversion(src, dst)
    assert check.same_size and check.distance <= 4


def test_jpeg_converts_close_to_the_source(tmp_path):
    src = tmp_path / "1.jpeg"
    photo((320, 240), seed=3).save(src, quality=92)
    dst, outcome = converted(src, tmp_path, quality=90)
    with Image.open(dst) as im:
        assert im.format == "WEBP" and im.mode == "RGB"
    check = verify_conversion(src, dst)
    assert check.same_size and check.distance <= 4
    assert read_exif(dst)["description"] == "a cat"


def test_rgba_png_keeps_its_alpha(tmp_path):
    src = tmp_path / "rgba.png"
    im = photo().convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    im.save(src)
    dst, _ = converted(src, tmp_path)
    with Image.open(dst) as out:
        assert out.mode == "RGBA"
        assert out.getchannel("A").getextrema()[0] < 10
    assert verify_conversion(src, dst).distance <= 4


def test_palette_and_grey_alpha_modes(tmp_path):
    p_src = tmp_path / "p.png"
    photo().convert("P", palette=Image.Palette.ADAPTIVE).save(p_src, transparency=0)
    la_src = tmp_path / "la.png"
    la = photo().convert("LA")
    la.putalpha(Image.linear_gradient("L").resize(la.size))  # an opaque alpha would be dropped by libwebp
    la.save(la_src)
    for src in (p_src, la_src):
        dst, _ = converted(src, tmp_path)
        with Image.open(dst) as out:
            assert out.mode == "RGBA"


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    src = tmp_path / "grey16.png"
    Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 257).convert("I;16").save(src)
    dst, _ = converted(src, tmp_path, lossless=True)
    with Image.open(dst) as out:
        values = sorted(set(out.convert("L").get_flattened_data()))
    assert len(values) > 50, "clipping to 255 would leave two values"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_animations_stay_animated(tmp_path, fmt):
    anim = frames(5)
    src = tmp_path / f"anim.{fmt.lower()}"
    first = anim[0].convert("RGB") if fmt == "GIF" else anim[0]
    rest = [f.convert("RGB") for f in anim[1:]] if fmt == "GIF" else anim[1:]
    first.save(src, fmt, save_all=True, append_images=rest, duration=[100, 120, 140, 160, 180], loop=0)
    dst, outcome = converted(src, tmp_path)
    assert outcome.frames == 5
    count, durations = frame_info(dst)
    assert count == 5 and durations == [100, 120, 140, 160, 180]
    chunks = [c.fourcc for c in parse_chunks(dst.read_bytes())]
    assert chunks.count(b"ANMF") == 5 and b"EXIF" in chunks
    assert read_exif(dst)["keywords"] == ["cat"]


def test_icc_profile_is_kept(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "icc.jpeg"
    photo().save(src, icc_profile=icc)
    dst, _ = converted(src, tmp_path)
    with Image.open(dst) as out:
        assert out.info.get("icc_profile") == icc


def test_exif_orientation_is_applied(tmp_path):
    src = tmp_path / "rotated.jpeg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown rotated 90 degrees
    photo((300, 200)).save(src, exif=exif, quality=95)
    dst, outcome = converted(src, tmp_path)
    assert (outcome.width, outcome.height) == (200, 300)
    check = verify_conversion(src, dst)
    assert check.same_size and check.distance <= 4


def test_too_large_for_webp(tmp_path):
    src = tmp_path / "wide.png"
    Image.new("L", (16384, 1)).save(src)
    with pytest.raises(ConvertError):
        converted(src, tmp_path)


def test_convert_runs_in_a_worker_process(tmp_path):
    src = tmp_path / "w.png"
    photo((64, 64)).save(src)
    with ProcessPoolExecutor(max_workers=1) as pool:
        outcome = pool.submit(convert_to_webp, src, tmp_path / "w.webp.tmp", exif=EXIF).result(timeout=60)
    assert pickle.loads(pickle.dumps(outcome)) == outcome and outcome.frames == 1


# --- insert_exif -----------------------------------------------------------------------------


def test_insert_exif_changes_tags_not_pixels(tmp_path):
    src = tmp_path / "1.jpeg"
    photo().save(src)
    dst, _ = converted(src, tmp_path)
    os.utime(dst, (1_000_000_000, 1_000_000_000))
    before = image_chunks(parse_chunks(dst.read_bytes()))
    new = build_exif({"id": 1, "meta": {"prompt": "a cat"}}, [{"name": "cat", "score": 3}, {"name": "hat", "score": 1}])
    insert_exif(dst, new.data)
    assert image_chunks(parse_chunks(dst.read_bytes())) == before
    assert read_exif(dst)["keywords"] == ["cat", "hat"]
    assert dst.stat().st_mtime == 1_000_000_000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with Image.open(dst) as im:
        im.load()


@pytest.mark.parametrize("lossless", [False, True])
def test_insert_exif_into_a_simple_format_webp(tmp_path, lossless):
    path = tmp_path / "simple.webp"
    im = photo((40, 30)).convert("RGBA")
    im.putalpha(128)
    im.save(path, "WEBP", lossless=lossless)  # no EXIF, so Pillow may write no VP8X header
    insert_exif(path, EXIF)
    chunks = parse_chunks(path.read_bytes())
    assert chunks[0].fourcc == b"VP8X"
    flags = chunks[0].data[0]
    assert flags & FLAG_EXIF and flags & FLAG_ALPHA
    assert read_exif(path)["artist"] == "bob"
    with Image.open(path) as out:
        assert out.size == (40, 30) and out.mode == "RGBA"
        out.load()


def test_insert_exif_into_an_animation_puts_exif_after_the_frames(tmp_path):
    anim = frames(3)
    path = tmp_path / "anim.webp"
    anim[0].save(path, "WEBP", save_all=True, append_images=anim[1:], duration=100)
    insert_exif(path, EXIF)
    kinds = [c.fourcc for c in parse_chunks(path.read_bytes())]
    assert kinds.index(b"EXIF") > max(i for i, k in enumerate(kinds) if k == b"ANMF")
    assert frame_info(path)[0] == 3


def test_insert_exif_none_removes_it(tmp_path):
    src = tmp_path / "1.png"
    photo((32, 32)).save(src)
    dst, _ = converted(src, tmp_path)
    insert_exif(dst, None)
    chunks = parse_chunks(dst.read_bytes())
    assert b"EXIF" not in [c.fourcc for c in chunks] and not chunks[0].data[0] & FLAG_EXIF
    assert read_exif(dst)["user_comment"] is None


@pytest.mark.skipif(WEBPMUX is None, reason="webpmux not installed")
def test_webpmux_accepts_the_rewritten_file(tmp_path):
    anim = frames(2)
    path = tmp_path / "a.webp"
    anim[0].save(path, "WEBP", save_all=True, append_images=anim[1:], duration=100)
    insert_exif(path, EXIF)
    out = subprocess.run([WEBPMUX, "-info", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "EXIF" in out.stdout
