from __future__ import annotations

import io

import piexif
import piexif.helper
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from civitgrab_desktop.core.civitai.records import parse_image
from civitgrab_desktop.core.media.a1111 import split_parameters
from civitgrab_desktop.core.media.embed import source_metadata
from civitgrab_desktop.core.media.exif import (
    CUT_MARKER,
    EXIF_MAX_BYTES,
    build_exif,
    exif_info_from_record,
    read_exif,
)
from tests.unit.test_media_samples import photo

INFO = {
    "id": 101,
    "username": "alice_9",
    "modelName": "DreamShaper",
    "modelVersionName": "8",
    "checkpoint": "dreamshaper_8",
    "baseModel": "SD 1.5",
    "nsfwLevel": 1,
    "createdAt": "2024-03-05T07:08:09.123Z",
    "url": "https://image.example/101.jpeg?token=SECRET",
    "width": 512,
    "height": 768,
    "meta": {"prompt": "a cat, \\(best\\)", "negativePrompt": "blurry", "steps": 20, "sampler": "Euler a",
             "cfgScale": 7, "seed": 5},
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
    assert got["artist"] == "alice_9"
    assert got["keywords"] == ["cat", "semi,colon"]
    assert got["datetime"] == "2024:03:05 07:08:09"
    assert got["software"] == "civitgrab"
    assert got["user_comment"] == ("a cat, \\(best\\)\nNegative prompt: blurry\n"
                                   "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x768, Model: dreamshaper_8")


def test_user_comment_is_exif_unicode_in_the_blocks_byte_order():
    data = build_exif(dict(INFO, meta={**INFO["meta"], "prompt": "猫 🐱"}), TAGS).data
    assert data[6:8] == b"MM"  # piexif writes big-endian blocks...
    raw = piexif.load(data)["Exif"][piexif.ExifIFD.UserComment]
    assert raw[:8] == b"UNICODE\x00"
    assert raw[8:].decode("utf-16-be").startswith("猫 🐱\nNegative prompt: blurry")  # ...so UTF-16BE


def test_the_source_parameters_are_copied_verbatim():
    text = "masterpiece,  a fox\nNegative prompt: x\nSteps: 9, Sampler: Foo, CFG scale: 1.5, Seed: 1, Custom: \"a, b\""
    got = read_exif(build_exif(INFO, TAGS, parameters=text).data)
    assert got["user_comment"] == text


def test_non_ascii_prompts_and_users_stay_out_of_the_ascii_tags():
    info = dict(INFO, username="ålice_猫", meta={"prompt": "日本語の猫"})
    got = read_exif(build_exif(info, TAGS).data)
    assert got["description"] is None and got["artist"] is None  # XMP has them
    assert got["user_comment"].startswith("日本語の猫")


def test_xp_keywords_are_utf16le():
    exif = piexif.load(build_exif(INFO, [{"name": "猫", "score": 1}]).data)
    assert bytes(exif["0th"][piexif.ImageIFD.XPKeywords]) == "猫".encode("utf-16-le") + b"\x00\x00"


def test_missing_fields_are_left_out():
    got = read_exif(build_exif({"id": 5}, None).data)
    assert got["description"] is None and got["artist"] is None and got["datetime"] is None
    assert got["keywords"] == [] and got["user_comment"] is None and got["comfy"] == {}


def test_info_from_a_record():
    rec = parse_image(
        {"id": 7, "url": "https://x.example/7.png", "username": "bob", "nsfwLevel": 4, "baseModel": "SDXL 1.0",
         "createdAt": "2025-01-01T00:00:00Z", "meta": {"prompt": "p", "Model": "m"}}
    )
    info = exif_info_from_record(rec, model_name="Model M", parameters="p\nSteps: 1")
    assert info["checkpoint"] == "m" and info["modelName"] == "Model M" and info["nsfwLevel"] == 4
    assert info["meta"]["parameters"] == "p\nSteps: 1"
    assert rec.meta == {"prompt": "p", "Model": "m"}  # the record is not changed


def test_a_100kb_prompt_is_cut_with_a_marker_and_the_settings_stay():
    prompt = "猫 " * 50_000
    built = build_exif(dict(INFO, meta={**INFO["meta"], "prompt": prompt}), TAGS)
    assert built.overflow and "parameters" in built.dropped
    assert len(built.data) <= EXIF_MAX_BYTES
    assert built.parameters.startswith(prompt.strip())  # whole, for the XMP
    comment = read_exif(built.data)["user_comment"]
    got_prompt, negative, settings_pairs = split_parameters(comment)
    assert got_prompt.endswith(CUT_MARKER.strip()) and got_prompt.startswith("猫 猫 猫")
    assert negative == "blurry" and dict(settings_pairs)["Seed"] == "5"


def test_five_thousand_tags_fit_with_a_note():
    tags = [{"id": i, "name": f"tag number {i}", "score": i} for i in range(5000)]
    built = build_exif(INFO, tags)
    assert built.overflow and "keywords" in built.dropped and len(built.data) <= EXIF_MAX_BYTES
    keywords = read_exif(built.data)["keywords"]
    assert keywords[:3] == ["tag number 0", "tag number 1", "tag number 2"]
    assert keywords[-1].startswith("… (+") and "more tags in the file's XMP" in keywords[-1]


def test_lone_surrogates_nul_and_control_characters_never_fail():
    info = dict(INFO, username="bad\ud800user", meta={"prompt": "a\x00b\ud83d c\x07d\x1b", "negativePrompt": "\udfff"})
    built = build_exif(info, [{"name": "x\ud800", "score": 1}])
    got = read_exif(built.data)
    assert got["user_comment"].startswith("ab\ufffd c\x07d\x1b")
    assert got["keywords"] == ["x\ufffd"]


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
@given(prompt=text_without_nul, names=st.lists(tag_name, max_size=15))
def test_exif_round_trip_through_a_real_webp(prompt, names):
    tags = [{"name": n, "score": i} for i, n in enumerate(names)]
    built = build_exif({"id": 1, "meta": {"prompt": prompt}}, tags)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "WEBP", exif=built.data)
    got = read_exif(buf.getvalue())
    assert got["user_comment"] == (prompt.strip() or None)
    assert got["keywords"] == names


@pytest.mark.parametrize("created", ["2024-03-05T07:08:09+02:00", "2024-03-05T05:08:09", "2024-03-05T05:08:09.5Z"])
def test_datetime_is_utc(created):
    assert read_exif(build_exif({"createdAt": created}, []).data)["datetime"] == "2024:03:05 05:08:09"


def test_source_parameters_from_a_jpeg_user_comment(tmp_path):
    params = "a cat, 猫\nSteps: 20, Sampler: Euler a"
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(params, "unicode")}})
    path = tmp_path / "a1111.jpeg"
    photo((16, 16)).save(path, exif=exif)
    assert source_metadata(path).parameters == params
    plain = tmp_path / "plain.png"
    photo((16, 16)).save(plain)
    assert source_metadata(plain).parameters is None
