"""Keras models: the authors' U-Net, the reverse-ISP pipelines, Demosaic Net."""

from revisp_tf.models.demosaicnet import build_demosaicnet
from revisp_tf.models.reverse_isp import (
    VARIANTS,
    build_reverse_isp,
    check_rgb,
    has_global_stage,
    load_reverse_isp,
    model_inputs,
    model_variant,
    predict_bayer,
    trainable_parameter_count,
    training_model,
)
from revisp_tf.models.unet import build_unet
