"""The generation parameters the detail pane shows, read from an image's meta (no Qt).

CivitAI's meta is the generator's own: A1111-style keys (`prompt`, `negativePrompt`, `seed`,
`sampler`, `steps`, `cfgScale`, `Model`, `resources[]`) and/or the site's `civitaiResources[]`
(checkpoint, LoRA, embedding versions with weights). Both shapes are read; missing values are
None, and nothing here raises on odd shapes (a string where a number was expected, a list of
junk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LORA_TYPES = {"lora", "locon", "lycoris", "dora"}


@dataclass(frozen=True)
class Resource:
    name: str
    kind: str  # lora | embedding | checkpoint | ...
    weight: float | None = None
    version_id: int | None = None

    def label(self) -> str:
        text = self.name
        if self.weight is not None:
            text += f" ({self.weight:g})"
        return text


@dataclass(frozen=True)
class GenerationInfo:
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: str | None = None
    sampler: str | None = None
    steps: str | None = None
    cfg_scale: str | None = None
    clip_skip: str | None = None
    size: str | None = None
    model: str | None = None  # the checkpoint as the generator named it
    loras: tuple[Resource, ...] = field(default=())
    embeddings: tuple[Resource, ...] = field(default=())

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the short values that are present, in display order."""
        rows = [
            ("Seed", self.seed),
            ("Sampler", self.sampler),
            ("Steps", self.steps),
            ("CFG scale", self.cfg_scale),
            ("Clip skip", self.clip_skip),
            ("Size", self.size),
        ]
        return [(label, value) for label, value in rows if value]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _first(meta: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = _text(meta.get(key))
        if value is not None:
            return value
    return None


def _resources(meta: dict[str, Any]) -> list[Resource]:
    found: list[Resource] = []
    seen: set[tuple[str, str]] = set()

    def add(name: Any, kind: Any, weight: Any = None, version_id: Any = None) -> None:
        name_text, kind_text = _text(name), (_text(kind) or "").lower()
        if not name_text and _int(version_id) is not None:
            # CivitAI usually lists LoRAs by version id alone ({"type": "lora", "modelVersionId": …})
            name_text = f"version {_int(version_id)}"
        if not name_text or not kind_text:
            return
        key = (name_text.lower(), kind_text)
        if key in seen:
            return
        seen.add(key)
        found.append(Resource(name_text, kind_text, _number(weight), _int(version_id)))

    for res in meta.get("civitaiResources") or ():
        if isinstance(res, dict):
            name = res.get("modelVersionName") or res.get("modelName") or res.get("name")
            if res.get("modelName") and res.get("modelVersionName"):
                name = f"{res['modelName']} · {res['modelVersionName']}"
            add(name, res.get("type"), res.get("weight") if "weight" in res else res.get("strength"),
                res.get("modelVersionId"))
    for res in meta.get("resources") or ():
        if isinstance(res, dict):
            add(res.get("name"), res.get("type"), res.get("weight"))
    for res in meta.get("additionalResources") or ():
        if isinstance(res, dict):
            add(res.get("name"), res.get("type"), res.get("strength", res.get("weight")))
    return found


def generation_info(meta: dict[str, Any] | None, *, prompt: str | None = None) -> GenerationInfo:
    """The generation parameters in `meta` (an ImageRow's parsed meta). `prompt` (the library's
    prompt column) is used when meta has none."""
    meta = meta if isinstance(meta, dict) else {}
    resources = _resources(meta)
    loras = tuple(r for r in resources if r.kind in LORA_TYPES)
    embeddings = tuple(r for r in resources if r.kind in ("embed", "embedding", "textualinversion"))
    cfg = _number(meta.get("cfgScale", meta.get("CFG scale")))
    return GenerationInfo(
        prompt=_first(meta, "prompt") or _text(prompt),
        negative_prompt=_first(meta, "negativePrompt", "Negative prompt"),
        seed=_first(meta, "seed", "Seed"),
        sampler=_first(meta, "sampler", "Sampler"),
        steps=_first(meta, "steps", "Steps"),
        cfg_scale=f"{cfg:g}" if cfg is not None else _first(meta, "cfgScale", "CFG scale"),
        clip_skip=_first(meta, "clipSkip", "Clip skip"),
        size=_first(meta, "Size", "size"),
        model=_first(meta, "Model", "model"),
        loras=loras,
        embeddings=embeddings,
    )
