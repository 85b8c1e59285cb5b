"""Fixtures shared by the tests."""

from pathlib import Path

import pytest

from helpers import write_image_folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")
