"""The tag-mode summary CSV of a download never starts a formula (issue 15, finding 3): names and
tags come from the service and from imported classic files."""

from __future__ import annotations

import csv
import json

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_mode3_summary_csv_escapes_hostile_tags_and_names(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    image = next(i for m in dataset.models_with_tag("landscape") for i in dataset.images_for_model(m.id))
    classic = workspace.root / "classic"
    classic.mkdir()
    entries = {f"tag:landscape_{image.id}_HD": {"quality": "HD", "checkpoint_name": '=HYPERLINK("http://evil","x")',
                                                 "tags": ["+cmd|' /C calc'!A0", "@evil", "-1+1"]}}
    (classic / "downloaded_images.json").write_text(json.dumps(entries), encoding="utf-8")
    assert workspace.cli("migrate", str(classic)).returncode == 0
    run = workspace.cli("--mode", "3", "--tags", "landscape", "--disable_prompt_check", "y", "--no-save")
    assert run.returncode == 0, run.output
    (summary,) = (workspace.downloads / "Model_Tag_Search" / "landscape").glob("summary_landscape_*.csv")
    rows = list(csv.reader(summary.open(encoding="utf-8", newline="")))
    cells = [c for row in rows[1:] for c in row]
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []
    assert {"'+cmd|' /C calc'!A0", "'@evil", "'-1+1"} <= set(cells)
