"""The structure checks a download runs while the bytes stream (core/media/structure.py).

Good files are real Pillow encodes (a reader and writer we did not write); every fault class a
download must reject is tried on each format: truncation, junk after valid magic bytes, an HTML
page, bytes after the end, a flipped byte where the format has a checksum, the wrong format.
"""

from __future__ import annotations

import io
import json
import random

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from civitgrab_desktop.core.media.sniff import JPEG, PNG, WEBP
from civitgrab_desktop.core.media.structure import (
    Structure,
    StructureChecker,
    StructureError,
    check_structure,
)
from tests.unit.test_media_samples import encoded, frames, photo

PHOTO = photo((300, 200))
HTML = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>"


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("parameters", "a lighthouse\nSteps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 300x200")
    info.add_text("prompt", json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}))
    info.add_itxt("workflow", json.dumps({"nodes": [{"id": 3, "type": "KSampler"}] * 50}), zip=True)
    return encoded(PHOTO, "PNG", pnginfo=info)


def exif_bytes() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + "Steps: 20".encode("utf-16-be")  # UserComment
    return exif.tobytes()


def jpeg_with_exif() -> bytes:
    return encoded(PHOTO, "JPEG", quality=90, exif=exif_bytes())


def with_alpha() -> Image.Image:
    im = PHOTO.convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    return im


def animated_webp() -> bytes:
    anim = frames(5, (64, 48))
    return encoded(anim[0], "WEBP", save_all=True, append_images=anim[1:], duration=80, lossless=False)


GOOD = {
    "png rgb": (encoded(PHOTO, "PNG"), PNG, (300, 200)),
    "png with A1111 and ComfyUI text chunks": (png_with_text(), PNG, (300, 200)),
    "png rgba": (encoded(PHOTO.convert("RGBA"), "PNG"), PNG, (300, 200)),
    "png palette": (encoded(PHOTO.convert("P"), "PNG"), PNG, (300, 200)),
    "png 16-bit grey": (encoded(PHOTO.convert("I;16"), "PNG"), PNG, (300, 200)),
    "png interlaced": (encoded(PHOTO, "PNG", interlace=1), PNG, (300, 200)),
    "apng": (encoded(frames(4)[0], "PNG", save_all=True, append_images=frames(4)[1:], duration=50), PNG, (64, 48)),
    "jpeg baseline": (encoded(PHOTO, "JPEG", quality=90), JPEG, (300, 200)),
    "jpeg progressive": (encoded(PHOTO, "JPEG", quality=85, progressive=True), JPEG, (300, 200)),
    "jpeg with exif": (jpeg_with_exif(), JPEG, (300, 200)),
    "jpeg with restart markers": (encoded(PHOTO, "JPEG", restart_marker_blocks=4), JPEG, (300, 200)),
    "jpeg grey": (encoded(PHOTO.convert("L"), "JPEG"), JPEG, (300, 200)),
    "jpeg mpo": (encoded(PHOTO, "MPO", save_all=True, append_images=[photo((300, 200), seed=2)]), JPEG, (300, 200)),
    "webp lossy": (encoded(PHOTO, "WEBP", quality=80), WEBP, (300, 200)),
    "webp lossless": (encoded(PHOTO, "WEBP", lossless=True), WEBP, (300, 200)),
    "webp lossy with alpha (VP8X + ALPH)": (encoded(with_alpha(), "WEBP", quality=80), WEBP, (300, 200)),
    "webp with exif (VP8X)": (encoded(PHOTO, "WEBP", exif=exif_bytes()), WEBP, (300, 200)),
    "webp animated (ANIM + ANMF)": (animated_webp(), WEBP, (64, 48)),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_complete_files_pass_with_their_size_and_pillow_agrees(name):
    data, kind, size = GOOD[name]
    assert check_structure(data, kind) == Structure(*size)
    with Image.open(io.BytesIO(data)) as im:  # a reader we did not write decodes what we pass
        im.load()
        assert im.size == size


@pytest.mark.parametrize("name", list(GOOD))
def test_any_split_of_the_stream_gives_the_same_answer(name):
    data, kind, size = GOOD[name]
    rng = random.Random(name)
    for pieces in ("bytes", "random"):
        checker = StructureChecker(kind)
        pos = 0
        while pos < len(data):
            step = 1 if pieces == "bytes" else rng.randint(1, 5000)
            checker.feed(data[pos : pos + step])
            pos += step
        assert checker.finish() == Structure(*size)


# --- the fault classes ------------------------------------------------------------------------


def rejected(data: bytes, kind) -> str:
    """The reason a check gives; fails the test if the bytes pass."""
    with pytest.raises(StructureError) as err:
        check_structure(data, kind)
    return str(err.value)


@pytest.mark.parametrize("name", list(GOOD))
def test_truncated_files_are_rejected_at_every_cut(name):
    data, kind, _ = GOOD[name]
    cuts = sorted({1, 2, 8, 12, 20, 33, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 2, len(data) - 1})
    for cut in cuts:
        if 0 < cut < len(data):
            rejected(data[:cut], kind)


@pytest.mark.parametrize("name", list(GOOD))
def test_same_length_junk_after_valid_magic_bytes_is_rejected(name):
    # the magic bytes: the signature (PNG 8, JPEG 2, RIFF/WEBP 12) and the first chunk header
    data, kind, _ = GOOD[name]
    rng = random.Random(16)
    for keep in (2, 8, 12, 16, 20):
        junk = data[:keep] + rng.randbytes(len(data) - keep)
        rejected(junk, kind)


@pytest.mark.parametrize("name", [n for n in GOOD if GOOD[n][1] in (PNG, JPEG)])
def test_png_and_jpeg_reject_junk_even_after_intact_headers(name):
    # PNG's CRCs cover every byte; in JPEG, random bytes in the entropy-coded data contain
    # 0xFF pairs that are not valid markers. (WebP has no checksum: junk after a complete frame
    # header is beyond a structure check, see tests/benchmarks/verify_faults.py.)
    data, kind, _ = GOOD[name]
    rng = random.Random(17)
    keep = max(64, len(data) // 4)
    rejected(data[:keep] + rng.randbytes(len(data) - keep), kind)


@pytest.mark.parametrize("name", list(GOOD))
def test_bytes_after_the_end_are_rejected(name):
    data, kind, _ = GOOD[name]
    assert "after" in rejected(data + b"\x00" * 16, kind)
    rejected(data + HTML, kind)


@pytest.mark.parametrize("kind", [PNG, JPEG, WEBP])
def test_an_html_page_is_rejected(kind):
    rejected(HTML, kind)
    rejected(b"", kind)


def test_the_wrong_format_is_rejected():
    png, jpeg, webp = GOOD["png rgb"][0], GOOD["jpeg baseline"][0], GOOD["webp lossy"][0]
    for data, kind in ((png, JPEG), (png, WEBP), (jpeg, PNG), (jpeg, WEBP), (webp, PNG), (webp, JPEG)):
        rejected(data, kind)


def test_png_crcs_catch_any_flipped_byte():
    data = GOOD["png with A1111 and ComfyUI text chunks"][0]
    for pos in (20, 40, len(data) // 3, len(data) // 2, len(data) - 10):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        rejected(bytes(bad), PNG)


def test_png_rules_ihdr_first_idat_present_iend_last():
    data = GOOD["png rgb"][0]
    ihdr_end = 8 + 8 + 13 + 4
    text = encoded(PHOTO, "PNG", pnginfo=_one_text())[ihdr_end:]
    text_chunk = text[: 8 + int.from_bytes(text[:4], "big") + 4]
    assert "IHDR" in rejected(data[:8] + text_chunk + data[8:], PNG)  # a chunk before IHDR
    iend = data[-12:]
    assert "IDAT" in rejected(data[:ihdr_end] + iend, PNG)  # no picture data


def _one_text() -> PngInfo:
    info = PngInfo()
    info.add_text("parameters", "x")
    return info


def test_jpeg_marker_walk_rules():
    data = GOOD["jpeg baseline"][0]
    assert "start-of-image" in rejected(b"\x00" + data[1:], JPEG)
    sos = data.index(b"\xff\xda")
    # the scan without its frame header: SOF0 renamed to an APP segment
    sof = data.index(b"\xff\xc0")
    no_frame = data[:sof] + b"\xff\xe5" + data[sof + 2 :]
    assert "SOF" in rejected(no_frame, JPEG)
    assert data[-2:] == b"\xff\xd9"
    rejected(data[:sos] + b"\xff\xd9", JPEG)  # EOI without a scan
    rejected(data[:-2] + b"\xff\xd8", JPEG)  # ends without EOI


def test_webp_riff_size_must_be_the_file_size():
    data = bytearray(GOOD["webp lossy"][0])
    size = int.from_bytes(data[4:8], "little")
    data[4:8] = (size + 2).to_bytes(4, "little")
    rejected(bytes(data), WEBP)
    data[4:8] = (size - 2).to_bytes(4, "little")
    rejected(bytes(data), WEBP)


def test_webp_frame_headers_are_checked():
    lossy = bytearray(GOOD["webp lossy"][0])
    start = lossy.index(b"VP8 ") + 8
    lossy[start + 3 : start + 6] = b"\x00\x00\x00"  # the VP8 key-frame start code
    assert "start code" in rejected(bytes(lossy), WEBP)
    lossless = bytearray(GOOD["webp lossless"][0])
    lossless[lossless.index(b"VP8L") + 8] = 0x00  # the VP8L signature byte
    assert "signature" in rejected(bytes(lossless), WEBP)


def test_a_broken_stream_fails_while_it_streams():
    data = GOOD["png rgb"][0]
    junk = data[:16] + bytes(len(data) - 16)
    checker = StructureChecker(PNG)
    with pytest.raises(StructureError):
        checker.feed(junk[:4096])  # well before the end: the download stops writing it
