"""Scale benchmark: ingest on Dask clusters of 1, 2 and 4 workers and into an S3 store; shard reads
from local disk against the object store."""
