"""TagsJob's parts that need no network: parameters, the tag form written to files, and the file
writer (sidecars next to every copy, the WebP's EXIF rewritten in place)."""

from __future__ import annotations

import json
from pathlib import Path

import piexif
import piexif.helper
import pytest
from PIL import Image

from civitgrab_desktop.core.media.embed import read_file_xmp
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.media.webp_riff import image_chunks, parse_chunks
from civitgrab_desktop.core.model import TagVote
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.tags import TagFiles, TagsParams, _tag_dict, write_tag_files


def test_params_round_trip_and_checks():
    p = TagsParams(method="browser", workers=4, limit=10, retag=True, max_age_days=30, browser_path="/x/chrome")
    assert TagsParams.from_dict({**p.to_dict(), "unknown": 1}) == p
    assert TagsParams.from_dict({}) == TagsParams()
    assert TagsParams().method == "auto" and TagsParams().workers == 8
    assert TagsParams(workers=100).workers == 32 and TagsParams(workers=0).workers == 8
    with pytest.raises(ValueError, match="method"):
        TagsParams(method="scrape")


API_TAG = TagVote(id=5133, name="1girl", type="Label", score=15, up_votes=3, down_votes=1, automated=True,
                  needs_review=False, concrete=True, nsfw_level=1)
PAGE_TAG = TagVote(id=5133, name="woman", score=15, from_page=True)


def test_tag_form_for_files():
    assert _tag_dict(API_TAG, None, "api") == {
        "id": 5133, "name": "1girl", "type": "Label", "score": 15, "upVotes": 3, "downVotes": 1,
        "automated": True, "needsReview": False, "concrete": True, "nsfwLevel": 1,
    }
    # A page-read tag: the library's canonical name and type when it knows the id; nothing the
    # page does not show.
    known = {"id": 5133, "name": "1girl", "type": "Label"}
    assert _tag_dict(PAGE_TAG, known, "browser") == {
        "id": 5133, "name": "1girl", "type": "Label", "score": 15, "needsReview": False, "concrete": True,
    }
    assert _tag_dict(PAGE_TAG, None, "browser") == {
        "id": 5133, "name": "woman", "score": 15, "needsReview": False, "concrete": True,
    }
    # The browser method's usual source, the page's own tRPC answer, is as complete as the API's.
    assert _tag_dict(API_TAG, None, "browser") == _tag_dict(API_TAG, None, "api")


RECORD = {"id": 77, "url": "https://image.civitai.com/x/u/original=true/a.png", "username": "alice",
          "meta": {"prompt": "a cat"}}
INFO = {"id": 77, "username": "alice", "createdAt": "2025-01-02T03:04:05.000Z", "meta": {"prompt": "a cat"},
        "modelVersionName": "v1"}
TAGS = [{"id": 1, "name": "cat", "score": 9}, {"id": 2, "name": "sitting", "score": 3}]


def make_webp(path: Path, info: dict) -> None:
    """A WebP as civitgrab's first format wrote it: JSON in an ASCII UserComment."""
    comment = json.dumps({"civitgrab": 1, **info, "tags": []})
    exif = piexif.dump({"0th": {piexif.ImageIFD.Software: b"civitgrab"},
                        "Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(comment, "ascii")}})
    Image.new("RGB", (16, 12), (200, 30, 40)).save(path, "WEBP", quality=80, exif=exif)


def chosen(folder: Path) -> Roots:
    """The test's folder is a folder the user chose (core/roots.py)."""
    return Roots((str(folder),))


def test_files_outside_the_chosen_folders_are_left_alone(tmp_path):
    inside, outside = tmp_path / "dl", tmp_path / "imported"
    inside.mkdir()
    outside.mkdir()
    for folder in (inside, outside):
        (folder / "77.png").write_bytes(b"x")
    (outside / "77.json").write_text('{"id": 77}')
    webp = outside / "77.webp"
    make_webp(webp, INFO)
    before = {p: p.read_bytes() for p in outside.iterdir()}
    plan = TagFiles(77, [str(inside / "77.png"), str(outside / "77.png")], RECORD, TAGS, str(webp), INFO, chosen(inside))
    assert write_tag_files(plan) == []
    assert json.loads((inside / "77.json").read_text())["tags"] == TAGS
    assert {p: p.read_bytes() for p in outside.iterdir()} == before


def test_sidecars_next_to_every_copy(tmp_path):
    a, b, gone = tmp_path / "a", tmp_path / "b", tmp_path / "gone"
    a.mkdir()
    b.mkdir()
    (a / "77.png").write_bytes(b"x")
    (b / "77.png").write_bytes(b"x")
    (a / "77.json").write_text(json.dumps({"id": 77, "kept": True, "tags": [{"id": 9, "name": "old"}]}))
    plan = TagFiles(77, [str(a / "77.png"), str(b / "77.png"), str(gone / "77.png")], RECORD, TAGS, None, INFO,
                    chosen(tmp_path))
    assert write_tag_files(plan) == []
    first = json.loads((a / "77.json").read_text())
    assert first == {"id": 77, "kept": True, "tags": TAGS}  # only "tags" changed
    second = json.loads((b / "77.json").read_text())  # missing: written from the record
    assert second["url"] == RECORD["url"] and second["tags"] == TAGS
    assert not gone.exists()  # no folder is created for a file that is not there


def test_sidecar_missing_without_a_record_is_left_alone(tmp_path):
    (tmp_path / "77.png").write_bytes(b"x")
    assert write_tag_files(TagFiles(77, [str(tmp_path / "77.png")], None, TAGS, None, INFO, chosen(tmp_path))) == []
    assert not (tmp_path / "77.json").exists()


def test_webp_of_the_first_format_gets_the_tags_and_the_new_metadata_without_reencoding(tmp_path):
    webp = tmp_path / "77.webp"
    old_info = {**INFO, "modelName": "Anime XL", "meta": {"prompt": "a cat", "parameters": "a cat\nSteps: 20"}}
    make_webp(webp, old_info)
    pixels = image_chunks(parse_chunks(webp.read_bytes()))
    plan = TagFiles(77, [str(webp)], RECORD, TAGS, str(webp), INFO, chosen(tmp_path))
    assert write_tag_files(plan) == []
    exif = read_exif(webp)
    assert exif["keywords"] == ["cat", "sitting"]
    # what the converter found in the source file is kept, verbatim
    assert exif["user_comment"] == "a cat\nSteps: 20"
    assert exif["description"] == "a cat" and exif["artist"] == "alice"
    xmp = read_file_xmp(webp)
    assert xmp["subject"] == ["cat", "sitting"] and xmp["record"]["ImageId"] == "77"
    assert xmp["record"]["ParametersSource"] == "file"
    assert image_chunks(parse_chunks(webp.read_bytes())) == pixels
    assert json.loads((tmp_path / "77.json").read_text())["tags"] == TAGS


def test_file_problems_are_reported_not_raised(tmp_path):
    webp = tmp_path / "77.webp"
    webp.write_bytes(b"RIFF\x04\x00\x00\x00WEBPjunk")
    blocked = tmp_path / "77.json"
    blocked.mkdir()  # a folder where the sidecar should be
    problems = write_tag_files(TagFiles(77, [str(webp)], RECORD, TAGS, str(webp), INFO, chosen(tmp_path)))
    assert len(problems) == 2
    assert any("77.json" in p for p in problems) and any("77.webp" in p for p in problems)


def test_a_sidecar_nested_too_deeply_is_rewritten_not_a_crash(tmp_path):
    (tmp_path / "77.png").write_bytes(b"x")
    (tmp_path / "77.json").write_text("[" * 100_000 + "]" * 100_000)
    problems = write_tag_files(TagFiles(77, [str(tmp_path / "77.png")], RECORD, TAGS, None, INFO, chosen(tmp_path)))
    assert problems == []  # unreadable like any broken sidecar: written again from the record
    assert json.loads((tmp_path / "77.json").read_text())["tags"] == TAGS
