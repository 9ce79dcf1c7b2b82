"""The only code that knows the store layout: local and object-store shard stores, the manifest, block
reads for training, and the label arrays beside the shards.

``base.Store`` is the interface everything else uses (``remote.open_store`` gives one for a local folder
or an object-store URL); ``local`` and ``remote`` implement it, ``group`` writes and reads one
shard's zarr group (both stores), ``blocks`` reads signal blocks,
``manifest`` holds the store's names and manifest, ``root`` says where stores live, ``labels`` the
unified labels.

May import: `pipeline.core`, `pipeline.signal`, `pipeline.labels`, `pipeline.sources`.
"""
