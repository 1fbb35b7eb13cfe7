"""revisp-tf: reverse ISP (camera RGB -> RAW bayer) with Overexposure Mask Fusion."""

__version__ = "0.1.0"
