"""PyTorch lpips==0.1.4 LPIPS-Alex with given weights: the reference for the converter and fixture.

Reference venv only (torch). lpips imports torchvision just for `models.alexnet(...).features`,
and PyPI torchvision fails to import beside torch 2.13 CPU, so a stub module with torchvision's
AlexNet `features` (torchvision/models/alexnet.py) is put in sys.modules first; it is never
installed. The backbone starts random (`pnet_rand=True`, nothing is downloaded) and gets the
given arrays; the linear layers come from lpips' own v0.1/alex.pth and must equal the given ones.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch


def _stub_alexnet(pretrained=False, **_):
    if pretrained:
        raise RuntimeError("torchvision stub: no pretrained weights (use pnet_rand=True)")
    nn = torch.nn
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    return types.SimpleNamespace(features=features)


def _import_lpips():
    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.alexnet = _stub_alexnet
    sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, tv.models
    import lpips

    return lpips


def torch_lpips_alex(arrays: dict[str, np.ndarray]):
    """lpips.LPIPS(net='alex') in eval mode with the backbone from `arrays` (HWIO kernels)."""
    lpips = _import_lpips()
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(convs) != 5:
        raise RuntimeError(f"expected 5 AlexNet convs in lpips, found {len(convs)}")
    with torch.no_grad():
        for i, conv in enumerate(convs, 1):
            conv.weight.copy_(torch.from_numpy(arrays[f"conv{i}_kernel"].transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(arrays[f"conv{i}_bias"]))
    for i, lin in enumerate(model.lins, 1):
        own = lin.model[-1].weight.detach().numpy()  # lpips' v0.1/alex.pth, (1, C, 1, 1)
        if not np.array_equal(own, arrays[f"lin{i}_kernel"].transpose(3, 2, 0, 1)):
            raise RuntimeError(f"lin{i}: the given linear layer differs from lpips' v0.1/alex.pth")
    return model.eval()


def _nchw(x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def torch_lpips_distance(model, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) distances for NHWC float32 images in [0, 1], fed to lpips as 2x - 1 (NCHW)."""
    with torch.no_grad():
        d = model(2 * _nchw(a) - 1, 2 * _nchw(b) - 1)
    return d.numpy().reshape(-1)


def torch_lpips_grad(model, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gradient of the summed distances with respect to b (NHWC, [0, 1] units), by torch autograd."""
    b_t = _nchw(b).requires_grad_(True)
    model(2 * _nchw(a) - 1, 2 * b_t - 1).sum().backward()
    return b_t.grad.numpy().transpose(0, 2, 3, 1)
