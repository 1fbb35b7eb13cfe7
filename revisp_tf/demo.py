"""The README's main job on the embedded default (no ../shared, no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data as skdata

from revisp_tf.isp.mask import overexposure_mask
from revisp_tf.isp.sensor import PROJECT_10BIT
from revisp_tf.models import build_reverse_isp, predict_bayer


def run_smoke(out_dir: str, size: int = 256):
    """Runs a random-weight dual model on scikit-image's astronaut; yields report lines."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rgb = skdata.astronaut()[:size, :size].astype(np.float32) / 255.0
    model = build_reverse_isp("dual", base_filters=8)
    bayer = predict_bayer(model, rgb)
    path = out / "astronaut_bayer.npy"
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, PROJECT_10BIT.to_stored(bayer))
    tmp.replace(path)
    share = float(np.mean(overexposure_mask(rgb)))
    yield f"input  {size}x{size} RGB, overexposed share {share:.3%}"
    yield f"output packed bayer {bayer.shape} -> {path}"
