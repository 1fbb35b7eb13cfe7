"""Export of trained models for deployment (TFLite / LiteRT).

The names of `tflite` load on first use, so that `revisp_tf.export.options` imports without TensorFlow.
"""

_TFLITE_NAMES = ("ExportReport", "calibration_images", "export_tflite", "tflite_ops")


def __getattr__(name):
    if name in _TFLITE_NAMES:
        from revisp_tf.export import tflite

        return getattr(tflite, name)
    if name == "QUANTIZE_MODES":
        from revisp_tf.export.options import QUANTIZE_MODES

        return QUANTIZE_MODES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
