from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from civitgrab_desktop.core.civitai.records import parse_image
from civitgrab_desktop.core.organize.layouts import (
    browse_components,
    browse_target_dir,
    classic_filename,
    classic_target_dir,
    json_sidecar_name,
    meta_txt_name,
    no_meta_txt_name,
    tag_summary_csv_path,
)
from civitgrab_desktop.core.organize.sanitize import PathTooLong


def record(**item):
    return parse_image({"id": 101, "url": "https://image.example/x.jpeg", **item})


WITH_MODEL = record(meta={"prompt": "a cat", "Model": "dreamshaper_8"})
URN_MODEL = record(
    meta={
        "prompt": "a cat",
        "Model": "urn:air:sdxl:checkpoint:civitai:101055@128078",
        "civitaiResources": [{"type": "checkpoint", "modelVersionName": "v1.0 Base"}],
    }
)
META_NO_MODEL = record(meta={"Size": "512x512"})
NO_META = record(meta=None)
VIDEO_NO_MODEL = record(type="video", meta=None)
VIDEO_WITH_MODEL = record(type="video", meta={"prompt": "x", "Model": "wan"})


@pytest.mark.parametrize(
    ("mode", "identifier", "model_id", "expected"),
    [
        ("username", "alice", None, "Username_Search/alice"),
        (1, "alice", None, "Username_Search/alice"),
        ("model", "4201", None, "Model_ID_Search/model_4201"),
        (2, 4201, None, "Model_ID_Search/model_4201"),
        ("model_version", 130072, None, "Model_Version_ID_Search/modelVersion_130072"),
        ("4", 130072, None, "Model_Version_ID_Search/modelVersion_130072"),
        ("tag", "anime_girl", 77, "Model_Tag_Search/anime_girl/model_77"),
        (3, "anime girl", 77, "Model_Tag_Search/anime girl/model_77"),
    ],
)
def test_classic_identifier_folders_without_sorting(tmp_path, mode, identifier, model_id, expected):
    got = classic_target_dir(tmp_path, mode, identifier, model_id=model_id, record=WITH_MODEL, sort=False)
    assert got == tmp_path / expected


@pytest.mark.parametrize(
    ("rec", "folder"),
    [
        (WITH_MODEL, "dreamshaper_8"),
        (URN_MODEL, "v1.0 Base"),  # never the urn_air_... folder of seed bug #42
        (META_NO_MODEL, "invalid_metadata"),
        (NO_META, "no_metadata"),
        (VIDEO_NO_MODEL, "videos"),
        (VIDEO_WITH_MODEL, "wan"),
    ],
)
def test_classic_sort_folder(tmp_path, rec, folder):
    assert classic_target_dir(tmp_path, "username", "alice", record=rec) == tmp_path / "Username_Search/alice" / folder


def test_model_folder_is_capped_at_60_characters_and_sanitized(tmp_path):
    rec = record(meta={"prompt": "x", "Model": "Some: Model/" + "x" * 100})
    folder = classic_target_dir(tmp_path, "model", 1, record=rec).name
    assert folder == ("Some_ Model_" + "x" * 100)[:60]


def test_a_prompt_cannot_choose_the_folder(tmp_path):
    rec = record(meta={"prompt": "cat\nModel: ../../evil", "Model": "real"})
    assert classic_target_dir(tmp_path, "username", "bob", record=rec).name == "real"


def test_hostile_identifiers_stay_inside_the_output_dir(tmp_path):
    got = classic_target_dir(tmp_path, "username", "../../etc", record=NO_META)
    assert got == tmp_path / "Username_Search" / "_.._etc" / "no_metadata"
    got = classic_target_dir(tmp_path, "tag", "..", model_id=5, record=NO_META, sort=False)
    assert got == tmp_path / "Model_Tag_Search" / "_" / "model_5"


def test_classic_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        classic_target_dir(tmp_path, "tag", "anime", record=NO_META)  # no model_id
    with pytest.raises(ValueError):
        classic_target_dir(tmp_path, "model", "abc", record=NO_META)
    with pytest.raises(ValueError):
        classic_target_dir(tmp_path, "model", -3, record=NO_META)
    with pytest.raises(ValueError):
        classic_target_dir(tmp_path, "username", "  ", record=NO_META)
    with pytest.raises(ValueError):
        classic_target_dir(tmp_path, 9, "x", record=NO_META)


def test_classic_checks_max_path_before_download(tmp_path):
    deep = tmp_path / ("d" * 200)
    with pytest.raises(PathTooLong):
        classic_target_dir(deep, "username", "alice", record=NO_META, max_path=240)
    assert classic_target_dir(deep, "username", "alice", record=NO_META, max_path=400)


def test_classic_file_names():
    assert classic_filename(101, ".PNG") == "101.png"
    assert classic_filename("101", "jpeg") == "101.jpeg"
    assert meta_txt_name(101) == "101_meta.txt"
    assert no_meta_txt_name(101) == "101_no_meta.txt"
    assert json_sidecar_name(101) == "101.json"
    with pytest.raises(ValueError):
        classic_filename("../1", ".png")


# --- browse layout ---------------------------------------------------------------------------


def test_browse_target_dir_from_a_record(tmp_path):
    rec = record(
        username="alice",
        nsfwLevel=1,
        meta={"prompt": "x", "civitaiResources": [{"type": "checkpoint", "modelVersionName": "v2 Final"}]},
    )
    assert browse_target_dir(tmp_path, rec) == tmp_path / "CivitAI_Browse/Images/SFW/v2 Final/alice"


@pytest.mark.parametrize(
    ("level", "pg13_is_nsfw", "bucket"),
    [(1, False, "SFW"), (2, False, "SFW"), (2, True, "NSFW"), (4, False, "NSFW"), (8, False, "NSFW"),
     (16, False, "NSFW"), (0, False, "NSFW"), (None, False, "NSFW")],
)
def test_browse_nsfw_bucket(level, pg13_is_nsfw, bucket):
    parts = browse_components(nsfw_level=level, pg13_is_nsfw=pg13_is_nsfw)
    assert parts[2] == bucket


def test_browse_model_precedence_and_unknowns():
    obj = SimpleNamespace(type="video", nsfw_level=1, model_version_name=None, checkpoint_name="ckpt", username=None)
    assert browse_components(obj) == ["CivitAI_Browse", "Videos", "SFW", "ckpt", "unknown_user"]
    assert browse_components(obj, model_version_name="mv")[3] == "mv"
    assert browse_components(obj, checkpoint_name="  ")[3] == "unknown_model"
    assert browse_components(type="image", nsfw_level=4, username="CON")[1:] == ["Images", "NSFW", "unknown_model", "CON_"]
    with pytest.raises(TypeError):
        browse_components(obj, colour="red")


def test_tag_summary_csv_path(tmp_path):
    assert tag_summary_csv_path(tmp_path, "anime_girl", dt.date(2026, 4, 29)) == (
        tmp_path / "Model_Tag_Search/anime_girl/summary_anime_girl_20260429.csv"
    )
    assert tag_summary_csv_path(tmp_path, "a/b", "20260101").name == "summary_a_b_20260101.csv"
    long_name = tag_summary_csv_path(tmp_path, "t" * 300, dt.date(2026, 1, 2)).name
    assert long_name.endswith("_20260102.csv") and len(long_name.encode()) <= 120
    with pytest.raises(ValueError):
        tag_summary_csv_path(tmp_path, "x", "2026-01-01")
