"""The only code that knows the store layout: local and object-store shard stores, the manifest, block
reads for training, and the label arrays beside the shards.

May import: `pipeline.core`, `pipeline.signal`, `pipeline.labels`, `pipeline.sources`.
"""
