"""Experiment YAMLs; installed as `revisp_tf.configs` (setup.py), where `revisp-tf demo` finds demo.yaml."""
