"""core/roots.py: the one check every writer and deleter calls (issue 15, finding 1)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.core.roots import OutsideRootsError, Roots, UnusableRootError, usable_root


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "downloads"
    (root / "alice").mkdir(parents=True)
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "family.png").write_bytes(b"family")
    return root, outside


def test_paths_under_a_root_may_be_changed_and_others_not(tree):
    root, outside = tree
    roots = Roots.of([root])
    assert roots.check(root / "alice" / "1.png") == root / "alice" / "1.png"
    assert roots.contains(root / "alice" / "new" / "2.png")  # need not exist yet
    for bad in (outside / "family.png", root / ".." / "victim" / "family.png", root, Path("/etc/passwd")):
        assert not roots.contains(bad)
        with pytest.raises(OutsideRootsError):
            roots.check(bad)


def test_symlinks_are_resolved_at_the_moment_of_use(tree):
    root, outside = tree
    roots = Roots.of([root])
    target = root / "alice" / "1.png"
    assert roots.contains(target)
    # planted after the check that planned the path: a folder link and a file link out of the root
    (root / "bob").symlink_to(outside, target_is_directory=True)
    (root / "alice" / "2.png").symlink_to(outside / "family.png")
    assert not roots.contains(root / "bob" / "family.png")
    assert not roots.contains(root / "alice" / "2.png")
    with pytest.raises(OutsideRootsError):
        roots.check(root / "alice" / "2.png", "delete")
    # a link inside the root to a file inside the root is fine
    (root / "alice" / "3.png").symlink_to(target)
    assert roots.check(root / "alice" / "3.png")


def test_a_linked_root_still_covers_its_files(tmp_path):
    real = tmp_path / "disk" / "pictures"
    real.mkdir(parents=True)
    alias = tmp_path / "pictures"
    alias.symlink_to(real, target_is_directory=True)
    roots = Roots.of([alias])
    assert roots.contains(real / "a.png") and roots.contains(alias / "a.png")
    assert roots.covers(real) and not roots.covers(tmp_path)


def test_roots_cross_process_boundaries():
    roots = Roots.of(["/data/one", "/data/two"])
    assert pickle.loads(pickle.dumps(roots)) == roots


def test_a_drive_or_the_home_folder_is_never_trusted_by_name(tmp_path):
    with pytest.raises(UnusableRootError):
        usable_root(Path(tmp_path.anchor))
    with pytest.raises(UnusableRootError):
        usable_root(Path.home())
    with pytest.raises(UnusableRootError):
        usable_root(tmp_path / "missing")
    assert usable_root(tmp_path) == tmp_path


def test_the_library_keeps_roots_and_backfills_them_from_old_jobs(tmp_path):
    db = tmp_path / "library.sqlite3"
    with LibraryStore(db) as store:
        store.add_root(tmp_path / "dl", "download")
        store.add_root(tmp_path / "dl", "download")  # once
        with pytest.raises(UnusableRootError):
            store.add_root(Path.home(), "classic")
        assert store.list_roots() == [(str(tmp_path / "dl"), "download")]
        assert store.roots().contains(tmp_path / "dl" / "x.png")
        assert store.remove_root(tmp_path / "dl") and not store.roots().folders


def test_migration_4_takes_the_folders_of_existing_jobs(tmp_path):
    from civitgrab_desktop.core.library.schema import MIGRATIONS

    db = tmp_path / "library.sqlite3"
    with LibraryStore(db, migrations=MIGRATIONS[:3]) as store:
        store.create_job("download", {"mode": 1, "identifiers": ["a"], "output_dir": str(tmp_path / "dl")})
        store.create_job("download", {"mode": 1, "identifiers": ["b"], "output_dir": "relative/dl"})
        store.create_job("convert", {"dest": str(tmp_path / "out" / "CivitAI_Browse")})
    with LibraryStore(db) as store:
        assert sorted(store.list_roots()) == [(str(tmp_path / "dl"), "download"), (str(tmp_path / "out"), "convert")]
        assert os.path.isabs(store.list_roots()[0][0])


def test_the_converter_worker_never_replaces_a_file_outside_the_roots(tmp_path):
    """The worker checks again at the moment of use: a file the job planned inside the roots that
    is now a link to a file outside (or simply outside) is left as it is."""
    import hashlib

    from PIL import Image

    from civitgrab_desktop.jobs.convert_tasks import EncodeOptions, ImageTask
    from civitgrab_desktop.jobs.convert_worker import run_task

    root, outside = tmp_path / "dl", tmp_path / "victim"
    root.mkdir()
    outside.mkdir()
    victim = outside / "5.png"
    Image.new("RGB", (40, 30), (9, 99, 199)).save(victim)
    data = victim.read_bytes()
    planted = root / "5.png"
    planted.symlink_to(victim)
    for src in (victim, planted):
        task = ImageTask(image_id=5, src=str(src), out_dir=str(src.parent), in_place=True, options=EncodeOptions(),
                         info={"id": 5}, tags=[], record={"id": 5}, sha256=hashlib.sha256(data).hexdigest(),
                         roots=Roots((str(root),)))
        result = run_task(task)
        assert result.status != "converted", result
        assert victim.read_bytes() == data and planted.is_symlink()
        assert not (outside / "5.webp").exists() and not (root / "5.webp").exists()


def test_paths_resolve_as_path_resolve_does(tmp_path):
    """The one-call resolution (an O_PATH descriptor's name on Linux) gives what Path.resolve()
    gives: through folder and file links, `..` after a link, missing tails, dangling links."""
    from civitgrab_desktop.core.roots import _real

    base = tmp_path / "base"
    (base / "real" / "deep").mkdir(parents=True)
    (base / "real" / "file.png").write_bytes(b"x")
    (base / "outside").mkdir()
    (base / "dirlink").symlink_to(base / "outside", target_is_directory=True)
    (base / "real" / "filelink").symlink_to(base / "real" / "file.png")
    (base / "real" / "relative").symlink_to("deep", target_is_directory=True)
    (base / "real" / "dangling").symlink_to(base / "nowhere" / "x")
    cases = [
        base, base / "real", base / "real" / "file.png", base / "dirlink", base / "dirlink" / "new.png",
        base / "dirlink" / ".." / "real", base / "real" / "filelink", base / "real" / "relative" / "a" / "b.png",
        base / "real" / "dangling", base / "missing" / "more" / "x.png", base / "real" / "file.png" / "x",
        base / "real" / "." / "deep" / "..", Path("relative-name"),
    ]
    for case in cases:
        assert _real(case) == case.resolve(), case
    loop = base / "loop"
    loop.symlink_to(loop)
    with pytest.raises(RuntimeError):
        _real(loop / "x")


def test_a_root_is_resolved_once_per_instance_and_a_repointed_root_refuses(tmp_path):
    """A job resolves its roots once; re-pointing a root's link afterwards leads its paths to
    a place the resolved root does not cover: refused, never let through."""
    first, second = tmp_path / "disk1", tmp_path / "disk2"
    first.mkdir()
    second.mkdir()
    alias = tmp_path / "pictures"
    alias.symlink_to(first, target_is_directory=True)
    roots = Roots.of([alias])
    assert roots.check(alias / "a.png")
    alias.unlink()
    alias.symlink_to(second, target_is_directory=True)
    with pytest.raises(OutsideRootsError):
        roots.check(alias / "a.png")
    assert Roots.of([alias]).check(alias / "a.png")  # a new instance (the next job) follows the link
    assert pickle.loads(pickle.dumps(roots)).check(alias / "a.png")  # another process resolves again


def test_a_link_whose_own_folder_is_outside_is_never_replaced(tmp_path):
    """Replacing or deleting a symlink acts on the link itself: a link in a folder outside the
    roots is refused even when it points back inside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "b").symlink_to(outside, target_is_directory=True)
    (outside / "back.png").symlink_to(root / "a" / "in.png")
    roots = Roots.of([root])
    with pytest.raises(OutsideRootsError):
        roots.check(root / "b" / "back.png", "delete")
