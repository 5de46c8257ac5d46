"""Real-size media for the download benchmark, generated once and cached on disk.

What users download from CivitAI: PNG originals of 1-3 MB carrying A1111 (`parameters`) or ComfyUI
(`prompt` + `workflow`) text chunks, JPEGs of 0.3-1 MB (A1111 puts its parameters in the EXIF
UserComment), WebPs, and mp4 clips of several MB. The pictures are a smooth field plus film grain,
so they compress like photographs and renders rather than to nothing.

    python -m tests.benchmarks.download_media [--cache DIR]   # prints the manifest path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

VERSION = 2  # bump when the mix changes: the cache is keyed by it
DEFAULT_CACHE = Path(tempfile.gettempdir()) / f"civitgrab-bench-media-v{VERSION}"
PNG_SIZES = [(832, 1216), (1024, 1024), (1216, 832), (1024, 1536)]
JPEG_SIZES = [(1024, 1536), (1536, 1536), (1216, 1824), (1344, 1152)]
WEBP_SIZES = [(1024, 1536), (1536, 1536), (1024, 1024)]
COUNTS = {"png": 45, "jpeg": 80, "webp": 40, "mp4": 6}


def picture(width: int, height: int, grain: float, seed: int) -> Image.Image:
    """A smooth colour field, mid-frequency detail and Gaussian grain (a photograph's statistics)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    detail = Image.fromarray(rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8))
    field = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) * 0.7
    field += np.asarray(detail.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) * 0.3
    field += rng.normal(0, grain, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))


def a1111_text(k: int) -> str:
    return (
        f"masterpiece, best quality, a lighthouse on a cliff at dusk, volumetric light, image {k}\n"
        "Negative prompt: lowres, bad anatomy, blurry, jpeg artifacts, watermark\n"
        f"Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: {1000 + k}, Size: 1024x1536, "
        "Model hash: 31e35c80fc, Model: sdXL_v10, Denoising strength: 0.4, Hires upscale: 1.5, Version: v1.7.0"
    )


def comfy_chunks(k: int) -> dict[str, str]:
    """ComfyUI's two PNG text chunks: the API prompt graph and the UI workflow (tens of KB)."""
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 1000 + k, "steps": 28, "cfg": 6.5, "sampler_name": "euler",
                                                    "scheduler": "normal", "denoise": 1, "model": ["4", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdXL_v10.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": f"a fox in the snow, image {k}", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, lowres", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    nodes = [
        {"id": n, "type": node["class_type"], "pos": [100 * n, 80 * n], "size": [315, 262], "flags": {}, "order": n,
         "mode": 0, "inputs": [], "outputs": [], "properties": {"Node name for S&R": node["class_type"]},
         "widgets_values": list(node["inputs"].values())}
        for n, node in ((int(i), v) for i, v in prompt.items())
    ] * 8  # real workflows carry many nodes, groups and UI state
    workflow = {"last_node_id": 9, "last_link_id": 9, "nodes": nodes, "links": [], "groups": [], "config": {},
                "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}
    return {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)}


def _jpeg_exif(img: Image.Image, text: str) -> bytes:
    exif = img.getexif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")  # UserComment, as A1111 writes it
    return exif.tobytes()


def _write_image(path: Path, fmt: str, k: int) -> tuple[int, int]:
    if fmt == "png":
        width, height = PNG_SIZES[k % len(PNG_SIZES)]
        img = picture(width, height, 2.5 + (k % 4) * 0.8, seed=10_000 + k)
        info = PngInfo()
        if k % 2:
            for key, value in comfy_chunks(k).items():
                info.add_text(key, value)
        else:
            info.add_text("parameters", a1111_text(k))
        img.save(path, "PNG", pnginfo=info)
    elif fmt == "jpeg":
        width, height = JPEG_SIZES[k % len(JPEG_SIZES)]
        img = picture(width, height, 3.0 + (k % 3), seed=20_000 + k)
        img.save(path, "JPEG", quality=90 + k % 5, exif=_jpeg_exif(img, a1111_text(k)))
    else:
        width, height = WEBP_SIZES[k % len(WEBP_SIZES)]
        img = picture(width, height, 3.0 + (k % 3), seed=30_000 + k)
        img.save(path, "WEBP", quality=85, method=2)
    return width, height


def _write_video(path: Path, k: int) -> tuple[int, int]:
    width, height = (720, 1080) if k % 2 else (1080, 720)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=s={width}x{height}:r=24:d={4 + k % 3}", "-vf", "noise=alls=11:allf=t",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "24", "-pix_fmt", "yuv420p",
         "-movflags", "+faststart", str(path)],
        check=True,
    )
    return width, height


def ensure_media(cache: Path = DEFAULT_CACHE) -> Path:
    """The manifest of the benchmark media under `cache`, generating what is missing."""
    manifest = cache / "manifest.json"
    if manifest.is_file():
        return manifest
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the download benchmark needs ffmpeg for its mp4 clips")
    cache.mkdir(parents=True, exist_ok=True)
    entries = []
    order = [fmt for k in range(max(COUNTS.values())) for fmt in COUNTS if k < COUNTS[fmt]]  # interleaved
    seen = dict.fromkeys(COUNTS, 0)
    for fmt in order:
        k = seen[fmt]
        seen[fmt] += 1
        path = cache / f"{fmt}_{k:03d}.{fmt}"
        width, height = _write_video(path, k) if fmt == "mp4" else _write_image(path, fmt, k)
        entries.append({"path": str(path), "format": fmt, "width": width, "height": height, "bytes": path.stat().st_size})
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    os.replace(tmp, manifest)  # written last: a partial cache is regenerated
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    path = ensure_media(args.cache)
    entries = json.loads(path.read_text(encoding="utf-8"))
    by_format: dict[str, list[int]] = {}
    for e in entries:
        by_format.setdefault(e["format"], []).append(e["bytes"])
    print(path)
    for fmt, sizes in by_format.items():
        print(f"{fmt}: {len(sizes)} files, {min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB, {sum(sizes) / 1e6:.1f} MB")
    print(f"total: {sum(e['bytes'] for e in entries) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
