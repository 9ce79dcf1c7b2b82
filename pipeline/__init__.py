"""ECG data-and-model pipeline library: readers, signal transforms, labels, shard store."""

__version__ = "0.1.0"
