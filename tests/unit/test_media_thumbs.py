from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from civitgrab_desktop.core.media.thumbs import UnsupportedMedia, make_thumbnail, thumb_cache_path
from tests.unit.test_media_samples import frames, photo


def test_cache_path_is_sharded_by_id(tmp_path):
    assert thumb_cache_path(tmp_path, 123456, 256) == tmp_path / "256" / "456" / "123456.webp"
    assert thumb_cache_path(tmp_path, "7", 128, fmt="jpeg") == tmp_path / "128" / "007" / "7.jpeg"
    with pytest.raises(ValueError):
        thumb_cache_path(tmp_path, -1, 128)


def test_jpeg_thumbnail_fits_the_box(tmp_path):
    src = tmp_path / "big.jpeg"
    photo((2000, 1500)).save(src, quality=90)
    dst = thumb_cache_path(tmp_path / "cache", 1, 256)
    assert make_thumbnail(src, dst, 256) == (256, 192)
    with Image.open(dst) as im:
        assert im.format == "WEBP" and im.size == (256, 192)
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temp file left


def test_png_with_alpha_and_a_box(tmp_path):
    src = tmp_path / "a.png"
    im = photo((600, 300)).convert("RGBA")
    im.putalpha(100)
    im.save(src)
    dst = tmp_path / "t.webp"
    assert make_thumbnail(src, dst, (100, 100)) == (100, 50)
    with Image.open(dst) as out:
        assert out.mode == "RGBA"


def test_jpeg_output_flattens_alpha(tmp_path):
    src = tmp_path / "a.png"
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(src)
    dst = tmp_path / "t.jpeg"
    make_thumbnail(src, dst, 64)
    with Image.open(dst) as out:
        assert out.format == "JPEG" and out.getpixel((5, 5))[0] > 240


def test_orientation_is_applied(tmp_path):
    src = tmp_path / "r.jpeg"
    exif = Image.Exif()
    exif[0x0112] = 6
    photo((400, 200)).save(src, exif=exif)
    assert make_thumbnail(src, tmp_path / "t.webp", (100, 200)) == (100, 200)


def test_animated_source_gives_its_first_frame(tmp_path):
    src = tmp_path / "a.gif"
    anim = [f.convert("RGB") for f in frames(3)]
    anim[0].save(src, save_all=True, append_images=anim[1:])
    assert make_thumbnail(src, tmp_path / "t.webp", 32) == (32, 24)


def test_videos_and_non_images_are_refused(tmp_path):
    video = tmp_path / "1.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypisom")
    with pytest.raises(UnsupportedMedia, match="video"):
        make_thumbnail(video, tmp_path / "t.webp", 64)
    junk = tmp_path / "2.png"
    junk.write_bytes(b"<html></html>")
    with pytest.raises(UnsupportedMedia):
        make_thumbnail(junk, tmp_path / "t.webp", 64)
    assert not Path(tmp_path / "t.webp").exists()
