"""Hostile data from the service: names and meta values that try to leave the output folder or
break a file system, JSON that is not what the schema says, links to other hosts.

Nothing leaves the output folder, every name is valid on Windows, macOS and Linux at once,
nothing crashes (no traceback reaches the user), and every problem is reported.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from tests.fake_civitai import FakeCivitai
from tests.reliability.helpers import (
    assert_clean_output,
    cdn_fetches,
    check_files,
    check_library,
    media_files,
)
from tests.reliability.report import REPORT

pytestmark = pytest.mark.reliability

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"
}
FORBIDDEN = set('<>:"/\\|?*')

HOSTILE_MODEL_NAMES = [
    "../../etc/passwd",
    "..",
    ".",
    "...",
    "/absolute/path",
    "C:\\Windows\\System32",
    "\\\\server\\share",
    "CON",
    "con",
    "nul.txt",
    "COM1.tar.gz",
    "LPT¹",
    "AUX .txt",
    "A" * 300,
    "é" * 200,  # 400 bytes in UTF-8
    "🎨" * 100,  # 400 bytes, and two UTF-16 units each
    '<>:"/\\|?*',
    "trailing. . ",
    " leading spaces",
    ".hidden",
    "ctrl\x01\x1f\x7f\x85\x9f end",
    "tab\there\nnewline\rreturn",
    "Ελληνικά Кириллица עברית العربية हिन्दी ไทย 한국어 日本語 ქართული Ⴀ ᚠᛇᚻ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "👩\u200d👩\u200d👧 family",
    "e\u0301te\u0301 (NFD)",
    "\u202eevil\u202c bidi",
    "zero\u200bwidth\ufeffbom",
    "urn:air:sdxl:checkpoint:civitai:101055@128078",
    "URN:AIR:SD1:LORA:CIVITAI:1@2",
    "name with %2e%2e%2f and ${HOME} and $(rm -rf)",
    "~",
    "Anime",
    "anime",  # differs only in case
]

# Meta that is not what the schema says (the service has sent each of these shapes).
ODD_META: list = [
    None,
    {},
    {"Model": 12345, "prompt": "numeric model"},
    {"Model": ["list", "model"], "prompt": "list model"},
    {"Model": {"nested": "object"}, "prompt": "object model"},
    {"Model": None, "prompt": "null model"},
    {"Model": True, "prompt": "bool model"},
    {"id": 1, "meta": {"Model": "nested ../../model", "prompt": "nested meta"}},
    {"meta": {"meta": {"meta": {"Model": "deeply nested"}}}},
    {"prompt": "a cat\nModel: ../../evil\nSteps: 1", "Model": "Fine Model"},
    {"prompt": "Model: evil\nModel: ../evil2"},
    {"prompt": "x" * 100_000, "negativePrompt": "y" * 50_000, "Model": "Huge Prompt"},
    {"civitaiResources": [{"type": "checkpoint", "modelVersionName": "../../resource"}], "prompt": "res"},
    {"civitaiResources": [{"type": None}, 5, "x", None], "prompt": "bad resources"},
    {"civitaiResources": "not a list", "resources": {"a": 1}, "prompt": "odd resources"},
    {"Model": "urn:air:sdxl:checkpoint:civitai:101055@128078", "prompt": "urn only"},
    {"prompt": None, "seed": "not a number", "steps": -1, "cfgScale": 1e308, "Size": "x" * 300},
    {"": "empty key", "Model:": "colon key", "\n": "newline key", "prompt": "odd keys"},
    {"prompt": "see https://civitai.com/api/download/models/1?token=secret123&type=Model", "Model": "Token Test"},
]

# Item fields the schema does not promise: wrong types, absurd values, missing keys.
DELETE = object()
ITEM_EDITS: list[dict] = [
    {"username": "../../etc"},
    {"username": "CON"},
    {"username": None},
    {"username": 42},
    {"username": "a" * 300},
    {"createdAt": "not a date"},
    {"createdAt": 12345},
    {"createdAt": "9999-99-99T99:99:99.999Z"},
    {"width": "512", "height": -1},
    {"width": None, "height": 10**30},
    {"nsfwLevel": {"x": 1}, "browsingLevel": "lots"},
    {"nsfwLevel": 7, "browsingLevel": 64},
    {"type": "hologram"},
    {"type": None},
    {"modelVersionIds": "2001"},
    {"modelVersionIds": [None, "x", 2001.5, -3, 10**30]},
    {"baseModel": ["SDXL"], "stats": "many", "hash": 5, "postId": "p"},
    {"postId": 10**30},
    {"stats": {"likeCount": 10**30, "heartCount": 2**62, "laughCount": 2**62, "cryCount": -(10**30)}},
    {"meta": "just a string"},
    {"meta": [1, 2, 3]},
    {k: DELETE for k in ("meta", "username", "createdAt", "type", "nsfwLevel", "browsingLevel", "width", "height",
                         "modelVersionIds", "baseModel", "stats", "hash", "postId", "nsfw")},
]
# Items no client can download: reported and skipped, never a crash.
UNUSABLE_EDITS: list[dict] = [
    {"id": "abc"},
    {"id": None},
    {"id": -5},
    {"id": 1.5},
    {"id": DELETE},
    {"url": None},
    {"url": 12345},
    {"url": ""},
    {"url": DELETE},
    {"id": 10**30},
    {"id": 2**63},
    {"id": "1" * 5000},
]
UNUSABLE_URL_EDITS: list[dict] = [
    {"url": "not a url"},
    {"url": "file:///etc/passwd"},
    {"url": "http://169.254.169.254/latest/meta-data/"},
    {"url": "javascript:alert(1)"},
]


def portable_name_problem(name: str) -> str | None:
    """Why `name` would not work as a file or folder name on Windows, macOS or Linux, or None."""
    if name in ("", ".", ".."):
        return "empty, '.' or '..'"
    if len(name.encode("utf-8")) > 255:
        return "longer than 255 bytes"
    bad = [c for c in name if c in FORBIDDEN or ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) <= 0xDFFF]
    if bad:
        return f"forbidden characters {bad!r}"
    if name[-1] in " .":
        return "ends with a space or a dot"
    if name[0] in " .":
        return "starts with a space or a dot"
    if name.split(".")[0].rstrip(" ").upper() in WINDOWS_RESERVED:
        return "a Windows device name"
    if unicodedata.normalize("NFC", name) != name:
        return "not NFC"
    return None


def assert_tree_is_portable(root: Path) -> int:
    checked = 0
    real_root = root.resolve()
    for path in root.rglob("*"):
        assert not path.is_symlink(), f"{path} is a symlink"
        assert path.resolve().is_relative_to(real_root), f"{path} resolves outside {real_root}"
        problem = portable_name_problem(path.name)
        assert problem is None, f"{path.relative_to(root)}: {path.name!r} is {problem}"
        checked += 1
    return checked


def outside_files(base: Path, *inside: Path) -> set[Path]:
    keep = [p.resolve() for p in inside]
    return {p for p in base.rglob("*") if not any(p.resolve().is_relative_to(k) for k in keep)}


def patch_items(fake, edits: dict[int, dict]) -> None:
    """Rewrite chosen /api/v1/images items as the server emits them."""
    original = fake.image_item

    def image_item(request, img, **kw):
        item = original(request, img, **kw)
        for key, value in edits.get(img.id, {}).items():
            if value is DELETE:
                item.pop(key, None)
            else:
                item[key] = value
        return item

    fake.image_item = image_item


def publish(fake, username: str, metas: list, **kw) -> list[int]:
    ids = []
    for meta in metas:
        ids += fake.publish_images(username, 1, meta=meta, **kw)
    return ids


def test_hostile_names_in_every_mode_and_layout(ws, fake, tmp_path):
    """The dataset's hostile user, models and versions, plus a model name of every kind."""
    ids = publish(fake, "hostile", [{"Model": name, "prompt": f"test {n}"} for n, name in enumerate(HOSTILE_MODEL_NAMES)])
    REPORT.inputs["hostile names from the service"] += len(HOSTILE_MODEL_NAMES) + 12
    before = outside_files(tmp_path, ws.downloads, ws.data_dir)
    runs = [
        ws.cli("--mode", "1", "--username", "hostile"),
        ws.cli("--mode", "1", "--username", "hostile", "--layout", "organized", "--output_dir", "organized"),
        ws.cli("--mode", "1", "--username", "hostile", "--no_sort", "--output_dir", "nosort"),
        ws.cli("--mode", "2", "--model_id", "1005,1012"),
        ws.cli("--mode", "4", "--model_version_id", "2009,2010,2011,2023,2024", "--layout", "organized",
               "--output_dir", "organized"),
        ws.cli("--mode", "3", "--tags", "hostile", "--disable_prompt_check", "y"),
        ws.cli("--mode", "1", "--username", "hostile", "--max_path", "60", "--output_dir", "short"),
    ]
    for run in runs:
        assert_clean_output(run)
        assert run.returncode in (0, 1), run
    assert runs[0].returncode == 0, runs[0]
    short = runs[-1]
    if short.returncode:
        assert "unusable path" in short.stdout or "max_path" in short.output, short
    assert outside_files(tmp_path, ws.downloads, ws.data_dir, ws.root / "organized", ws.root / "nosort",
                         ws.root / "short") == before, "something was written outside the output folders"
    for folder in ("image_downloads", "organized", "nosort", "short"):
        root = ws.root / folder
        REPORT.files_checked += assert_tree_is_portable(root)
        check_files(root, fake.dataset)
    hostile = {i.id for i in fake.dataset.images_for_user("hostile")} | set(ids)
    classic = {int(p.name.split(".")[0]) for p in media_files(ws.downloads / "Username_Search" / "hostile")}
    assert classic == hostile
    assert {int(p.name.split(".")[0]) for p in media_files(ws.root / "nosort")} == hostile
    assert {int(p.name.split(".")[0]) for p in media_files(ws.root / "organized" / "CivitAI_Browse")} >= hostile
    for root in (ws.downloads, ws.root / "organized"):
        names = {p.name.lower() for p in root.rglob("*")}
        assert "evil" not in names and "evil2" not in names, "a prompt chose a folder"
        assert not [n for n in names if n.startswith("urn")], "a URN became a folder"
    # one download per image, however many layouts and modes found it
    fetched = cdn_fetches(fake)
    assert max(fetched.values()) == 1, [u for u, n in fetched.items() if n > 1]
    check_library(ws)


@pytest.mark.parametrize("layout", ["classic", "organized"])
def test_json_that_breaks_the_schema(ws, fake, layout):
    usable = publish(fake, "oddjson", ODD_META) + publish(fake, "oddjson", [{"prompt": "edit"}] * len(ITEM_EDITS))
    edited = usable[len(ODD_META):]
    unusable = publish(fake, "oddjson", [{"prompt": "unusable"}] * len(UNUSABLE_EDITS))
    bad_url = publish(fake, "oddjson", [{"prompt": "bad url"}] * len(UNUSABLE_URL_EDITS))
    edits = dict(zip(edited, ITEM_EDITS, strict=True))
    edits.update(zip(unusable, UNUSABLE_EDITS, strict=True))
    edits.update(zip(bad_url, UNUSABLE_URL_EDITS, strict=True))
    patch_items(fake, edits)
    REPORT.inputs["odd JSON from the service"] += len(ODD_META) + len(ITEM_EDITS) + len(UNUSABLE_EDITS) + len(UNUSABLE_URL_EDITS)

    # (--max_path is tested elsewhere; here a 300-character username must not hit it)
    run = ws.cli("--mode", "1", "--username", "oddjson", "--layout", layout, "--max_path", "4096")
    assert_clean_output(run)
    assert run.returncode == 1, run  # the items that cannot be downloaded are failures
    # every unusable item is reported, every usable one is on disk
    assert run.output.count("skipped an unusable item") == len(UNUSABLE_EDITS), run
    for image_id in bad_url:
        line = next((ln for ln in run.stdout.splitlines() if ln.strip().startswith(f"{image_id}:")), "")
        assert "non-CivitAI host" in line, f"image {image_id}: {line!r}\n{run}"
    files = check_files(ws.downloads, fake.dataset)
    assert set(files) == set(usable)
    REPORT.files_checked += assert_tree_is_portable(ws.downloads)
    check_library(ws)
    # the sidecars hold what the service said, and never the token
    for image_id in usable:
        (sidecar,) = [p for p in ws.downloads.rglob(f"{image_id}.json")]
        text = sidecar.read_text("utf-8")
        REPORT.sidecars_checked += 1
        assert "secret123" not in text
    # and a re-run is a no-op for what is done
    mark = len(fake.request_log)
    again = ws.cli("--mode", "1", "--username", "oddjson", "--layout", layout, "--max_path", "4096")
    assert_clean_output(again)
    assert not cdn_fetches(fake, since=mark)


def test_usernames_differing_only_in_case(ws, fake):
    runs = [
        ws.cli("--mode", "1", "--username", "mixedcase"),
        ws.cli("--mode", "1", "--username", "MIXEDCASE"),
        ws.cli("--mode", "1", "--username", "MixedCase,mixedcase,mIxEdCaSe"),
        ws.cli("--mode", "1", "--username", "mixedcase", "--layout", "organized"),
    ]
    REPORT.inputs["usernames differing in case"] += 6
    for run in runs:
        assert_clean_output(run)
        assert run.returncode == 0, run
    expected = {i.id for i in fake.dataset.images_for_user("MixedCase")}
    fetched = cdn_fetches(fake)
    assert len(fetched) == len(expected) and set(fetched.values()) == {1}, "an image was fetched twice"
    files = check_files(ws.downloads, fake.dataset)
    assert set(files) == expected
    for folder in (ws.downloads / "Username_Search").iterdir():
        assert {int(p.name.split(".")[0]) for p in media_files(folder)} == expected, folder
    check_library(ws)


def test_links_to_other_hosts_are_never_followed(ws, fake):
    """nextPage and media URLs pointing at another host: refused and reported; that host never
    sees a single request (not even with an API key set)."""
    with FakeCivitai(fake.dataset) as elsewhere:
        fake.configure(next_page_host_override=elsewhere.base_url)
        run = ws.cli("--mode", "1", "--username", "bigcap", "--max_images", "3", CIVITAI_API_KEY="k" * 32)
        assert_clean_output(run)
        assert "not CivitAI" in run.output, run
        fake.configure(next_page_host_override=None, allowed_media_host_override=elsewhere.base_url)
        run2 = ws.cli("--mode", "1", "--username", "grace", CIVITAI_API_KEY="k" * 32)
        assert_clean_output(run2)
        assert run2.returncode == 1, run2
        assert "non-CivitAI host" in run2.stdout, run2
        fake.configure(allowed_media_host_override="http://127.0.0.1:9")  # nothing listens there
        run3 = ws.cli("--mode", "1", "--username", "heidi", CIVITAI_API_KEY="k" * 32)
        assert run3.returncode == 1 and "non-CivitAI host" in run3.stdout, run3
        assert elsewhere.request_log == [], "a request went to another host"
    REPORT.inputs["links to other hosts"] += 3
    assert media_files(ws.downloads / "Username_Search" / "grace") == []
    check_library(ws)

