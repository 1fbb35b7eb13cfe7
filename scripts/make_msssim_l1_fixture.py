"""Writes tests/fixtures/msssim_l1_torch.npz: the authors' PyTorch MS-SSIM-L1 on small inputs.

The loss is recomputed here with PyTorch's own grouped `conv2d`, in the form of
`MS_SSIM_L1_LOSS` (psyrocloud/MS-SSIM_L1_LOSS, copied into SenseBrainTech/
overexposure-mask-reverse-ISP tools/loss.py), in float64, with gradients from autograd.
It pins down how `groups=3` pairs input channels with the Gaussian masks.

    .venv-ref/bin/python scripts/make_msssim_l1_fixture.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "msssim_l1_torch.npz"
SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)


def gaussian_masks(sigmas=SIGMAS) -> torch.Tensor:
    """(3 * S, 1, k, k) masks, three consecutive copies per sigma, as the authors build them."""
    size = int(4 * sigmas[-1] + 1)
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    masks = []
    for sigma in sigmas:
        g = torch.exp(-(coords**2) / (2 * sigma**2))
        g = g / g.sum()
        masks += [torch.outer(g, g)] * 3
    return torch.stack(masks)[:, None]


def authors_loss(x, y, alpha=0.025, compensation=200.0, data_range=1.0, sigmas=SIGMAS):
    """Per-example (N,) loss of NCHW float64 tensors, with the authors' grouped convolutions."""
    masks = gaussian_masks(sigmas)
    pad = int(2 * sigmas[-1])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(t, w=masks):
        return F.conv2d(t, w, groups=3, padding=pad)

    mux, muy = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mux**2, blur(y * y) - muy**2, blur(x * y) - mux * muy
    lum = (2 * mux * muy + c1) / (mux**2 + muy**2 + c1)
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    ms = 1 - lum[:, -1] * lum[:, -2] * lum[:, -3] * cs.prod(dim=1)
    gl1 = blur((x - y).abs(), masks[-3:]).mean(1)
    mix = compensation * (alpha * ms + (1 - alpha) * gl1 / data_range)
    return mix.mean(dim=(1, 2))


def case(x: np.ndarray, y: np.ndarray) -> dict:
    """Loss per example and d(mean loss)/dx for NHWC inputs."""
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y.transpose(0, 3, 1, 2), dtype=torch.float64)
    per_example = authors_loss(xt, yt)
    per_example.mean().backward()
    return {"loss": per_example.detach().numpy(), "grad": xt.grad.numpy().transpose(0, 2, 3, 1).astype(np.float32)}


def main() -> None:
    rng = np.random.default_rng(20220823)
    # Smooth-ish content so the SSIM terms are not all near zero.
    base = rng.uniform(0, 1, (2, 9, 11, 3))
    x = np.clip(np.kron(base, np.ones((1, 4, 4, 1))) + rng.normal(0, 0.05, (2, 36, 44, 3)), 0, 1)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    anti = x[:1]
    cases = {"random": (x, y), "anti": (anti, 1.0 - anti)}
    arrays = {}
    for name, (a, b) in cases.items():
        a, b = a.astype(np.float32), b.astype(np.float32)
        res = case(a, b)
        arrays.update({f"{name}_x": a, f"{name}_y": b, f"{name}_loss": res["loss"], f"{name}_grad": res["grad"]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_name(OUT.stem + ".tmp.npz")
    np.savez_compressed(tmp, torch_version=np.array(torch.__version__), **arrays)
    tmp.replace(OUT)
    print(OUT, {k: float(v.mean()) for k, v in arrays.items() if k.endswith("loss")})


if __name__ == "__main__":
    main()
