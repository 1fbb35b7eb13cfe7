"""Pure, stateless ISP ops (TF functions that also accept NumPy input)."""

from revisp_tf.isp.bayer import (
    CANONICAL_CFA,
    CFA_PATTERNS,
    cfa_shift,
    convert_pattern,
    crop_to_pattern,
    mosaic,
    pack,
    pattern_colors,
    unpack,
)
from revisp_tf.isp.color import (
    YUV_MATRIX,
    bayer_to_rgb_half,
    bayer_to_yuv,
    gamma,
    inverse_smoothstep,
    luma,
    rgb_to_yuv,
    smoothstep,
)
from revisp_tf.isp.mask import LUMA_THRESHOLD, MAX_THRESHOLD, overexposure_mask
from revisp_tf.isp.sensor import HUAWEI_P20, PROJECT_10BIT, SAMSUNG_S7, SENSORS, SensorSpec, get_sensor
