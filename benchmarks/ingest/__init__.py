"""Ingest benchmark: records/s per core, peak memory and store size against a per-record `.npz` baseline."""
