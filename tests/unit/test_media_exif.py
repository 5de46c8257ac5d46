from __future__ import annotations

import io
import json

import piexif
import piexif.helper
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from civitgrab_desktop.core.civitai.records import parse_image
from civitgrab_desktop.core.media.exif import (
    EXIF_MAX_BYTES,
    build_exif,
    embedded_parameters,
    exif_info_from_record,
    read_exif,
)
from tests.unit.test_media_samples import photo

INFO = {
    "id": 101,
    "username": "ålice_猫",
    "modelName": "DreamShaper",
    "modelVersionName": "8",
    "checkpoint": "dreamshaper_8",
    "baseModel": "SD 1.5",
    "nsfwLevel": 1,
    "createdAt": "2024-03-05T07:08:09.123Z",
    "url": "https://image.example/101.jpeg?token=SECRET",
    "meta": {"prompt": "a cat, 日本語, \\(best\\)", "negativePrompt": "blurry", "steps": 20, "parameters": "a cat\nSteps: 20"},
}
TAGS = [
    {"id": 1, "name": "cat", "type": "Label", "score": 12, "upVotes": 13, "downVotes": 1, "automated": True},
    {"id": 2, "name": "semi;colon", "score": 3},
]


def test_round_trip_through_exif_bytes():
    built = build_exif(INFO, TAGS)
    assert not built.overflow and built.data.startswith(b"Exif\x00\x00")
    got = read_exif(built.data)
    assert got["description"] == INFO["meta"]["prompt"]
    assert got["artist"] == "ålice_猫"
    assert got["keywords"] == ["cat", "semi,colon"]
    assert got["datetime"] == "2024:03:05 07:08:09"
    assert got["software"] == "civitgrab"
    comment = got["user_comment"]
    assert comment["civitgrab"] == 1
    assert comment["meta"] == INFO["meta"]  # including the PNG parameters text
    assert comment["tags"][0] == TAGS[0]
    assert comment["url"] == "https://image.example/101.jpeg"  # no API key in files


def test_user_comment_is_plain_ascii_json():
    exif = piexif.load(build_exif(INFO, TAGS).data)
    raw = exif["Exif"][piexif.ExifIFD.UserComment]
    assert raw.startswith(b"ASCII\x00\x00\x00")
    assert raw[8:].isascii()
    assert json.loads(raw[8:])["username"] == "ålice_猫"


def test_xp_keywords_are_utf16le():
    exif = piexif.load(build_exif(INFO, [{"name": "猫", "score": 1}]).data)
    assert bytes(exif["0th"][piexif.ImageIFD.XPKeywords]) == "猫".encode("utf-16-le") + b"\x00\x00"


def test_missing_fields_are_left_out():
    got = read_exif(build_exif({"id": 5}, None).data)
    assert got["description"] is None and got["artist"] is None and got["datetime"] is None
    assert got["keywords"] == [] and got["user_comment"] == {"civitgrab": 1, "id": 5, "tags": []}


def test_info_from_a_record():
    rec = parse_image(
        {"id": 7, "url": "https://x.example/7.png", "username": "bob", "nsfwLevel": 4, "baseModel": "SDXL 1.0",
         "createdAt": "2025-01-01T00:00:00Z", "meta": {"prompt": "p", "Model": "m"}}
    )
    info = exif_info_from_record(rec, model_name="Model M", parameters="p\nSteps: 1")
    assert info["checkpoint"] == "m" and info["modelName"] == "Model M" and info["nsfwLevel"] == 4
    assert info["meta"]["parameters"] == "p\nSteps: 1"
    assert rec.meta == {"prompt": "p", "Model": "m"}  # the record is not changed


def test_overflow_drops_bulky_meta_first():
    info = dict(INFO, meta={**INFO["meta"], "parameters": "x" * 70_000, "comfy": {"nodes": ["n"] * 5000}})
    built = build_exif(info, TAGS)
    assert built.overflow and built.dropped == ("meta",)
    assert len(built.data) <= EXIF_MAX_BYTES
    got = read_exif(built.data)
    assert got["user_comment"]["meta"] == {"prompt": INFO["meta"]["prompt"], "negativePrompt": "blurry"}
    assert got["user_comment"]["tags"] == TAGS
    assert got["description"] == INFO["meta"]["prompt"]


def test_overflow_then_drops_tag_vote_details():
    tags = [
        {"id": i, "name": f"tag number {i}", "type": "UserGenerated", "score": i, "upVotes": i, "downVotes": 0,
         "automated": False, "needsReview": False}
        for i in range(900)
    ]
    built = build_exif(INFO, tags)
    assert built.overflow and built.dropped == ("meta", "tag_votes")
    got = read_exif(built.data)
    assert got["user_comment"]["tags"][5] == {"name": "tag number 5", "score": 5}
    assert len(got["keywords"]) == 900
    assert got["user_comment"]["meta"]["prompt"] == INFO["meta"]["prompt"]


def test_absurd_input_still_fits():
    info = dict(INFO, meta={"prompt": "猫" * 40_000, "negativePrompt": "n" * 40_000})
    tags = [{"name": "t" * 50 + str(i), "score": i} for i in range(3000)]
    built = build_exif(info, tags)
    assert built.overflow and len(built.data) <= EXIF_MAX_BYTES
    assert read_exif(built.data)["description"].startswith("猫" * 100)


def test_read_exif_of_a_file_without_exif(tmp_path):
    path = tmp_path / "plain.webp"
    photo((16, 16)).save(path, "WEBP")
    assert read_exif(path)["user_comment"] is None
    jpeg = tmp_path / "plain.jpeg"
    photo((16, 16)).save(jpeg, "JPEG")
    assert read_exif(jpeg)["keywords"] == []


text_without_nul = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=300)
tag_name = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00;"), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(prompt=text_without_nul, username=text_without_nul, names=st.lists(tag_name, max_size=15))
def test_exif_round_trip_through_a_real_webp(prompt, username, names):
    tags = [{"name": n, "score": i} for i, n in enumerate(names)]
    built = build_exif({"id": 1, "username": username, "meta": {"prompt": prompt}}, tags)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "WEBP", exif=built.data)
    got = read_exif(buf.getvalue())
    assert got["description"] == (prompt or None)
    assert got["artist"] == (username or None)
    assert got["keywords"] == names
    assert got["user_comment"]["tags"] == tags
    assert got["user_comment"]["meta"]["prompt"] == prompt


@pytest.mark.parametrize("created", ["2024-03-05T07:08:09+02:00", "2024-03-05T05:08:09", "2024-03-05T05:08:09.5Z"])
def test_datetime_is_utc(created):
    assert read_exif(build_exif({"createdAt": created}, []).data)["datetime"] == "2024:03:05 05:08:09"


def test_embedded_parameters_from_a_jpeg_user_comment(tmp_path):
    params = "a cat, 猫\nSteps: 20, Sampler: Euler a"
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(params, "unicode")}})
    path = tmp_path / "a1111.jpeg"
    photo((16, 16)).save(path, exif=exif)
    assert embedded_parameters(path) == params
    ours = tmp_path / "ours.webp"
    photo((16, 16)).save(ours, "WEBP", exif=build_exif(INFO, TAGS).data)
    assert embedded_parameters(ours) is None
    plain = tmp_path / "plain.png"
    photo((16, 16)).save(plain)
    assert embedded_parameters(plain) is None
