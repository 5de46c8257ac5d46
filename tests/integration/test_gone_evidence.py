"""Images are marked gone from the service only with evidence (issue 18): an authenticated
listing (the key checked with /api/v1/me), and for a large drop a check of each image by id.
A key-less run, or one with an expired key, marks nothing and says why."""

from __future__ import annotations

import json


def gone_ids(workspace) -> set[int]:
    with workspace.store() as store:
        return {row[0] for row in store._all("SELECT id FROM images WHERE gone_at IS NOT NULL")}


def target_summary(workspace) -> dict:
    with workspace.store() as store:
        job = store.list_jobs()[0]
    summary = job["summary"] if isinstance(job["summary"], dict) else json.loads(job["summary"])
    return summary["targets"][0]


def test_a_keyless_run_marks_nothing_gone(workspace, fake_civitai):
    """Anonymous callers see public images only (developer.civitai.com/site/reference/images)."""
    assert workspace.cli("--mode", "1", "--username", "alice", "--api-key", "k").returncode == 0
    fake_civitai.configure(anonymous_public_only=True)
    fake_civitai.delete_images([fake_civitai.dataset.images_for_user("alice", mask=1)[0].id])  # really gone
    run = workspace.cli("--mode", "1", "--username", "alice")
    assert run.returncode == 0, run.output
    assert gone_ids(workspace) == set()
    assert "none marked gone: without an API key the service lists public (SFW) images only" in run.output
    assert "without an API key" in target_summary(workspace)["gone_reason"]
    assert "    gone: 13 images not listed, none marked gone" in run.stdout  # 12 mature + 1 deleted


def test_an_expired_key_marks_nothing_gone(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "alice", "--api-key", "old").returncode == 0
    fake_civitai.configure(anonymous_public_only=True)
    fake_civitai.revoke_api_key("old")  # now anonymous on /images, 401 on /me
    run = workspace.cli("--mode", "1", "--username", "alice", "--api-key", "old")
    assert run.returncode == 0, run.output
    assert gone_ids(workspace) == set()
    assert "did not accept the API key" in run.output
    assert fake_civitai.requests("/api/v1/me")[-1].status == 401


def test_a_large_drop_is_checked_image_by_image(workspace, fake_civitai):
    assert workspace.cli("--mode", "1", "--username", "grace", "--api-key", "k").returncode == 0
    images = fake_civitai.dataset.images_for_user("grace", mask=31)
    victims = [i.id for i in images[:6]]
    fake_civitai.delete_images(victims)
    fake_civitai.clear_log()
    run = workspace.cli("--mode", "1", "--username", "grace", "--api-key", "k")
    assert run.returncode == 0, run.output
    checked = sorted(int(dict(r.query)["imageId"]) for r in fake_civitai.requests("/api/v1/images")
                     if "imageId" in dict(r.query))
    assert checked == sorted(victims)
    assert gone_ids(workspace) == set(victims)
    reason = target_summary(workspace)["gone_reason"]
    assert f"6 images of {len(images)} not listed" in reason and "checked by id: 6 gone" in reason
