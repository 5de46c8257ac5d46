from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civitgrab_desktop.core.organize.sidecars import (
    SidecarError,
    read_json_sidecar,
    read_meta_txt,
    update_json_sidecar_tags,
    write_json_sidecar,
    write_meta_txt,
    write_no_meta_txt,
)
from civitgrab_desktop.core.redact import scrub_secrets

RECORD = {
    "id": 101,
    "url": "https://image.example/abc/original=true/101.jpeg?token=SECRET123",
    "username": "ålice",
    "meta": {"prompt": "猫, see https://site.example/p?a=1&token=SECRET123&b=2 now", "steps": 20},
}
TAGS = [{"id": 5, "name": "cat", "score": 12, "upVotes": 13, "downVotes": 1}]


def test_scrub_secrets_removes_token_params_everywhere():
    data = scrub_secrets({"u": "https://x.example/a?token=k&x=1", "l": ["http://y.example/?API_KEY=k"], "n": 3})
    assert data == {"u": "https://x.example/a?x=1", "l": ["http://y.example/"], "n": 3}
    assert scrub_secrets("no url token=abc") == "no url token=abc"


def test_json_sidecar_holds_the_record_and_tags_but_no_key(tmp_path):
    path = tmp_path / "101.json"
    write_json_sidecar(path, RECORD, tags=TAGS, extra={"sha256": "ab"})
    text = path.read_text(encoding="utf-8")
    assert "SECRET123" not in text
    assert "ålice" in text and "猫" in text  # real UTF-8, not \\u escapes
    data = read_json_sidecar(path)
    assert data["tags"] == TAGS and data["sha256"] == "ab" and data["id"] == 101
    assert data["meta"]["prompt"] == "猫, see https://site.example/p?a=1&b=2 now"
    assert list(data)[:4] == ["id", "url", "username", "meta"]  # API order kept
    assert [p.name for p in tmp_path.iterdir()] == ["101.json"]  # no temp file left


def test_json_sidecar_without_tags_has_no_tags_key(tmp_path):
    write_json_sidecar(tmp_path / "1.json", {"id": 1})
    assert "tags" not in read_json_sidecar(tmp_path / "1.json")


def test_update_tags_keeps_everything_else(tmp_path):
    path = tmp_path / "101.json"
    write_json_sidecar(path, RECORD, extra={"sha256": "ab"})
    update_json_sidecar_tags(path, TAGS)
    data = read_json_sidecar(path)
    assert data["tags"] == TAGS and data["sha256"] == "ab" and data["username"] == "ålice"


def test_update_tags_creates_a_missing_sidecar_from_the_record(tmp_path):
    path = tmp_path / "101.json"
    with pytest.raises(FileNotFoundError):
        update_json_sidecar_tags(path, TAGS)
    update_json_sidecar_tags(path, TAGS, record_raw=RECORD)
    assert read_json_sidecar(path)["tags"] == TAGS


def test_update_tags_repairs_a_corrupt_sidecar_only_with_a_record(tmp_path):
    path = tmp_path / "101.json"
    path.write_bytes(b'{"id": 101, "ur')
    with pytest.raises(SidecarError):
        update_json_sidecar_tags(path, TAGS)
    update_json_sidecar_tags(path, TAGS, record_raw=RECORD)
    assert read_json_sidecar(path)["id"] == 101


# --- _meta.txt -------------------------------------------------------------------------------


def test_meta_txt_is_one_line_per_key_in_api_order(tmp_path):
    meta = {
        "prompt": "a cat\nModel: evil\r\nmore",
        "Model": "dreamshaper",
        "civitaiResources": [{"type": "checkpoint", "modelVersionName": "v1"}],
        "steps": 20,
        "cfgScale": 7.5,
        "nsfw": False,
        "seed": None,
    }
    path = tmp_path / "101_meta.txt"
    write_meta_txt(path, meta)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split(":", 1)[0] for line in lines] == list(meta)
    assert re.findall(r"(?m)^Model:\s*(.+?)\s*$", path.read_text(encoding="utf-8")) == ["dreamshaper"]
    assert lines[0] == "prompt: a cat\\nModel: evil\\r\\nmore"
    assert lines[2] == 'civitaiResources: [{"type":"checkpoint","modelVersionName":"v1"}]'
    assert lines[3:] == ["steps: 20", "cfgScale: 7.5", "nsfw: false", "seed: null"]
    back = read_meta_txt(path)
    assert back["prompt"] == meta["prompt"]
    assert json.loads(back["civitaiResources"]) == meta["civitaiResources"]


def test_meta_txt_keeps_prompt_backslashes_readable(tmp_path):
    path = tmp_path / "m.txt"
    write_meta_txt(path, {"prompt": r"\(masterpiece\), C:\new\folder"})
    assert path.read_text(encoding="utf-8") == "prompt: \\(masterpiece\\), C:\\\\new\\folder\n"
    assert read_meta_txt(path)["prompt"] == r"\(masterpiece\), C:\new\folder"


def test_meta_txt_model_name_line_is_added_only_when_missing(tmp_path):
    path = tmp_path / "m.txt"
    write_meta_txt(path, {"prompt": "x"}, model_name="v1 Base")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "Model: v1 Base"
    write_meta_txt(path, {"Model": "own", "prompt": "x"}, model_name="other")
    assert read_meta_txt(path) == {"Model": "own", "prompt": "x"}


def test_json_sidecar_survives_lone_surrogates(tmp_path):
    path = tmp_path / "1.json"
    write_json_sidecar(path, {"id": 1, "meta": {"prompt": "a\ud800b"}})
    assert read_json_sidecar(path)["meta"]["prompt"] == "a\ud800b"


def test_no_meta_txt(tmp_path):
    path = tmp_path / "101_no_meta.txt"
    write_no_meta_txt(path, 101, "a b&c", "https://site.example/")
    assert path.read_text(encoding="utf-8") == (
        "No metadata available.\nURL: https://site.example/images/101?username=a%20b%26c\n"
    )
    assert read_meta_txt(path) == {"URL": "https://site.example/images/101?username=a%20b%26c"}


# Any code point, lone surrogates included (json.loads can produce them from the API's text).
any_char = st.characters(codec=None, exclude_categories=())
meta_keys = st.text(alphabet=any_char, max_size=20)
meta_values = st.text(alphabet=any_char, max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(meta_keys, meta_values, max_size=8))
def test_meta_txt_round_trips_any_text(tmp_path_factory, meta):
    path = tmp_path_factory.getbasetemp() / "roundtrip_meta.txt"
    write_meta_txt(path, meta)
    text = path.read_bytes().decode("utf-8")
    assert text.count("\n") == len(meta)
    assert len(text.splitlines()) == len(meta), "a value broke a line"
    assert read_meta_txt(path) == meta
