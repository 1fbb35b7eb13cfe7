"""File input and output: strict image and RAW readers, atomic writers, DNG, and the RAW editors that open DNGs."""
