"""A code tree sent as its difference from the version a host holds (orchestrator.delta)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from orchestrator.bundle import Bundle, build_bundle
from orchestrator.delta import KEEP, Trees, delta


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names_in(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return tar.getnames()


# Incompressible, so that one small changed file is far smaller than the bundle.
BIG = "".join(hashlib.sha256(b"%d" % n).hexdigest() + "\n" for n in range(2000))


def test_one_changed_file_is_all_the_difference_holds(tmp_path: Path) -> None:
    src = project(tmp_path / "a", {"big.py": BIG, "pkg/views.py": "V = 1\n", "manage.py": "m\n"})
    old = build_bundle(src)
    (src / "pkg" / "views.py").write_text("V = 2\n")
    new = build_bundle(src)

    patch = delta(new, dict(old.manifest))

    assert patch is not None
    assert names_in(patch.data) == ["pkg/views.py"]
    assert (patch.changed, patch.gone, patch.removed) == (1, 0, b"")
    assert patch.size < len(new.data) / 4


def test_names_gone_are_listed_and_a_file_that_became_a_folder_goes_first(tmp_path: Path) -> None:
    src = project(tmp_path / "a", {"big.py": BIG, "old.py": "o\n", "thing": "a file\n"})
    old = build_bundle(src)
    (src / "old.py").unlink()
    (src / "thing").unlink()
    project(src, {"thing/inside.py": "now a folder\n"})
    new = build_bundle(src)

    patch = delta(new, dict(old.manifest))

    assert patch is not None
    assert patch.removed == b"old.py\0thing\0"
    assert names_in(patch.data) == ["thing/inside.py"]


def test_a_changed_mode_or_link_target_is_sent(tmp_path: Path) -> None:
    src = project(tmp_path / "a", {"big.py": BIG, "run.sh": "echo\n", "a.py": "", "b.py": ""})
    (src / "alias.py").symlink_to("a.py")
    old = build_bundle(src)
    (src / "run.sh").chmod(0o755)
    (src / "alias.py").unlink()
    (src / "alias.py").symlink_to("b.py")
    new = build_bundle(src)

    patch = delta(new, dict(old.manifest))

    assert patch is not None
    assert sorted(names_in(patch.data)) == ["alias.py", "run.sh"]


def test_a_difference_no_smaller_than_the_bundle_is_not_used(tmp_path: Path) -> None:
    old = build_bundle(project(tmp_path / "a", {"one.py": "1\n"}))
    new = build_bundle(project(tmp_path / "b", {"two.py": "2\n"}))
    assert delta(new, dict(old.manifest)) is None


def test_a_kept_manifest_is_found_by_its_tree_digest(tmp_path: Path) -> None:
    bundle = build_bundle(project(tmp_path / "a", {"x.py": "x\n", "p/y.py": "y\n"}))
    trees = Trees(tmp_path / "trees")
    trees.keep(bundle)
    assert trees.held(bundle.tree) == dict(bundle.manifest)
    assert trees.held("0" * 64) is None


@pytest.mark.parametrize("tree", ["../../etc/passwd", "", "A" * 64, "0" * 63, "0" * 64 + "\n"])
def test_a_host_reported_digest_that_is_not_one_is_never_a_file_name(
    tmp_path: Path, tree: str
) -> None:
    trees = Trees(tmp_path / "trees")
    assert trees.held(tree) is None


def test_a_manifest_that_does_not_digest_to_its_name_is_ignored(tmp_path: Path) -> None:
    bundle = build_bundle(project(tmp_path / "a", {"x.py": "x\n"}))
    trees = Trees(tmp_path / "trees")
    trees.keep(bundle)
    path = tmp_path / "trees" / bundle.tree
    path.write_bytes(path.read_bytes().replace(b"x.py", b"z.py"))
    assert trees.held(bundle.tree) is None
    path.write_bytes(b"odd\0")
    assert trees.held(bundle.tree) is None


def test_only_the_newest_manifests_are_kept(tmp_path: Path) -> None:
    trees = Trees(tmp_path / "trees")
    bundles = []
    for n in range(KEEP + 3):
        bundle = build_bundle(project(tmp_path / f"s{n}", {"v.py": f"V = {n}\n"}))
        trees.keep(bundle)
        os.utime(tmp_path / "trees" / bundle.tree, (n, n))
        bundles.append(bundle)
    trees.keep(bundles[-1])  # a use refreshes it and prunes past KEEP
    kept = {p.name for p in (tmp_path / "trees").iterdir()}
    assert len(kept) == KEEP
    assert bundles[0].tree not in kept and bundles[-1].tree in kept


def test_a_cache_folder_that_cannot_be_written_costs_only_the_difference(tmp_path: Path) -> None:
    (tmp_path / "trees").write_text("a file where the folder should be")
    bundle = build_bundle(project(tmp_path / "a", {"x.py": "x\n"}))
    Trees(tmp_path / "trees").keep(bundle)  # no error
    assert Trees(tmp_path / "trees").held(bundle.tree) is None


def test_a_bundle_without_a_manifest_is_not_kept(tmp_path: Path) -> None:
    trees = Trees(tmp_path / "trees")
    trees.keep(Bundle(b"", "d", 0, "0" * 64))
    assert not (tmp_path / "trees").exists()
