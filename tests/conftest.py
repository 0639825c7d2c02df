from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# One converted copy of the packaged model for the whole test run (conversion takes ~25 s).
SHARED_MODELS = ROOT / ".pytest_cache" / "workbench-models"


@pytest.fixture(autouse=True)
def workbench_home(tmp_path, monkeypatch):
    """Every test gets its own empty WORKBENCH_HOME; converted models are shared."""
    home = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    SHARED_MODELS.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(SHARED_MODELS))
    from workbench import workshop

    workshop._new_times.clear()  # the hourly count of new workspaces is per server process
    return home


@pytest.fixture
def fake_generator():
    from tests.fakes import FAKE_ID, register_fake
    from workbench import models

    register_fake()
    yield FAKE_ID
    models.unregister("generator", FAKE_ID)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "requires_cuda" in item.keywords and not has_cuda:
            item.add_marker(skip_cuda)
