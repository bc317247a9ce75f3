"""Output paths: refused before work, written whole or not at all, never colliding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import ConfigError, OutputError
from convlens.outputs import (
    atomic_path,
    check_out_dir,
    check_out_file,
    printable,
    staged_dir,
    unique_names,
    write_text,
)


def _tree(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# --- refused before any work ------------------------------------------------------------

@pytest.mark.parametrize("check", [check_out_dir, check_out_file])
def test_a_path_under_a_file_is_refused(tmp_path, check):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.txt is a file, not a folder"):
        check(tmp_path / "notes.txt" / "deeper" / "out.png")
    assert _tree(tmp_path) == {"notes.txt"}


@pytest.mark.parametrize("place", ["/proc/convlens-test", "/sys/convlens-test",
                                   "/proc/self/convlens/deeper"])
def test_pseudo_file_systems_are_refused(place):
    with pytest.raises(OutputError, match=f"cannot write {place}"):
        check_out_dir(Path(place))
    with pytest.raises(OutputError, match=f"cannot write {place}"):
        check_out_file(Path(place) / "a.png")


def test_a_read_only_folder_is_refused_even_for_root(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # no write bit for anyone: refused whoever runs it
    for check in (check_out_dir, check_out_file):
        with pytest.raises(OutputError, match=r"locked is read-only"):
            check(locked / "out" / "x.png")
    with pytest.raises(OutputError, match=r"locked is read-only"):
        check_out_dir(locked)
    assert _tree(tmp_path) == {"locked"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes where only its owner may")
def test_a_folder_of_someone_else_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o577)  # others may write, the owner (this user) may not
    with pytest.raises(OutputError, match="Permission denied"):
        check_out_dir(locked / "out")


def test_existing_results_need_force(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not empty; pass force=True") as refused:
        check_out_dir(tmp_path / "res")
    assert refused.value.worded("cli").endswith("not empty; pass --force to overwrite it")
    check_out_dir(tmp_path / "res", force=True)
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_out_dir(tmp_path / "res" / "mine.txt", force=True)
    with pytest.raises(OutputError, match=r"mine\.txt exists; pass force=True") as refused:
        check_out_file(tmp_path / "res" / "mine.txt")
    assert "mine.txt exists; pass --force" in refused.value.worded("cli")
    with pytest.raises(OutputError, match="is a folder, not a file name"):
        check_out_file(tmp_path / "res", force=True)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="broken link"):
        check_out_dir(tmp_path / "gone")


# --- whole or nothing -------------------------------------------------------------------

def test_staged_folder_appears_only_when_complete(tmp_path):
    target = tmp_path / "a" / "b" / "result"
    with staged_dir(target) as stage:
        (stage / "one.txt").write_text("1")
        assert not target.exists()
        assert stage.parent == target.parent and stage.name.startswith(".")
    assert _tree(tmp_path) == {"a", "a/b", "a/b/result", "a/b/result/one.txt"}


def test_a_failure_leaves_nothing_not_even_the_parents_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError, match="boom"), staged_dir(tmp_path / "kept" / "new" /
                                                               "result") as stage:
        (stage / "half.png").write_bytes(b"half")
        raise RuntimeError("boom")
    assert _tree(tmp_path) == {"kept"}
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "x" / "y.png") as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert _tree(tmp_path) == {"kept"}


def test_force_replaces_files_keeps_the_rest_and_failure_keeps_the_old(tmp_path):
    target = tmp_path / "res"
    target.mkdir()
    (target / "conv.png").write_text("old")
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError), staged_dir(target, force=True) as stage:
        (stage / "conv.png").write_text("new, but the run fails")
        raise ValueError
    assert (target / "conv.png").read_text() == "old"
    with staged_dir(target, force=True) as stage:
        (stage / "conv.png").write_text("new")
    assert (target / "conv.png").read_text() == "new"
    assert (target / "mine.txt").read_text() == "keep me"
    assert _tree(tmp_path) == {"res", "res/conv.png", "res/mine.txt"}


def test_atomic_file_keeps_the_old_one_until_the_new_one_is_whole(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(OutputError, match=r"cannot write .*metrics\.json: disk full"), \
            atomic_path(path) as temporary:
        assert temporary.suffix == ".json" and temporary.parent == tmp_path
        temporary.write_text("half")
        raise OSError("disk full")
    assert path.read_text() == "old" and _tree(tmp_path) == {"metrics.json"}
    write_text(path, "new")
    assert path.read_text() == "new"


def test_written_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with staged_dir(tmp_path / "res") as stage:
            (stage / "b.txt").write_text("y")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "res").stat().st_mode & 0o777 == 0o755


# --- names ------------------------------------------------------------------------------

def test_batch_names_never_collide_and_read_naturally():
    names = unique_names([Path("foo-2.png"), Path("foo.jpg"), Path("foo.png")])
    assert names == ["foo-2", "foo", "foo-png"]
    assert unique_names([Path("a/cat.png"), Path("b/cat.png")]) == ["cat", "cat-2"]
    assert unique_names([Path("Dog.png"), Path("dog.jpg")]) == ["Dog", "dog-jpg"]
    assert unique_names([Path("x/a.png"), Path("y/a.png"), Path("a-2.png")]) == [
        "a", "a-3", "a-2"]
    # stems that would name this folder or the one above keep their whole file name
    assert unique_names([Path("..png"), Path("...png"), Path(".png")]) == [
        "..png", "...png", ".png"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "x"]),
                          st.sampled_from(["foo", "Foo", "foo-2", "foo-png", "foo-2-2", "bar"]),
                          st.sampled_from([".png", ".jpg", ".PNG", ""])), max_size=12))
def test_batch_names_are_unique_ignoring_case_and_repeatable(parts):
    sources = [Path(folder) / f"{stem}{suffix}" for folder, stem, suffix in parts]
    names = unique_names(sources)
    assert len({name.lower() for name in names}) == len(names)
    assert unique_names(list(sources)) == names
    for source, name in zip(sources, names):
        assert name.startswith(source.stem)


def test_printable_shows_non_utf8_bytes_and_keeps_the_rest():
    assert printable(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"
    assert printable("café ✓.png") == "café ✓.png"
    assert printable(Path("a") / os.fsdecode(b"\xff")) == "a/\\xff"
    printable("\ud800").encode("utf-8")


def test_names_no_file_system_takes_and_devices_are_refused(tmp_path):
    with pytest.raises(OutputError, match="a name in it is 300 bytes long"):
        check_out_dir(tmp_path / "a" / ("x" * 300) / "b")
    with pytest.raises(OutputError, match="NUL character"):
        check_out_file(tmp_path / "a\x00b.png")
    # with force, a device must not be replaced by a regular file (os.replace would, as root)
    with pytest.raises(OutputError, match="not a regular file"):
        check_out_file(Path("/dev/null"), force=True)
    with pytest.raises(OutputError, match="not a regular file"):
        write_text(Path("/dev/null"), "x")
    assert Path("/dev/null").is_char_device()
    assert _tree(tmp_path) == set()
