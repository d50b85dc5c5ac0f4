"""Shared fixtures. Tests that read ../shared skip cleanly when it is absent."""
from __future__ import annotations

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def original_models(shared_dir) -> pathlib.Path:
    path = shared_dir / "data" / "original-models"
    if not path.is_dir():
        pytest.skip("../shared/data/original-models is not present")
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Converted models are cached per test session, never in the user's home (set before
    any module fixture loads a model)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPVIS_CACHE", str(tmp_path_factory.getbasetemp() / "deepvis-cache"))
        yield
