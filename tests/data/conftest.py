"""Generated datasets on disk for the data tests (see data_gen for the writers)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from data_gen import np_mosaic, write_rgb16


@pytest.fixture
def consistent_aim22(tmp_path):
    """Factory: an AIM 2022-layout folder whose RAW is exactly the RGGB mosaic of its 16-bit PNG RGB.

    Demosaiced ground truth (float32) is the RGB itself, so after any crop or augmentation
    `raw == mosaic(rgb)` and `demosaiced == rgb` must hold exactly.
    """

    def make(scenes=("1", "2", "3"), patches=2, size=(20, 28), demosaiced=True, seed=0, root=None):
        root = Path(root or tmp_path / "aim22")
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for scene in scenes:
            for k in range(patches):
                rgb16 = rng.integers(0, 65536, (*size, 3), dtype=np.uint16)
                write_rgb16(root / f"{scene}_{k}.png", rgb16)
                np.save(root / f"{scene}_{k}.npy", np_mosaic(rgb16))
                if demosaiced:
                    np.save(root / f"{scene}_{k}.demosaic.npy", rgb16.astype(np.float32) / np.float32(65535))
        return root

    return make


@pytest.fixture
def s7_like(tmp_path):
    """Factory: AIM 2022 Track 1-like files, JPEG RGB + uint16 10-bit RAW (independent random content)."""

    def make(names=("5_0", "5_1", "7_0"), size=(16, 24), root=None, seed=1):
        root = Path(root or tmp_path / "s7")
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for name in names:
            assert cv2.imwrite(str(root / f"{name}.jpg"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
            np.save(root / f"{name}.npy", rng.integers(0, 1024, (size[0] // 2, size[1] // 2, 4)).astype(np.uint16))
        return root

    return make
