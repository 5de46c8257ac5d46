"""WebP conversion throughput: ConvertJob (verification included) against `cwebp -q 90` on all cores.

    python -m tests.benchmarks.convert [--json] [--images 150] [--rounds 3] [--workers N]

The image set: what CivitAI users download, 1-3 MB each (hundreds of MB in all): 60% JPEG
(1280-2048 px, q95-97, 4:4:4, the A1111 text in EXIF UserComment as A1111 writes it) and 40% PNG
(SDXL sizes; two in three with an A1111 `parameters` chunk, one in three with ComfyUI's `prompt` and
`workflow` chunks). Content: gradients, multi-scale texture, a few hundred shapes, a slight blur and
grain, so they compress like renders. Generated once (in parallel) and cached in the temp folder.

Baseline: every image through `cwebp -quiet -q 90 in -o out`, as many at once as there are cores
(what `xargs -P$(nproc)` does). Ours: a library holding the images as downloads (records, tags,
SHA-256), then ConvertJob to a destination folder at its defaults (quality 90, method 4, one worker
process per core): the source's texts read, EXIF and XMP built and embedded, every WebP re-opened,
its metadata chunks checked, decoded and compared by pHash,
renamed, its sidecar written and its conversion recorded. Rounds alternate the two (the machine
may be shared); the best round of each is compared. Target: ours >= 0.85 of cwebp's images/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from tests.benchmarks.common import emit

PNG_SIZES = [(1024, 1024), (1216, 832), (832, 1216), (1024, 1536), (1536, 1024), (1152, 896)]
JPEG_SIZES = [(1536, 1536), (1280, 1920), (1920, 1280), (1536, 2048), (1664, 1664)]
CACHE_VERSION = 2
TARGET = 0.85
USER = "benchuser"


# -- the image set -----------------------------------------------------------------------------


def _size(index: int) -> tuple[int, int]:
    return JPEG_SIZES[index % len(JPEG_SIZES)] if _is_jpeg(index) else PNG_SIZES[index % len(PNG_SIZES)]


def _is_jpeg(index: int) -> bool:
    return index % 5 < 3


def _fractal(nrng, w: int, h: int):
    """Cloud-like texture with detail at every scale (octaves of upscaled noise)."""
    import numpy as np
    from PIL import Image

    out, amp = np.zeros((h, w), np.float32), 1.0
    for cells in (4, 8, 16, 32, 64, 128, 256):
        small = nrng.random((max(2, h * cells // max(w, h)), cells))
        layer = Image.fromarray((small * 255).astype("uint8")).resize((w, h), Image.BICUBIC)
        out += np.asarray(layer, np.float32) / 255 * amp
        amp *= 0.62
    return out / out.max()


def _parameters(index: int, w: int, h: int) -> str:
    return (f"{_prompt(index)}\nNegative prompt: blurry, lowres, bad anatomy, (worst quality:1.4)\n"
            f"Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: {index}, Size: {w}x{h}, "
            f"Model hash: 6ce0161689, Model: benchXL_v10, Denoising strength: 0.4, Hires upscale: 1.5, "
            f"Hires upscaler: 4x-UltraSharp, Version: v1.10.1")


def _comfy(index: int) -> tuple[str, str]:
    """A ComfyUI graph of realistic size (~30 KB of workflow JSON), as its SaveImage writes it."""
    prompt = {str(n): {"class_type": kind, "inputs": {"seed": index, "text": _prompt(index), "steps": 30}}
              for n, kind in enumerate(["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode",
                                        "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage"] * 3)}
    nodes = [{"id": n, "type": "KSampler", "pos": [n * 40.5, n * 13.25], "size": [315, 262], "flags": {},
              "order": n, "mode": 0, "inputs": [{"name": "model", "type": "MODEL", "link": n}],
              "outputs": [{"name": "LATENT", "type": "LATENT", "links": [n + 1], "slot_index": 0}],
              "properties": {"Node name for S&R": "KSampler"},
              "widgets_values": [index, "fixed", 30, 7, "dpmpp_2m", "karras", 1]} for n in range(60)]
    workflow = {"last_node_id": 60, "last_link_id": 61, "nodes": nodes,
                "links": [[n, n, 0, n + 1, 0, "LATENT"] for n in range(60)], "groups": [], "config": {},
                "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}}, "version": 0.4}
    return json.dumps(prompt), json.dumps(workflow)


def _make_image(args: tuple[int, str]) -> str:
    """One original as generators save them: PNG (1-3 MB) with A1111 `parameters` or ComfyUI
    `prompt`/`workflow` chunks, or a JPEG (1-3 MB, q95-97, 4:4:4) with the A1111 text in its
    EXIF UserComment. Content: gradients, multi-scale texture, a few hundred shapes, grain."""
    import numpy as np
    import piexif
    import piexif.helper
    from PIL import Image, ImageDraw, ImageFilter
    from PIL.PngImagePlugin import PngInfo

    index, folder = args
    rng = random.Random(index)
    nrng = np.random.default_rng(index)
    w, h = _size(index)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for c in range(3):
        wave = (np.sin(x / w * rng.uniform(2, 9) + c) + 1) * 60 + (np.cos(y / h * rng.uniform(2, 9)) + 1) * 40
        channels.append(wave + _fractal(nrng, w, h) * 140)
    im = Image.fromarray(np.clip(np.dstack(channels), 0, 255).astype("uint8"))
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randrange(150, 400)):
        cx, cy, rad = rng.randrange(w), rng.randrange(h), rng.randrange(4, max(8, w // 14))
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=colour)
        else:
            draw.line((cx, cy, cx + rng.randrange(-w // 4, w // 4), cy + rng.randrange(-h // 4, h // 4)),
                      fill=colour, width=rng.randrange(1, 6))
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.9)))
    grain = nrng.normal(0, 6 if _is_jpeg(index) else 3, (h, w, 3))
    im = Image.fromarray(np.clip(np.asarray(im, np.float32) + grain, 0, 255).astype("uint8"))
    if _is_jpeg(index):
        path = Path(folder) / f"{index:04d}.jpeg"
        comment = piexif.helper.UserComment.dump(_parameters(index, w, h), "unicode")
        im.save(path, "JPEG", quality=rng.choice((95, 97)), subsampling=0,
                exif=piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}}))
    else:
        info = PngInfo()
        if index % 3:
            info.add_text("parameters", _parameters(index, w, h))
        else:
            prompt, workflow = _comfy(index)
            info.add_text("prompt", prompt)
            info.add_text("workflow", workflow)
        path = Path(folder) / f"{index:04d}.png"
        im.save(path, "PNG", pnginfo=info)
    return str(path)


def _prompt(index: int) -> str:
    words = ["masterpiece", "best quality", "a lighthouse on a cliff", "sunset", "volumetric light",
             "highly detailed", "oil painting", "cinematic", "wide angle", "storm clouds", "8k"]
    rng = random.Random(index)
    return ", ".join(rng.sample(words, 7))


def image_set(count: int) -> list[Path]:
    folder = Path(tempfile.gettempdir()) / f"civitgrab-bench-convert-v{CACHE_VERSION}-{count}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_make_image, [(i, str(folder)) for i in range(count)]))
        done.touch()
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpeg", ".png"))


# -- cwebp baseline ----------------------------------------------------------------------------


def run_cwebp(images: list[Path], out: Path, workers: int) -> tuple[float, int]:
    out.mkdir(parents=True, exist_ok=True)

    def one(path: Path) -> int:
        dst = out / (path.stem + ".webp")
        subprocess.run(["cwebp", "-quiet", "-q", "90", str(path), "-o", str(dst)], check=True)
        return dst.stat().st_size

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        sizes = list(pool.map(one, images))
    return time.perf_counter() - start, sum(sizes)


# -- ours --------------------------------------------------------------------------------------


def build_library(db: Path, images: list[Path]) -> None:
    from civitgrab_desktop.core.civitai.records import parse_image
    from civitgrab_desktop.core.library.store import LibraryStore, Source
    from civitgrab_desktop.core.model import TagVote

    records, paths = [], {}
    for n, path in enumerate(images):
        image_id = 50_000_000 + n
        with open(path, "rb") as fh:
            head = fh.read(32)
        width, height = _size(int(path.stem))
        records.append(parse_image({
            "id": image_id, "url": f"https://image.civitai.com/xG1/{image_id}/original=true/{image_id}{path.suffix}",
            "type": "image", "width": width, "height": height, "nsfwLevel": (1, 2, 4, 8)[n % 4],
            "username": USER, "createdAt": f"2025-03-{1 + n % 28:02d}T10:00:00.000Z", "baseModel": "SDXL 1.0",
            "modelVersionIds": [2001], "postId": 900 + n,
            "meta": {"prompt": _prompt(n), "negativePrompt": "blurry, lowres", "seed": n, "steps": 30,
                     "sampler": "DPM++ 2M Karras", "cfgScale": 7, "Model": "benchXL_v10",
                     "civitaiResources": [{"type": "checkpoint", "modelVersionId": 2001, "modelVersionName": "v1.0"}]},
            "stats": {"likeCount": n},
        }))
        paths[image_id] = (path, "image/png" if head.startswith(b"\x89PNG") else "image/jpeg")
    with LibraryStore(db) as store:
        store.upsert_listed(records, Source("username", USER, {i: str(p) for i, (p, _m) in paths.items()}))
        for image_id, (path, mime) in paths.items():
            data = path.read_bytes()
            store.mark_downloaded(image_id, "bench", str(path), mime, len(data),
                                  hashlib.sha256(data).hexdigest(), "original")
            tags = [TagVote(id=100 + k, name=f"tag {k}", type="Label", score=20 - k, up_votes=k) for k in range(12)]
            store.store_tags(image_id, "bench", tags, "api")


async def _convert(db: Path, dest: Path, workers: int) -> dict:
    from civitgrab_desktop.core.library.async_library import Library
    from civitgrab_desktop.jobs.convert import ConvertJob, ConvertParams

    library = await Library.open(db)
    try:
        job = ConvertJob(library, ConvertParams(dest=str(dest), workers=workers, videos=None))
        return await job.run()
    finally:
        await library.close()


def run_ours(images: list[Path], root: Path, workers: int) -> tuple[float, dict]:
    root.mkdir(parents=True, exist_ok=True)
    db = root / "library.sqlite3"
    build_library(db, images)
    start = time.perf_counter()
    summary = asyncio.run(_convert(db, root / "out", workers))
    elapsed = time.perf_counter() - start
    if summary["done"] != len(images):
        raise SystemExit(f"the convert job converted {summary['done']} of {len(images)}: {summary['failures'][:3]}")
    return elapsed, summary


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.convert", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    if not shutil.which("cwebp"):
        raise SystemExit("cwebp is not installed (Debian/Ubuntu: apt install webp)")
    images = image_set(args.images)
    src_bytes = sum(p.stat().st_size for p in images)
    sizes = sorted(p.stat().st_size for p in images)
    load_before = os.getloadavg()
    cwebp_times, our_times, summary, cwebp_bytes = [], [], {}, 0
    with tempfile.TemporaryDirectory(prefix="civitgrab-bench-convert-") as tmp:
        for r in range(args.rounds):
            t, cwebp_bytes = run_cwebp(images, Path(tmp) / f"cwebp{r}", args.workers)
            cwebp_times.append(t)
            t, summary = run_ours(images, Path(tmp) / f"ours{r}", args.workers)
            our_times.append(t)
            shutil.rmtree(Path(tmp) / f"cwebp{r}")
            shutil.rmtree(Path(tmp) / f"ours{r}")
    n = len(images)
    best_cwebp, best_ours = n / min(cwebp_times), n / min(our_times)
    result = {
        "images": n,
        "jpeg": sum(p.suffix == ".jpeg" for p in images),
        "png": sum(p.suffix == ".png" for p in images),
        "source_bytes": src_bytes,
        "source_file_mb_min_median_max": [round(sizes[0] / 2**20, 2), round(statistics.median(sizes) / 2**20, 2),
                                          round(sizes[-1] / 2**20, 2)],
        "load_avg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "workers": args.workers,
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "cwebp_images_per_s": round(best_cwebp, 3),
        "cwebp_median_images_per_s": round(n / statistics.median(cwebp_times), 3),
        "cwebp_webp_bytes": cwebp_bytes,
        "ours_images_per_s": round(best_ours, 3),
        "ours_median_images_per_s": round(n / statistics.median(our_times), 3),
        "ours_webp_bytes": summary.get("webp_bytes"),
        "bytes_saved": summary.get("bytes_saved"),
        "saved_percent": round(100 * summary.get("bytes_saved", 0) / src_bytes, 1) if src_bytes else None,
        "ratio": round(best_ours / best_cwebp, 3),
        "ratio_median": round(statistics.median(cwebp_times) / statistics.median(our_times), 3),
        "target": TARGET,
        "pass": best_ours / best_cwebp >= TARGET,
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
