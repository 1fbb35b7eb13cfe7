"""Full-frame inference: tiling (NumPy), the tiled runner, `revisp-tf infer`'s files, the AIM 2022 patch grid."""
