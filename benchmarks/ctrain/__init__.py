"""C training vs PyTorch CPU training: steps per second of the autoencoder (``bench_ctrain.py``)."""
