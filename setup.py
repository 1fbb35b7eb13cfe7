"""Packaging beyond setup.cfg's metadata: the repository's top-level data folders travel in the package.

`saved_models/` (the shipped model, the pretrained weights, MANIFEST.json) installs as the
package `revisp_tf.saved_models` and `training/configs/` as `revisp_tf.configs`, so an
installed revisp-tf (wheel, `pip install .` or editable) finds them with importlib.resources
(`revisp_tf.weights`, `revisp_tf.demo`) while the repository keeps its layout. setup.cfg
cannot say this itself: its `packages = find:` does not combine with mapped packages.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = {"revisp_tf.saved_models": "saved_models", "revisp_tf.configs": "training/configs"}

setup(
    packages=find_packages(include=["revisp_tf", "revisp_tf.*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    package_data={"revisp_tf.saved_models": ["MANIFEST.json", "*.npz", "*.keras"], "revisp_tf.configs": ["*.yaml"]},
)
