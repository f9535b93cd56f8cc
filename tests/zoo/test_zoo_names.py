"""The one check every zoo file name passes, and writing without following what is planted in the cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.zoo import names

GOOD = ["deploy.prototxt", "bvlc_googlenet.caffemodel", "x y.caffemodel", "modèle.caffemodel",
        "deploy_places205.protxt", "a" * names.MAX_NAME_BYTES, "console.prototxt", "w.part.caffemodel"]
BAD = {
    "": "is empty", ".": "a reference to a folder", "..": "a reference to a folder",
    "/home/user/notes.txt": "path separator", "../../notes.txt": "path separator", "a\\b": "path separator",
    "a\0b": "NUL", "a\nb": "control character", "a\x1b[2Jb": "control character", "evil\u202etxt": "control",
    ".bashrc": "starts with a dot", "deploy.prototxt ": "ends with a space", "deploy.": "ends with a space or a dot",
    "con": "device name", "NUL.prototxt": "device name", "com1.caffemodel": "device name", "LPT9": "device name",
    "é" * 101: "longer than", "\udcff.bin": "control character",
}


@pytest.mark.parametrize("name", GOOD)
def test_plain_names_pass(name, tmp_path):
    assert names.check_name(name, "file") == name
    assert names.inside(tmp_path, name).parent == tmp_path


@pytest.mark.parametrize("name, why", BAD.items())
def test_every_kind_of_unsafe_name_is_refused(name, why, tmp_path):
    with pytest.raises(DeepDreamError) as e:
        names.inside(tmp_path, name, "weights")
    assert why in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("refusing weights ")


def test_working_names_go_through_the_same_check(tmp_path):
    longest = tmp_path / ("a" * names.MAX_NAME_BYTES)
    # Even the longest allowed name leaves room for every working suffix under NAME_MAX (255).
    assert len(names.bad_path(longest, "0" * 40).name.encode()) <= 255
    assert names.part_path(tmp_path / "w.caffemodel") == tmp_path / "w.caffemodel.part"
    with pytest.raises(DeepDreamError, match="longer than 255"):
        names.part_path(tmp_path / ("é" * 126))  # a name never checked as a base name: still bounded


def test_writes_never_go_through_links_fifos_or_other_files_hard_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    cache = tmp_path / "cache"
    cache.mkdir()
    for kind in ("symlink", "hardlink", "fifo"):
        p = cache / f"{kind}.part"
        if kind == "symlink":
            p.symlink_to(victim)
        elif kind == "hardlink":
            os.link(victim, p)
        else:
            os.mkfifo(p)
        if kind == "fifo":
            assert names.open_for_read(p) is None and not p.exists()  # never opened: it would block
            os.mkfifo(p)
        fd = names.open_for_write(p, append=True)
        os.write(fd, b"new")
        os.close(fd)
        assert p.read_bytes() == b"new" and not p.is_symlink() and os.stat(p).st_nlink == 1
    assert victim.read_bytes() == b"keep" and os.stat(victim).st_nlink == 1
    d = cache / "dir.part"
    d.mkdir()
    with pytest.raises(DeepDreamError, match="is a folder"):
        names.open_for_write(d)
    assert names.clear_foreign(cache / "absent") is False and names.is_own_file(Path(cache / "absent")) is False
