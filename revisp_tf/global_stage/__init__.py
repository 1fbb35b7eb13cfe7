"""The camera-fitted global stage: the closed-form fit, the frame context (NumPy), each patch's place in its frame, the Keras layers."""
