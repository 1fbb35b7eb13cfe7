"""Shipped model, converted pretrained weights and MANIFEST.json; installed as `revisp_tf.saved_models` (setup.py)."""
