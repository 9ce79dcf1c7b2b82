"""Ingest: raw inputs into a profile's shard store, in three steps the flow orchestrates, and the
checks and reports on the result.

* :mod:`~pipeline.ingest.plan`: discover sources, hash and fingerprint units, batch the new or changed.
* :mod:`~pipeline.ingest.batch`: read, preprocess and write one batch's shards (quarantine, not raise).
* :mod:`~pipeline.ingest.commit`: fold the batches into the manifest; quarantine and ingest reports.
* :mod:`~pipeline.ingest.report`: summaries of a store (``ecgpipe summary``, the flow's metrics).
* :mod:`~pipeline.ingest.verify`: ``ecgpipe verify``, the store against its manifest and raw inputs.

May import: `pipeline.store`, `pipeline.models` and the layers below (`signal`, `labels`, `sources`, `core`).
"""
