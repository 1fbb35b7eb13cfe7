"""Training losses (paper eq. 1, 3, 4)."""

from revisp_tf.losses.lpips import LPIPSAlex, LPIPSLoss, lpips_distance
from revisp_tf.losses.masked import (
    L2_WEIGHT,
    LPIPS_WEIGHT,
    MSSSIM_L1_WEIGHT,
    P20_GAMMA,
    l2,
    l2_masked,
    mask_region,
    noe_loss,
    oe_loss,
    p20_loss,
    perceptual_mix,
    region_weight,
)
from revisp_tf.losses.msssim_l1 import ms_ssim_l1
from revisp_tf.losses.yuv_refine import yuv_bayer_loss
