"""Training: typed configs, the distribution strategy, objectives and the trainer loop."""
