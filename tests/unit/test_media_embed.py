"""The embedded metadata's parts: the A1111 text, the XMP packet, EXIF+XMP chunks in the RIFF
container, what a source file carries, and the in-place rewrite of converted files."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from civitgrab_desktop.core.media.a1111 import parameters_from_meta, split_parameters
from civitgrab_desktop.core.media.embed import (
    SourceMetadata,
    build_metadata,
    file_image_id,
    read_file_xmp,
    source_metadata,
)
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.media.readback import read_file_facts
from civitgrab_desktop.core.media.webp_riff import (
    FLAG_EXIF,
    FLAG_XMP,
    build_webp,
    image_chunks,
    parse_chunks,
    with_metadata,
)
from civitgrab_desktop.core.media.xmp import build_xmp, read_xmp
from civitgrab_desktop.core.roots import OutsideRootsError, Roots
from civitgrab_desktop.jobs.refresh_metadata import NotOurFile, RefreshPlan, refresh_file
from tests.unit.test_media_samples import frames, photo

META = {"prompt": "a cat,\nsecond line 🐱", "negativePrompt": "blurry, bad", "steps": 20, "sampler": "Euler a",
        "cfgScale": 7.0, "seed": 42, "Model": "dream", "Denoising strength": 0.4, "Hires upscaler": "4x, Ultra",
        "hashes": {"model": "abc"}, "civitaiResources": [{"type": "lora"}]}


def test_parameters_from_meta_in_a1111s_order_and_quoting():
    text = parameters_from_meta(META, size=(512, 768))
    assert text == ('a cat,\nsecond line 🐱\nNegative prompt: blurry, bad\n'
                    'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768, Model: dream, '
                    'Denoising strength: 0.4, Hires upscaler: "4x, Ultra", Hashes: {"model": "abc"}')
    prompt, negative, pairs = split_parameters(text)
    assert prompt == META["prompt"] and negative == "blurry, bad"
    assert dict(pairs)["Hires upscaler"] == "4x, Ultra" and dict(pairs)["Seed"] == "42"


def test_split_parameters_of_odd_texts_never_raises():
    assert split_parameters("") == ("", "", [])
    assert split_parameters("just a prompt: with a colon") == ("just a prompt: with a colon", "", [])
    assert split_parameters("p\nNegative prompt: n\nmore n")[:2] == ("p", "n\nmore n")
    assert split_parameters('x\nSteps: 1, Bad: "unterminated')[0] == "x"


def test_xmp_packet_is_well_formed_for_hostile_text():
    info = {"id": 1, "username": "<b>&amp;</b>", "meta": {"prompt": "a]]>\x00\x01\ud800 <x> & \"q\" 'a'\n z"}}
    tags = [{"id": 1, "name": "a\"b<c>&d\ne", "score": 1}]
    packet = build_xmp(info, tags)
    ET.fromstring(packet)  # parses
    back = read_xmp(packet)
    assert back["description"] == "a]]>\ufffd\ufffd <x> & \"q\" 'a'\n z"
    assert back["creator"] == "<b>&amp;</b>" and back["subject"] == ["a\"b<c>&d\ne"]
    assert back["record"]["tags"][0]["name"] == "a\"b<c>&d\ne"


def test_read_xmp_refuses_entities():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    assert read_xmp(bomb)["record"] == {} and read_xmp(b"not xml")["subject"] == []


def test_with_metadata_orders_chunks_and_sets_flags(tmp_path):
    anim = frames(3)
    path = tmp_path / "a.webp"
    anim[0].save(path, "WEBP", save_all=True, append_images=anim[1:], duration=50)
    chunks = with_metadata(parse_chunks(path.read_bytes()), b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", b"<x/>")
    kinds = [c.fourcc for c in chunks]
    assert kinds[-2:] == [b"EXIF", b"XMP "] and kinds.index(b"EXIF") > max(i for i, k in enumerate(kinds) if k == b"ANMF")
    assert chunks[0].data[0] & (FLAG_EXIF | FLAG_XMP) == FLAG_EXIF | FLAG_XMP
    cleared = with_metadata(chunks, None, None)
    assert b"EXIF" not in [c.fourcc for c in cleared] and not cleared[0].data[0] & (FLAG_EXIF | FLAG_XMP)
    with Image.open(path) as im:  # still a valid animation for libwebp
        assert im.n_frames == 3


def test_source_metadata_of_generator_files(tmp_path):
    png = tmp_path / "a.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "p\nSteps: 1, Sampler: x, Seed: 2")
    info.add_text("prompt", '{"1": {"class_type": "KSampler"}}')
    info.add_text("workflow", "not json")  # a workflow that is not a graph is not claimed as one
    photo((32, 32)).save(png, pnginfo=info)
    found = source_metadata(png)
    assert found.parameters == "p\nSteps: 1, Sampler: x, Seed: 2"
    assert found.comfy == {"prompt": '{"1": {"class_type": "KSampler"}}'}
    assert source_metadata(tmp_path / "missing.png") == SourceMetadata()


def test_our_webp_keeps_the_sources_text_but_not_a_text_built_from_meta(tmp_path):
    for source, expected in ((SourceMetadata("src\nSteps: 1, Sampler: a, Seed: 1"), "src\nSteps: 1, Sampler: a, Seed: 1"),
                             (SourceMetadata(), None)):
        built = build_metadata({"id": 3, "meta": {"prompt": "api", "steps": 2}}, [], source)
        path = tmp_path / "x.webp"
        photo((32, 32)).save(path, "WEBP", exif=built.exif.data, xmp=built.xmp)
        assert source_metadata(path).parameters == expected
        assert file_image_id(path) == 3


def webp_of_first_format(path: Path, image_id: int) -> None:
    import piexif
    import piexif.helper

    comment = json.dumps({"civitgrab": 1, "id": image_id, "meta": {"prompt": "old", "parameters": "old\nSteps: 3"}})
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(comment, "ascii")}})
    photo((96, 64), seed=2).save(path, "WEBP", quality=75, exif=exif)


def test_refresh_file_rewrites_metadata_only(tmp_path):
    path = tmp_path / "9.webp"
    webp_of_first_format(path, 9)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    before_bytes = path.read_bytes()
    with Image.open(path) as im:
        before_pixels = im.tobytes()
    plan = RefreshPlan(9, str(path), None, {"id": 9, "username": "bob", "meta": {"prompt": "new prompt"}},
                       [{"id": 1, "name": "cat", "score": 3}], Roots.of([tmp_path]))
    assert refresh_file(plan) == (True, ())
    assert image_chunks(parse_chunks(path.read_bytes())) == image_chunks(parse_chunks(before_bytes))
    with Image.open(path) as im:
        assert im.tobytes() == before_pixels
    assert path.stat().st_mtime == 1_700_000_000
    assert read_exif(path)["user_comment"] == "old\nSteps: 3"  # the source's text, kept
    assert read_file_xmp(path)["subject"] == ["cat"] and read_file_xmp(path)["description"] == "new prompt"
    assert refresh_file(plan) == (False, ())  # already up to date: not written again
    assert not list(tmp_path.glob(".*.tmp"))


def test_refresh_file_refuses_other_files(tmp_path):
    path = tmp_path / "9.webp"
    photo((32, 32)).save(path, "WEBP")
    data = path.read_bytes()
    with pytest.raises(NotOurFile):
        refresh_file(RefreshPlan(9, str(path), None, {"id": 9, "meta": {}}, [], Roots.of([tmp_path])))
    assert path.read_bytes() == data
    webp_of_first_format(path, 8)  # ours, but another image's
    with pytest.raises(NotOurFile):
        refresh_file(RefreshPlan(9, str(path), None, {"id": 9, "meta": {}}, [], Roots.of([tmp_path])))
    link = tmp_path / "link.webp"
    link.symlink_to(path)
    with pytest.raises(NotOurFile):
        refresh_file(RefreshPlan(8, str(link), None, {"id": 8, "meta": {}}, [], Roots.of([tmp_path])))


def test_refresh_file_leaves_files_outside_the_roots_alone(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "9.webp"
    webp_of_first_format(path, 9)
    data = path.read_bytes()
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    with pytest.raises(OutsideRootsError):
        refresh_file(RefreshPlan(9, str(path), None, {"id": 9, "meta": {"prompt": "new"}}, [], Roots.of([chosen])))
    assert path.read_bytes() == data


def test_readback_says_where_each_fact_came_from(tmp_path):
    built = build_metadata({"id": 4, "meta": {"prompt": "猫 " * 20_000, "negativePrompt": "n", "seed": 1,
                                              "sampler": "Euler", "steps": 3}}, [{"name": "cat", "score": 1}])
    path = tmp_path / "4.webp"
    photo((32, 32)).save(path, "WEBP", exif=built.exif.data, xmp=built.xmp)
    facts = read_file_facts(path)
    assert facts.prompt == "猫 " * 20_000 and facts.prompt_from == "XMP dc:description (EXIF holds it cut)"
    assert facts.negative == "n" and dict(facts.settings)["Sampler"] == "Euler"
    assert facts.settings_from == "EXIF UserComment (A1111 parameters)"
    assert facts.tags == ["cat"] and facts.tags_from == "XMP dc:subject"
    png = tmp_path / "a.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "p\nSteps: 1, Sampler: x, Seed: 2")
    photo((32, 32)).save(png, pnginfo=info)
    assert read_file_facts(png).prompt_from == "PNG text chunk “parameters” (A1111)"
    assert read_file_facts(tmp_path / "gone.webp").problem
    broken = tmp_path / "b.webp"
    broken.write_bytes(build_webp(parse_chunks(path.read_bytes()))[:40])
    assert read_file_facts(broken).problem


def test_no_secret_leaves_through_the_metadata():
    info = {"id": 1, "url": "https://image.example/1.png?token=SECRET&x=1",
            "meta": {"prompt": "p", "workflow": "see https://cdn.example/a?api_key=SECRET"}}
    built = build_metadata(info, [])
    assert b"SECRET" not in built.xmp and b"SECRET" not in built.exif.data


def test_a_little_endian_user_comment_is_read_in_its_byte_order(tmp_path):
    """Tools that write "II" EXIF (Pillow's Exif, some Forge builds) store UNICODE as UTF-16LE."""
    import struct

    comment = b"UNICODE\x00" + "猫 prompt\nSteps: 3, Sampler: a, Seed: 1".encode("utf-16-le")
    tiff = (b"II*\x00" + struct.pack("<I", 8)
            + struct.pack("<HHHII", 1, 0x8769, 4, 1, 26) + struct.pack("<I", 0)  # IFD0: the Exif IFD's offset
            + struct.pack("<HHHII", 1, 0x9286, 7, len(comment), 44) + struct.pack("<I", 0)  # Exif IFD
            + comment)
    path = tmp_path / "le.webp"
    photo((32, 32)).save(path, "WEBP", exif=b"Exif\x00\x00" + tiff)
    assert path.read_bytes().find(b"II*\x00") > 0
    assert source_metadata(path).parameters == "猫 prompt\nSteps: 3, Sampler: a, Seed: 1"
