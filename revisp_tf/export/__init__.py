"""Export of trained models for deployment: `convert` (TFLite conversion and its check), `calibration` (int8 data),
`litert` (the LiteRT runner side, NumPy only)."""
