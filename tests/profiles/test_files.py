"""The profiles folder: examples copied on first use, atomic writes, versions refuse lost
updates."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.errors import Conflict, ProfileNotFound, ValidationFailed
from modelyard.profiles.files import EXAMPLES, ProfileFiles


def test_examples_are_copied_once_into_a_new_folder(tmp_path: Path) -> None:
    files = ProfileFiles(tmp_path / "profiles")
    assert files.ensure_examples() == list(EXAMPLES)
    assert files.names() == sorted(EXAMPLES)
    (tmp_path / "profiles" / "production.yaml").unlink()
    assert files.ensure_examples() == []
    assert "production" not in files.names()


def test_write_read_and_versions(tmp_path: Path) -> None:
    files = ProfileFiles(tmp_path)
    old, v1 = files.write("p", {"name": "p"}, create=True)
    assert old is None
    assert files.read("p").version == v1
    assert files.read("p").data == {"name": "p"}
    with pytest.raises(Conflict):
        files.write("p", {"name": "p"}, create=True)
    _, v2 = files.write("p", {"name": "p", "description": "d"}, expected_version=v1)
    with pytest.raises(Conflict) as caught:
        files.write("p", {"name": "p"}, expected_version=v1)
    assert caught.value.param == "If-Match"
    assert files.read("p").version == v2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_delete_and_unknown_names(tmp_path: Path) -> None:
    files = ProfileFiles(tmp_path)
    _, version = files.write("p", {"name": "p"})
    with pytest.raises(Conflict):
        files.delete("p", expected_version="0" * 16)
    assert files.delete("p", expected_version=version) == version
    with pytest.raises(ProfileNotFound):
        files.read("p")
    with pytest.raises(ValidationFailed):
        files.read("../etc/passwd")


def test_a_file_that_is_not_yaml_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    entry = ProfileFiles(tmp_path).read("bad")
    assert entry.data is None
    assert entry.error is not None and "not valid YAML" in entry.error
