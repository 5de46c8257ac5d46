from __future__ import annotations

import pytest

from civitgrab_desktop.core.media.sniff import GIF, HTML, JPEG, MKV, MOV, MP4, PNG, WEBM, WEBP, detect_type
from tests.unit.test_media_samples import encoded, frames, photo, tiny_mp4, tiny_webm

PNG_HEAD = encoded(photo((8, 8)), "PNG")[:64]
JPEG_HEAD = encoded(photo((8, 8)), "JPEG")[:64]
WEBP_HEAD = encoded(photo((8, 8)), "WEBP")[:64]
GIF_HEAD = encoded(frames(1)[0], "GIF")[:64]


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/png", PNG),
        ("image/jpeg", JPEG),
        ("image/jpg", JPEG),
        ("IMAGE/JPEG; charset=binary", JPEG),
        ("image/webp", WEBP),
        ("image/gif", GIF),
        ("video/mp4", MP4),
        ("video/webm", WEBM),
        ("video/quicktime", MOV),
        ("text/html; charset=utf-8", HTML),
    ],
)
def test_content_type_decides_when_the_bytes_say_nothing(content_type, expected):
    assert detect_type(content_type, b"") == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG_HEAD, PNG),
        (JPEG_HEAD, JPEG),
        (WEBP_HEAD, WEBP),
        (GIF_HEAD, GIF),
        (tiny_mp4()[:64], MP4),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", MOV),
        (tiny_webm()[:64], WEBM),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", MKV),
    ],
)
def test_magic_bytes_without_content_type(head, expected):
    assert detect_type(None, head) == expected
    assert detect_type("application/octet-stream", head) == expected
    assert detect_type("binary/octet-stream", head) == expected


def test_bytes_win_over_a_wrong_content_type():
    assert detect_type("image/jpeg", PNG_HEAD) == PNG
    assert detect_type("image/png", WEBP_HEAD) == WEBP
    assert detect_type("video/mp4", tiny_webm()[:64]) == WEBM


def test_container_family_keeps_the_header_word():
    assert detect_type("video/quicktime", tiny_mp4()[:64]) == MOV
    assert detect_type("video/mp4", b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == MP4


@pytest.mark.parametrize(
    "head",
    [b"<!DOCTYPE html><html>", b"\n  <html lang='en'>", b"\xef\xbb\xbf<!doctype html>", b"<HEAD><title>x"],
)
def test_html_is_its_own_result_whatever_the_header(head):
    assert detect_type("image/jpeg", head) is HTML
    assert detect_type(None, head) is HTML
    assert HTML.kind == "html"


def test_html_content_type_with_real_image_bytes_is_the_image():
    assert detect_type("text/html", PNG_HEAD) == PNG


@pytest.mark.parametrize(
    "head",
    [b"", b'{"error": "not found"}', b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", b"hello world"],
)
def test_unknown_is_none(head):
    assert detect_type(None, head) is None

