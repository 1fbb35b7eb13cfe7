"""Shared test fixtures: where the real data lives, and a quiet TF."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from revisp_tf.realdata import realdata_dir
REPO = Path(__file__).resolve().parents[1]
REALDATA = realdata_dir()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata beside the project, or skip (a user's fresh clone has none)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data not found at {REALDATA} (../shared/realdata is absent)")
    return REALDATA


def read_jpeg_rgb(path) -> np.ndarray:
    """Test-side JPEG reader (OpenCV), float32 RGB in [0, 1]."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return bgr[..., ::-1].astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def s7_patches(realdata):
    """A few real AIM 2022 S7 patches, including the overexposed scene 78."""
    names = ["78_8.jpg", "78_13.jpg", "78_30.jpg", "48_29.jpg", "10_0.jpg"]
    return {n: read_jpeg_rgb(realdata / "aim22_s7_rgb" / n) for n in names}


@pytest.fixture
def synthetic_rgb() -> np.ndarray:
    """A generated (2, 24, 32, 3) batch with smooth gradients and a blown-out region."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:32] / np.array([23.0, 31.0])[:, None, None]
    base = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    batch = np.stack([base, np.clip(base + 0.2 * rng.random(base.shape), 0, 1)]).astype(np.float32)
    batch[:, 4:10, 6:14] = 1.0  # saturated highlight
    return batch
