"""Datasets: readers of paired (RGB, RAW) data and pair generators."""
