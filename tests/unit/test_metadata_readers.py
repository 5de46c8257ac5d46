"""Converted WebP files read by programs civitgrab did not write: exiftool (a system package), the SD
metadata parser `sd-parsers` from PyPI, Pillow, and ComfyUI's WebP loader convention.

The files come from the converter's real worker (run_task: decode, encode, verify, rename) fed with
originals shaped like the generators' own: a PNG with an A1111 `parameters` chunk, a JPEG with the
A1111 UserComment (written as A1111 writes it: piexif's UNICODE dump), a ComfyUI PNG with its
`prompt`/`workflow` chunks, and a JPEG with nothing but CivitAI's meta.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from pathlib import Path

import piexif
import piexif.helper
import pytest
from PIL import Image, PngImagePlugin
from sd_parsers import ParserManager
from sd_parsers.data import Generators

from civitgrab_desktop.core.media.exif import CUT_MARKER
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.convert_tasks import EncodeOptions, ImageTask
from civitgrab_desktop.jobs.convert_worker import run_task
from civitgrab_desktop.jobs.embed_info import record_info
from tests.unit.test_media_samples import photo

EXIFTOOL = shutil.which("exiftool")

PROMPTS = {
    "japanese": "傑作, 最高品質, 桜の木の下の猫, (夕焼け:1.2)",
    "emoji": "a fox 🦊 in a field of 🌻, <lora:detail:0.6>, masterpiece",
    "multiline": "masterpiece, best quality,\nBREAK\na lighthouse on a cliff,\n\nstorm clouds, \"quoted\": yes",
}
NEGATIVE = "lowres, bad anatomy, (worst quality:1.4)"
SETTINGS = "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567890, Size: 320x240, " \
           "Model hash: 6ce0161689, Model: dreamshaper_8, Clip skip: 2"
TAGS = [{"id": 5, "name": "cat", "type": "Label", "score": 12, "upVotes": 3, "downVotes": 0},
        {"id": 9, "name": "猫耳", "type": "Label", "score": 4, "upVotes": 1, "downVotes": 1},
        {"id": 11, "name": "sunset sky", "score": 2}]
COMFY_PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "cfg": 8}},
                "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "桜 🌸 prompt"}}}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [42, "fixed", 20]},
                                              {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["桜 🌸 prompt"]}],
                  "links": [[1, 4, 0, 3, 0, "MODEL"]], "version": 0.4}


class Row:
    """What record_info reads from an ImageRow."""

    def __init__(self, image_id: int, meta: dict, username: str = "alice"):
        self.id, self.username, self.meta = image_id, username, meta
        self.model_version_name, self.checkpoint_name, self.base_model = "v8", "dreamshaper_8", "SD 1.5"
        self.nsfw_level, self.created_at = 1, "2025-03-04T05:06:07.000Z"
        self.url = f"https://image.civitai.com/x/{image_id}.png"
        self.width, self.height = 320, 240


def convert(src: Path, out: Path, image_id: int, meta: dict, tags=TAGS) -> Path:
    row = Row(image_id, meta)
    record = {"id": image_id, "url": row.url, "username": "alice", "meta": meta, "createdAt": row.created_at}
    task = ImageTask(image_id=image_id, src=str(src), out_dir=str(out), in_place=False, options=EncodeOptions(),
                     info=record_info(row), tags=tags, record=record,
                     sha256=hashlib.sha256(src.read_bytes()).hexdigest(), created_at=row.created_at,
                     roots=Roots.of([out.parent]))  # the test's folder is the one the user chose
    result = run_task(task)
    assert result.status == "converted", result.reason
    return Path(result.webp_path)


def a1111_png(path: Path, parameters: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    photo((320, 240), seed=len(parameters)).save(path, pnginfo=info)
    return path


def a1111_jpeg(path: Path, parameters: str) -> Path:
    # what A1111's images.save_image_with_geninfo does for a JPEG/WebP
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(parameters, "unicode")}})
    photo((320, 240), seed=7).save(path, "JPEG", quality=93, exif=exif)
    return path


# sd-parsers 0.6 caches the last image's UserComment under id(image); once an image is freed its
# id can be reused by the next one, which then reads the previous file's text. Keeping every
# parsed image alive keeps ids unique (a CI run failed on exactly that reuse).
_PARSED_IMAGES: list[Image.Image] = []


def sd_parse(path: Path):
    with Image.open(path) as im:
        _PARSED_IMAGES.append(im)
        return ParserManager().parse(im)


def exiftool(path: Path, *options: str) -> dict:
    assert EXIFTOOL, "exiftool is not installed (Debian: libimage-exiftool-perl; `make test` installs it)"
    out = subprocess.run([EXIFTOOL, "-j", "-G1", "-struct", "-charset", "utf8", *options, str(path)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)[0]


def comfyui_webp_loader(data: bytes) -> dict[str, str]:
    """ComfyUI's WebP loader, step by step as ComfyUI_frontend src/scripts/pnginfo.ts
    getWebpMetadata does it: walk the RIFF chunks to the first EXIF chunk, skip an `Exif\\0\\0`
    prefix, read the byte order ("II" little), read IFD0 only, take each ASCII (type 2) entry's
    `count - 1` bytes at its offset as UTF-8, and split it at the first ":" into key and value.
    (Written independently of civitgrab's EXIF code: no piexif here.)"""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    offset, chunks = 12, {}
    while offset < len(data):
        kind, length = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        if kind == b"EXIF":
            exif = data[offset + 8:offset + 8 + length]
            if exif[:6] == b"Exif\x00\x00":
                exif = data[offset + 14:offset + 14 + length]
            order = "<" if exif[:2] == b"II" else ">"
            ifd = struct.unpack(order + "I", exif[4:8])[0]
            for i in range(struct.unpack(order + "H", exif[ifd:ifd + 2])[0]):
                entry = ifd + 2 + 12 * i
                _tag, kind_, count, value_at = struct.unpack(order + "HHII", exif[entry:entry + 12])
                if kind_ == 2:
                    value = exif[value_at:value_at + count - 1].decode("utf-8", errors="replace")
                    index = value.find(":")
                    chunks[value[:index] if index >= 0 else value[:-1]] = value[index + 1:]
            break
        offset += 8 + length
    return chunks


# -- A1111 dialect: sd-parsers and exiftool ----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_png_parameters_survive_for_sd_parsers_and_exiftool(tmp_path, kind):
    parameters = f"{PROMPTS[kind]}\nNegative prompt: {NEGATIVE}\n{SETTINGS}"
    src = a1111_png(tmp_path / f"{kind}.png", parameters)
    original = sd_parse(src)
    assert original.generator == Generators.AUTOMATIC1111  # the reader knows the original...
    webp = convert(src, tmp_path / "out", 101, {"prompt": "the API's copy", "seed": 1})

    parsed = sd_parse(webp)  # ...and the converted file the same way
    assert parsed.generator == Generators.AUTOMATIC1111
    assert [p.value for p in parsed.prompts] == [p.value for p in original.prompts] == [PROMPTS[kind]]
    assert [p.value for p in parsed.negative_prompts] == [NEGATIVE]
    assert parsed.samplers[0].name == "DPM++ 2M Karras"
    assert parsed.samplers[0].parameters == original.samplers[0].parameters
    assert {m.name for m in parsed.models} == {"dreamshaper_8"}

    tool = exiftool(webp)
    assert tool["ExifIFD:UserComment"] == parameters  # verbatim
    assert tool["XMP-dc:Subject"] == ["cat", "猫耳", "sunset sky"]
    assert tool["XMP-dc:Description"] == "the API's copy"
    assert tool["XMP-dc:Creator"] == ["alice"] or tool["XMP-dc:Creator"] == "alice"
    assert tool["XMP-xmp:CreatorTool"].startswith("civitgrab")
    assert tool["XMP-civitgrab:ImageId"] == 101
    assert tool["XMP-civitgrab:PageURL"] == "https://civitai.com/images/101"  # jobs/embed_info.py
    assert tool["XMP-civitgrab:ParametersSource"] == "file"
    assert tool["IFD0:XPKeywords"] == "cat;猫耳;sunset sky"


def test_a1111_jpeg_user_comment_is_copied_verbatim(tmp_path):
    parameters = f"{PROMPTS['japanese']}\nNegative prompt: {NEGATIVE}\n{SETTINGS}"
    webp = convert(a1111_jpeg(tmp_path / "a.jpeg", parameters), tmp_path / "out", 102, {"prompt": "x"})
    assert exiftool(webp)["ExifIFD:UserComment"] == parameters
    parsed = sd_parse(webp)
    assert parsed.generator == Generators.AUTOMATIC1111 and parsed.prompts[0].value == PROMPTS["japanese"]


@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_meta_only_images_get_an_a1111_text_built_from_the_api(tmp_path, kind):
    src = tmp_path / "plain.jpeg"
    photo((320, 240), seed=3).save(src, "JPEG", quality=92)
    meta = {"prompt": PROMPTS[kind], "negativePrompt": NEGATIVE, "steps": 30, "sampler": "Euler a",
            "cfgScale": 7, "seed": 99, "Model": "dreamshaper_8", "Model hash": "6ce0161689", "clipSkip": 2,
            "civitaiResources": [{"type": "checkpoint", "modelVersionId": 128713}]}
    webp = convert(src, tmp_path / "out", 103, meta)
    parsed = sd_parse(webp)
    assert parsed.generator == Generators.AUTOMATIC1111
    assert parsed.prompts[0].value == PROMPTS[kind]
    assert parsed.negative_prompts[0].value == NEGATIVE
    assert parsed.samplers[0].name == "Euler a"
    assert parsed.samplers[0].parameters["steps"] == "30" and parsed.samplers[0].parameters["seed"] == "99"
    tool = exiftool(webp)
    assert tool["XMP-dc:Description"] == PROMPTS[kind]
    assert json.loads(tool["XMP-civitgrab:Meta"]) == meta
    assert tool["XMP-civitgrab:ParametersSource"] == "meta"
    if PROMPTS[kind].isascii():
        assert tool["IFD0:ImageDescription"] == PROMPTS[kind].replace("\n", ".") or tool["IFD0:ImageDescription"]
    else:
        assert "IFD0:ImageDescription" not in tool  # the tag is ASCII: left out, not mojibake
    with Image.open(webp) as im:  # Pillow, too, reads the same text back
        comment = im.getexif().get_ifd(0x8769)[0x9286]
    assert comment[:8] == b"UNICODE\x00" and comment[8:].decode("utf-16-be").startswith(PROMPTS[kind])


def test_hostile_text_converts_and_every_reader_still_parses_the_file(tmp_path):
    src = tmp_path / "h.png"
    photo((320, 240), seed=5).save(src)
    prompt = "ok\x00 nul, lone \ud800 surrogate, bell \x07, esc \x1b, " + "猫🐱 " * 25_000  # > 100 KB
    tags = [{"id": i, "name": f"tag {i} <&>\"'", "score": i} for i in range(5000)]
    meta = {"prompt": prompt, "negativePrompt": "\udfff", "sampler": "Euler", "steps": 1, "seed": 2}
    webp = convert(src, tmp_path / "out", 104, meta, tags=tags)
    tool = exiftool(webp, "-m")  # exiftool lists 1000 items of a list unless told to ignore minor limits
    assert CUT_MARKER.strip() in tool["ExifIFD:UserComment"]  # cut in EXIF...
    assert len(tool["XMP-dc:Subject"]) == 5000  # ...whole in XMP
    assert tool["XMP-dc:Description"].startswith("ok nul, lone \ufffd surrogate, bell \ufffd, esc \ufffd, 猫🐱")
    assert tool["XMP-dc:Description"].count("猫🐱") == 25_000
    assert sd_parse(webp).samplers[0].name == "Euler"


# -- ComfyUI ------------------------------------------------------------------------------------


def test_comfyui_graph_comes_back_as_comfyuis_loader_reads_it(tmp_path):
    src = tmp_path / "comfy.png"
    info = PngImagePlugin.PngInfo()  # what ComfyUI's SaveImage writes: json.dumps of both
    info.add_text("prompt", json.dumps(COMFY_PROMPT))
    info.add_text("workflow", json.dumps(COMFY_WORKFLOW))
    photo((320, 240), seed=11).save(src, pnginfo=info)
    webp = convert(src, tmp_path / "out", 105, {"prompt": "桜 🌸 prompt"})

    loaded = comfyui_webp_loader(webp.read_bytes())
    assert json.loads(loaded["prompt"]) == COMFY_PROMPT
    assert json.loads(loaded["workflow"]) == COMFY_WORKFLOW
    assert loaded["prompt"] == json.dumps(COMFY_PROMPT)  # byte for byte what ComfyUI itself writes
    with Image.open(webp) as im:  # Pillow sees the same tags ComfyUI's writer sets
        exif = im.getexif()
        assert exif[0x0110] == "prompt:" + json.dumps(COMFY_PROMPT)
        assert exif[0x010F] == "workflow:" + json.dumps(COMFY_WORKFLOW)
    tool = exiftool(webp)
    assert tool["IFD0:Model"].startswith("prompt:{") and tool["IFD0:Make"].startswith("workflow:{")


def test_comfyui_webp_original_keeps_its_graph(tmp_path):
    """A WebP saved by ComfyUI (its _create_webp_metadata layout, through Pillow) keeps the graph
    after we add our metadata without re-encoding."""
    src = tmp_path / "comfy.webp"
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(COMFY_PROMPT)
    exif[0x010F] = "workflow:" + json.dumps(COMFY_WORKFLOW)
    photo((320, 240), seed=12).save(src, "WEBP", quality=80, exif=exif)
    webp = convert(src, tmp_path / "out", 106, {"prompt": "p"})
    loaded = comfyui_webp_loader(webp.read_bytes())
    assert json.loads(loaded["prompt"]) == COMFY_PROMPT and json.loads(loaded["workflow"]) == COMFY_WORKFLOW


def test_nothing_else_in_ifd0_looks_like_a_comfyui_key(tmp_path):
    src = tmp_path / "p.jpeg"
    photo((64, 64)).save(src, "JPEG")
    webp = convert(src, tmp_path / "out", 107, {"prompt": "workflow: not a graph"})
    loaded = comfyui_webp_loader(webp.read_bytes())
    assert "workflow" not in loaded and "prompt" not in loaded
