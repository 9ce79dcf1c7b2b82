"""Lineage: the `dvc.lock` reader and the artifact ⇄ raw-file answers of `ecgpipe lineage`.

* :mod:`~pipeline.lineage.dvc_lock` parses the lock; :mod:`~pipeline.lineage.lock_check` says whether a
  path on disk still matches its entry.
* :mod:`~pipeline.lineage.artifact` answers for an artifact: its stage chain
  (:mod:`~pipeline.lineage.stages`) and the shards and raw files behind it (:mod:`~pipeline.lineage.shards`);
  :mod:`~pipeline.lineage.query` holds what the queries share.
* :mod:`~pipeline.lineage.record` answers for one record; :mod:`~pipeline.lineage.render` prints both.

May import: `training` (checkpoints) and the layers below.
"""
