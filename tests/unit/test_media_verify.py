from __future__ import annotations

import pytest

from civitgrab_desktop.core.media.sniff import GIF, HTML, JPEG, MOV, MP4, PNG, WEBM, WEBP
from civitgrab_desktop.core.media.verify import VerifyResult, verify_media
from tests.unit.test_media_samples import (
    FFMPEG,
    ebml,
    encoded,
    ffmpeg_video,
    frames,
    mp4_box,
    photo,
    tiny_mp4,
    tiny_webm,
)

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed")
PHOTO = photo((200, 150))


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (encoded(PHOTO, "PNG"), PNG),
        (encoded(PHOTO, "JPEG", quality=90), JPEG),
        (encoded(PHOTO, "WEBP"), WEBP),
        (encoded(PHOTO.convert("P"), "GIF"), GIF),
    ],
)
def test_complete_images_pass_with_their_size(tmp_path, data, kind):
    assert verify_media(data, kind) == VerifyResult(True, "", 200, 150)
    path = tmp_path / f"x{kind.ext}.part"
    path.write_bytes(data)
    assert verify_media(path, kind).ok


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (encoded(PHOTO, "PNG"), PNG),
        (encoded(PHOTO, "JPEG", quality=90), JPEG),
        (encoded(PHOTO, "WEBP"), WEBP),
    ],
)
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95])
def test_truncated_images_fail(data, kind, keep):
    result = verify_media(data[: int(len(data) * keep)], kind)
    assert not result.ok and result.reason


def test_png_with_a_flipped_byte_fails_its_crc():
    data = bytearray(encoded(PHOTO, "PNG"))
    data[len(data) // 2] ^= 0xFF
    assert not verify_media(bytes(data), PNG).ok


def test_animated_images_are_checked_to_the_last_frame():
    anim = frames(6, (64, 48))
    apng = encoded(anim[0], "PNG", save_all=True, append_images=anim[1:], duration=80)
    gif = encoded(anim[0], "GIF", save_all=True, append_images=anim[1:], duration=80)
    for data, kind in ((apng, PNG), (gif, GIF)):
        assert verify_media(data, kind).ok
        assert not verify_media(data[: int(len(data) * 0.8)], kind).ok


def test_wrong_type_and_html_fail():
    png = encoded(PHOTO, "PNG")
    result = verify_media(png, JPEG)
    assert not result.ok and "PNG" in result.reason
    html = b"<!DOCTYPE html><html><body>Rate limited</body></html>"
    assert not verify_media(html, JPEG).ok
    assert not verify_media(html, MP4).ok
    assert not verify_media(html, WEBM).ok
    assert not verify_media(png, HTML).ok


# --- MP4 -------------------------------------------------------------------------------------


def test_hand_built_mp4_passes_with_its_size():
    result = verify_media(tiny_mp4(320, 240), MP4)
    assert result.ok and (result.width, result.height) == (320, 240)
    assert verify_media(tiny_mp4(), MOV).ok


@pytest.mark.parametrize("cut", [1, 10, 40, 100])
def test_truncated_mp4_fails(cut):
    data = tiny_mp4()
    result = verify_media(data[:-cut], MP4)
    assert not result.ok and "truncated" in result.reason


def test_mp4_without_moov_fails():
    data = mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isom") + mp4_box(b"mdat", b"\x00" * 100)
    result = verify_media(data, MP4)
    assert not result.ok and "moov" in result.reason


def test_mp4_with_garbage_after_the_boxes_fails():
    assert not verify_media(tiny_mp4() + b"\x00\x00\x00\x08", MP4).ok
    assert not verify_media(tiny_mp4() + b"\xff" * 16, MP4).ok


@needs_ffmpeg
def test_real_mp4_from_ffmpeg(tmp_path):
    path = ffmpeg_video(tmp_path / "v.mp4", "mpeg4")
    result = verify_media(path, MP4)
    assert result.ok and (result.width, result.height) == (64, 48)
    data = path.read_bytes()
    assert not verify_media(data[: len(data) // 2], MP4).ok
    assert not verify_media(data[:-5], MP4).ok


# --- WebM ------------------------------------------------------------------------------------


def test_hand_built_webm_passes_with_its_size():
    result = verify_media(tiny_webm(320, 240), WEBM)
    assert result.ok and (result.width, result.height) == (320, 240)


@pytest.mark.parametrize("cut", [1, 20, 60])
def test_truncated_webm_fails(cut):
    assert not verify_media(tiny_webm()[:-cut], WEBM).ok


def test_webm_without_tracks_or_clusters_fails():
    header = ebml(0x1A45DFA3, ebml(0x4282, b"webm"))
    assert "Tracks" in verify_media(header + ebml(0x18538067, b""), WEBM).reason
    assert not verify_media(header, WEBM).ok
    assert "not WebM" in verify_media(ebml(0x1A45DFA3, ebml(0x4282, b"mkvx")), WEBM).reason


@needs_ffmpeg
def test_real_webm_from_ffmpeg(tmp_path):
    path = ffmpeg_video(tmp_path / "v.webm", "libvpx")
    result = verify_media(path, WEBM)
    assert result.ok and (result.width, result.height) == (64, 48)
    data = path.read_bytes()
    assert not verify_media(data[: len(data) // 2], WEBM).ok
    assert not verify_media(data[:-3], WEBM).ok
