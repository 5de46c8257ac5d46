"""The self-test's sample files (resources/selftest/), and the conversion check: a sample JPEG to
WebP with our EXIF in a worker process started the way the converter starts its workers (frozen apps
need multiprocessing.freeze_support() for that), decoded and compared by perceptual hash.

No Qt here: the worker process imports this module.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from civitgrab_desktop.selftest.report import CheckFailed


def resources_dir() -> Path | None:
    from civitgrab_desktop.gui.resources import resources_dir as find

    return find()


def sample(name: str) -> Path:
    root = resources_dir()
    path = root / "selftest" / name if root is not None else None
    if path is None or not path.is_file():
        raise CheckFailed(f"sample file resources/selftest/{name} is missing")
    return path


def worker_convert(src: str, dst: str) -> dict[str, Any]:
    """Runs in a worker process (like the converter): JPEG -> WebP with our EXIF, verified."""
    from PIL import features

    from civitgrab_desktop.core.media.embed import build_metadata
    from civitgrab_desktop.core.media.exif import read_exif
    from civitgrab_desktop.core.media.phash import verify_conversion
    from civitgrab_desktop.core.media.webp import convert_to_webp
    from civitgrab_desktop.core.media.webp_riff import parse_chunks, xmp_payload
    from civitgrab_desktop.core.media.xmp import read_xmp

    if not features.check("webp"):
        raise CheckFailed("Pillow has no WebP support")
    info = {"id": 1, "username": "selftest", "meta": {"prompt": "self test ✓"}, "createdAt": "2024-01-02T03:04:05Z"}
    built = build_metadata(info, [{"name": "test", "score": 1}])
    outcome = convert_to_webp(src, dst, exif=built.exif.data, xmp=built.xmp, quality=90)
    check = verify_conversion(src, dst)
    comment = read_exif(dst).get("user_comment") or ""
    with open(dst, "rb") as fh:
        xmp = read_xmp(xmp_payload(parse_chunks(fh.read())))
    return {
        "pid": os.getpid(),
        "size": [outcome.width, outcome.height],
        "webp_bytes": outcome.webp_bytes,
        "phash_distance": check.distance,
        "same_size": check.same_size,
        "exif_roundtrip": comment == "self test ✓" and xmp["description"] == "self test ✓" and xmp["subject"] == ["test"],
        "libwebp": features.version("webp"),
    }


def pool_context():
    """The converter's own worker context (start method and forkserver preload), so the self-test
    starts workers exactly the way a conversion does."""
    from civitgrab_desktop.jobs.convert import pool_context as converter_context

    return converter_context()


async def check_worker(work: Path) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    jpeg = sample("sample.jpg")
    loop = asyncio.get_running_loop()
    dst = work / "sample.webp"
    with ProcessPoolExecutor(1, mp_context=pool_context()) as pool:
        result = await asyncio.wait_for(loop.run_in_executor(pool, worker_convert, str(jpeg), str(dst)), 90)
    if result["pid"] == os.getpid():
        raise CheckFailed("the worker ran in this process")
    if result["size"] != [96, 96] or not result["same_size"]:
        raise CheckFailed(f"WebP has the wrong size {result['size']}")
    if result["phash_distance"] > 6:
        raise CheckFailed(f"WebP differs from the JPEG (phash distance {result['phash_distance']})")
    if not result["exif_roundtrip"]:
        raise CheckFailed("the EXIF and XMP written into the WebP did not read back")
    result["start_method"] = pool_context().get_start_method()
    result.pop("pid")
    from PIL import Image

    with Image.open(dst) as im:
        im.load()
        if im.format != "WEBP":
            raise CheckFailed(f"the converted file is {im.format}, not WEBP")
    return result
