"""The convert job's per-item work, run in worker processes (plain functions and picklable
dataclasses; no Qt, no library access: the job records what the worker reports).

An image goes through: integrity check of the original (its SHA-256 against the one recorded at
download), one decode, EXIF built from the record + tags (+ the source's own generation text),
encode to a hidden temp file (fsynced), verification, rename to `<id>.webp`. Verification re-opens
the temp file, decodes it in full, compares its dimensions and frame count with the source and its
perceptual hash with the source's (threshold from the options). Nothing is deleted before that.

WebP originals are not re-encoded (that would lose quality): their image chunks are copied byte
for byte with our EXIF inserted, and the copy is verified the same way (plus: image chunks equal).
Animations (GIF, APNG, animated WebP) stay animated (core.media.webp.convert_to_webp).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.embed import MetadataBuild, build_metadata, source_metadata
from civitgrab_desktop.core.media.phash import hash_distance, phash_of
from civitgrab_desktop.core.media.sniff import GIF, JPEG, PNG, SNIFF_BYTES, WEBP, type_from_magic
from civitgrab_desktop.core.media.webp import WEBP_MAX_SIDE, _to_webp_mode, convert_to_webp, decode_webp
from civitgrab_desktop.core.media.webp_riff import (
    WebPFormatError,
    build_webp,
    exif_payload,
    image_chunks,
    parse_chunks,
    with_metadata,
    xmp_payload,
)
from civitgrab_desktop.core.organize import sidecars
from civitgrab_desktop.core.roots import OutsideRootsError
from civitgrab_desktop.jobs import convert_place as place
from civitgrab_desktop.jobs.convert_tasks import (
    READ_ONLY_REASON,
    EncodeOptions,
    HashMismatch,
    ImageTask,
    ItemFailed,
    ItemSkipped,
    TaskResult,
    VideoTask,
)

# phash looks at 32x32; box-reducing to >= 256 px first gives the same low frequencies ~5x faster.
HASH_BASE = 256
CONVERTIBLE = (JPEG, PNG, GIF, WEBP)
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class _Expected:
    """What the verified WebP must show: the source's oriented size, frames and hash."""

    size: tuple[int, int]
    frames: int
    src_hash: str


# -- worker process setup ----------------------------------------------------------------------


def init_worker(lifeline) -> None:
    """Worker process initializer. Ctrl+C is the job's business (it stops gracefully). `lifeline`
    is the read end of a pipe only the job process writes to: when that process dies (SIGKILL),
    the read ends with EOF and the worker exits instead of finishing work nobody would record.
    (A parent-pid check is not enough: a killed parent stays a zombie until it is reaped.)"""
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()  # nothing is ever sent
        os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


# -- entry point -------------------------------------------------------------------------------


def run_task(task: ImageTask | VideoTask) -> TaskResult:
    """Do one item; never raises for a problem with the item (it comes back as `failed`)."""
    try:
        if isinstance(task, VideoTask):
            return place.place_video(task)
        return convert_image(task)
    except ItemFailed as exc:
        return TaskResult(task.image_id, "failed", str(exc))
    except ItemSkipped as exc:
        return TaskResult(task.image_id, "skipped", str(exc))
    except OutsideRootsError as exc:  # a path led out of the chosen folders since it was planned
        return TaskResult(task.image_id, "failed", str(exc))
    except OSError as exc:
        return TaskResult(task.image_id, "failed", f"file error: {exc}")
    except Exception as exc:  # a hostile file must not end the job
        return TaskResult(task.image_id, "failed", f"unexpected error: {type(exc).__name__}: {exc}")


# -- images ------------------------------------------------------------------------------------


def convert_image(task: ImageTask) -> TaskResult:
    src = Path(task.src)
    out_dir = Path(task.out_dir)
    final = out_dir / f"{task.image_id}.webp"
    if task.in_place and not task.roots.contains(src):
        raise ItemSkipped(READ_ONLY_REASON)  # in place would replace and delete it
    task.roots.check(final, "write")
    if not src.is_file():
        if task.in_place and final.is_file():
            return _adopt(task, final)
        raise ItemFailed(f"the original file is missing: {src}")
    original_stat = src.stat()  # before a WebP original is replaced under the same name
    data = src.read_bytes()
    kind = type_from_magic(data[:SNIFF_BYTES])
    if task.sha256 and hashlib.sha256(data).hexdigest() != task.sha256:
        if task.in_place and src == final and kind is WEBP and place.written_for(final, task.image_id):
            # A WebP original converted in place is replaced under its own name (only after the
            # copy was verified); a run killed before recording it left our file there.
            return _adopt(task, final)
        raise ItemFailed("the original changed since it was downloaded (SHA-256 differs); left as it is")
    if kind not in CONVERTIBLE:
        raise ItemSkipped(f"not a JPG/PNG/GIF/WebP image ({kind.mime if kind else 'unknown format'})")
    source = source_metadata(src, data)
    built = build_metadata(task.info, task.tags, source)

    out_dir.mkdir(parents=True, exist_ok=True)
    place.remove_stale_temps(final)
    tmp = place.temp_name(final)
    notes: list[str] = []
    try:
        how = "encoded"
        if kind is WEBP:
            expected = _embed_metadata(data, tmp, built)
            webp_hash = verify_webp(tmp, expected, task.options.phash_threshold, built)
        else:
            expected = _encode(src, data, tmp, built, task.options)
            try:
                webp_hash = verify_webp(tmp, expected, task.options.phash_threshold, built)
            except HashMismatch as lossy_failure:
                if task.options.lossless:
                    raise
                # Lossy WebP can move a small or noisy picture's pHash past the threshold; the
                # lossless encode keeps every pixel, so it is the faithful copy (the log says so).
                tmp.unlink()
                lossless = dataclasses.replace(task.options, lossless=True)
                expected = _encode(src, data, tmp, built, lossless)
                webp_hash = verify_webp(tmp, expected, task.options.phash_threshold, built)
                how = "encoded-lossless"
                notes.append(f"image {task.image_id}: lossy WebP at quality {task.options.quality} failed "
                             f"verification ({lossy_failure}); saved as lossless WebP instead")
        files.set_mtime(tmp, task.created_at)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    files.fsync_dir(out_dir)

    result = TaskResult(
        task.image_id,
        "converted",
        how="exif-only" if kind is WEBP else how,
        webp_path=str(final),
        src_phash=expected.src_hash,
        webp_phash=webp_hash,
        distance=hash_distance(expected.src_hash, webp_hash),
        src_bytes=len(data),
        webp_bytes=final.stat().st_size,
        exif_dropped=built.dropped,
        notes=notes,
    )
    extra = _sidecar_extra(src, source.parameters, built.dropped, expected.src_hash, result.distance)
    place.write_sidecar(final, task.record, task.tags, extra)
    if task.in_place:
        place.finish_in_place(task, original_stat, final, result, extra)
    return result


def _sidecar_extra(src: Path, parameters: str | None, dropped: tuple[str, ...], src_hash: str | None = None,
                   distance: int | None = None) -> dict[str, Any]:
    about: dict[str, Any] = {"convertedFrom": src.name}
    if src_hash is not None:
        # In place, a run killed after the original was removed finishes from this (_adopt).
        about["sourcePhash"] = src_hash
        about["phashDistance"] = distance
    if parameters:
        about["parameters"] = parameters  # the source file's own generation text
    if dropped:
        about["exifDropped"] = list(dropped)  # cut in the EXIF to fit; whole in the XMP and here
    return {"civitgrab": about}


def _oriented(im: Image.Image) -> Image.Image:
    # exif_transpose copies the whole image even when there is nothing to turn.
    if im.getexif().get(_ORIENTATION, 1) not in (1, None):
        return ImageOps.exif_transpose(im)
    return im


def _encode(src: Path, data: bytes, tmp: Path, meta: MetadataBuild, options: EncodeOptions) -> _Expected:
    """Decode once, hash the picture the WebP must show, encode it into `tmp` (fsynced)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if max(im.size) > WEBP_MAX_SIDE:
                raise ItemFailed(f"{im.width}x{im.height} is larger than WebP allows ({WEBP_MAX_SIDE} per side)")
            if getattr(im, "is_animated", False) and getattr(im, "n_frames", 1) > 1:
                frames, first_hash = im.n_frames, image_hash(im)
                outcome = convert_to_webp(src, tmp, exif=meta.exif.data, xmp=meta.xmp, quality=options.quality,
                                          lossless=options.lossless, method=options.method)
                return _Expected((outcome.width, outcome.height), frames, first_hash)
            icc = im.info.get("icc_profile") if im.mode != "CMYK" else None
            still = _to_webp_mode(_oriented(im))
            still.load()
    except (ItemFailed, ItemSkipped, WebPFormatError):
        raise
    except Image.DecompressionBombError as exc:
        # the same file next time too: set aside for good (skipped), not retried by every run
        raise ItemSkipped(f"the original is too large to decode safely ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for a broken file
        raise ItemFailed(f"cannot decode the original: {type(exc).__name__}: {exc}") from exc
    expected = _Expected(still.size, 1, image_hash(still))
    params: dict[str, Any] = {"quality": options.quality, "lossless": options.lossless,
                              "method": options.method, "exif": meta.exif.data, "xmp": meta.xmp}
    if icc:
        params["icc_profile"] = icc
    with open(tmp, "xb") as fh:
        still.save(fh, "WEBP", **params)
        fh.flush()
        os.fsync(fh.fileno())
    return expected


def _embed_metadata(data: bytes, tmp: Path, meta: MetadataBuild) -> _Expected:
    """A WebP original: same image chunks, our EXIF and XMP. Verified against the original's decode."""
    try:
        chunks = parse_chunks(data)
        new = build_webp(with_metadata(chunks, meta.exif.data, meta.xmp))
        with Image.open(io.BytesIO(data)) as im:
            frames = getattr(im, "n_frames", 1)
            expected = _Expected(im.size, frames, image_hash(im))
    except Exception as exc:
        raise ItemFailed(f"cannot read the original WebP: {type(exc).__name__}: {exc}") from exc
    if image_chunks(parse_chunks(new)) != image_chunks(chunks):
        raise ItemFailed("inserting the metadata changed the image data")
    with open(tmp, "xb") as fh:
        fh.write(new)
        fh.flush()
        os.fsync(fh.fileno())
    return expected


# -- verification ------------------------------------------------------------------------------


def image_hash(im: Image.Image) -> str:
    """pHash (16 hex digits) of the current frame, after flattening transparency onto white and
    box-reducing to >= HASH_BASE px. Source and WebP are hashed the same way, so their distance
    is meaningful; the reduction keeps exactly what phash looks at (the lowest frequencies)."""
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        # Flattened before reducing: the colour under transparent pixels (which lossy WebP
        # changes) must not bleed into the average.
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    elif im.mode not in ("RGB", "L", "RGBX"):
        im = im.convert("RGB")
    factor = min(im.size) // HASH_BASE
    small = im.reduce(factor) if factor > 1 else im.copy()
    if small.mode == "RGBX":  # the padding byte is not a colour
        small = small.convert("RGB")
    small.info = {}  # already oriented: phash_of must not turn it again
    return phash_of(small)


def verify_webp(path: Path, expected: _Expected, threshold: int, meta: MetadataBuild | None = None) -> str:
    """Re-open the written WebP, decode every frame it has, compare size, frames and pHash, and
    (given `meta`) check its EXIF and XMP chunks hold exactly what was built. Returns its hash;
    raises ItemFailed with the reason otherwise."""
    data = path.read_bytes()
    if meta is not None:
        _verify_metadata(data, meta)
    try:
        decoded = decode_webp(data)
        webp_hash = image_hash(decoded.first)
    except Exception as exc:
        raise ItemFailed(f"verification failed: the WebP cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if decoded.size != expected.size:
        raise ItemFailed(
            f"verification failed: the WebP is {decoded.size[0]}x{decoded.size[1]}, "
            f"the original {expected.size[0]}x{expected.size[1]}"
        )
    if decoded.frames != expected.frames:
        raise ItemFailed(f"verification failed: {decoded.frames} frames, the original has {expected.frames}")
    distance = hash_distance(expected.src_hash, webp_hash)
    if distance > threshold:
        raise HashMismatch(
            f"verification failed: perceptual hash distance {distance} is above the threshold {threshold}"
        )
    return webp_hash


def _verify_metadata(data: bytes, meta: MetadataBuild) -> None:
    try:
        chunks = parse_chunks(data)
    except WebPFormatError as exc:
        raise ItemFailed(f"verification failed: the WebP is malformed ({exc})") from exc
    exif = meta.exif.data[6:] if meta.exif.data.startswith(b"Exif\x00\x00") else meta.exif.data
    if exif_payload(chunks) != exif or xmp_payload(chunks) != meta.xmp:
        raise ItemFailed("verification failed: the WebP's EXIF/XMP are not what was written")


def _recorded_hashes(final: Path) -> tuple[str | None, int | None]:
    """The source pHash and distance the conversion wrote into its sidecar, if it got that far."""
    with contextlib.suppress(Exception):
        about = sidecars.read_json_sidecar(final.with_suffix(".json")).get("civitgrab") or {}
        src_hash, distance = about.get("sourcePhash"), about.get("phashDistance")
        if isinstance(src_hash, str) and len(src_hash) == 16 and (distance is None or isinstance(distance, int)):
            return src_hash, distance
    return None, None


def _adopt(task: ImageTask, final: Path) -> TaskResult:
    """In place, a run was killed after the verified WebP took its final name but before the
    library heard of it (for a WebP original, that is the original's own name; for the others,
    the original may be removed already: nothing is removed before the WebP is verified). Check
    the file is ours and decodes, then finish the bookkeeping instead of losing track of it."""
    place.remove_stale_temps(final)
    try:
        webp_hash = image_hash(decode_webp(final.read_bytes()).first)  # every frame decodes
    except Exception as exc:
        raise ItemFailed(f"the original is missing and {final.name} cannot be read ({exc})") from exc
    if not place.written_for(final, task.image_id):
        raise ItemFailed(f"the original is missing and {final.name} was not written by civitgrab for this image")
    src_hash, distance = _recorded_hashes(final)
    if src_hash is None and Path(task.src) == final:
        src_hash, distance = webp_hash, 0  # a WebP original: the picture chunks were copied as they were
    elif src_hash is not None:
        distance = hash_distance(src_hash, webp_hash)
    result = TaskResult(
        task.image_id, "converted", how="adopted", webp_path=str(final), src_phash=src_hash, webp_phash=webp_hash,
        distance=distance, webp_bytes=final.stat().st_size, original_removed=True,
        notes=[f"image {task.image_id}: finished a conversion interrupted after the WebP was verified"],
    )
    extra = None
    with contextlib.suppress(Exception):
        extra = {"civitgrab": sidecars.read_json_sidecar(final.with_suffix(".json"))["civitgrab"]}
    place.write_sidecar(final, task.record, task.tags, extra)
    place.finish_in_place(task, None, final, result, extra)
    return result
