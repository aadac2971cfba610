"""Training data: examples from listens (or Feast feature frames) and train/evaluation splits."""
