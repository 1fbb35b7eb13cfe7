"""The allowed values of every choice the CLI and the configs offer, in one place.

Importable without TensorFlow: the CLI lists them before TensorFlow starts.
"""

# Models (`revisp_tf.models.reverse_isp`): the U-Net variants ("global": the global stage alone, no U-Net,
# a fast camera-fitted model of its own) and where a global stage starts from.
VARIANTS = ("baseline", "single", "dual", "global")
GLOBAL_STAGES = ("none", "upi", "fitted")
# The frame-gain prior of a global stage fitted on recorded gains: "ridge" on the frames' colour
# statistics (one camera's frames), "mean" the training frames' mean gains (many cameras' frames,
# whose statistics do not tell one camera's gains from another's).
FRAME_PRIORS = ("ridge", "mean")
# Data: folder layouts of (RGB, RAW) pairs, the RGB format pairs are written in, training augmentations.
LAYOUTS = ("aim22", "folder")
RGB_FORMATS = ("jpg", "png")
AUGMENTS = ("none", "transpose", "dihedral")
# Training.
OPTIMIZERS = ("adam", "adamw")
PHASE_LOSSES = ("paper", "l2", "mse_bayer")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
# `revisp-tf infer --format` and `revisp-tf eval --baselines` ("fitted": the camera-fitted global
# inverse, fitted on given pairs).
OUTPUT_FORMATS = ("npy", "dng", "png")
# `revisp-tf convert --format` (tfrecord: shards of tf.train.Example records) and `--metadata` (the
# capture metadata given to the model: none yet).
CONVERT_FORMATS = ("npy", "dng", "tfrecord")
CONVERT_METADATA = ("none",)
# `revisp-tf eval --metadata`: each frame's recorded gains (make-pairs' meta.json) or none (the
# model's frame-gain prior alone).
EVAL_METADATA = ("recorded", "none")
BASELINES = ("upi", "mosaic", "fitted")
DEFAULT_BASELINES = ("upi", "mosaic")
# `revisp-tf export`.
QUANTIZE_MODES = ("none", "fp16", "int8")

# Parts of a model an int8 export can also keep in float32 (`float_parts`), by the Keras layer names
# that prefix the converted graph's tensor names. "global": the global stage (the curves' hat
# functions, the frame gains and the U-Nets' view of the context; the nets' corrections belong to
# "head"). "head": each U-Net's 1x1 output conv and every op from it to the
# graph's output (crop, clamp, a global-stage net's correction, the dual's mask fusion, mosaic). The
# head's output is the net's pre-clamp estimate, calibrated 14-55 units wide on trained P9 nets whose
# output is within [0, 1]: in 8 bits a step of 0.06-0.2 units, the largest per-layer error
# (QuantizationDebugger: RMSE 0.3 steps), which the clamp cannot undo. Kept float (the head conv
# alone is not enough: its int8 output tensor is what loses the precision), it costs width x 3
# multiply-adds per pixel (24 of some 15,000 at width 8). Any int8 op after it, such as the
# fusion's ADD, would put the output back on 256 levels. "top": also the last decoder level (a
# quarter of the multiply-adds).
_HEAD = ("head", "crop", "clamp", "correction", "correction_oe", "correction_noe", "fusion", "bayer")
FLOAT_PARTS = {
    "global": ("global_curves", "frame_gains", "local_context"),
    "head": _HEAD,
    "top": ("dec1a_conv", "dec1a_relu", "dec1b_conv", "dec1b_relu", *_HEAD),
}
