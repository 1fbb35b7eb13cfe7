"""Export of trained models for deployment (TFLite / LiteRT)."""

from revisp_tf.export.tflite import QUANTIZE_MODES, ExportReport, calibration_images, export_tflite, tflite_ops
