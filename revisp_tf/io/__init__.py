"""File input and output: strict image/RAW readers, atomic writers, DNG."""

from revisp_tf.io.dng import write_dng
from revisp_tf.io.images import ImageReadError, atomic_write, read_raw_npy, read_rgb, write_npy, write_rgb
