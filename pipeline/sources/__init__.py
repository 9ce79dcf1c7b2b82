"""Source readers, one module per source kind, each yielding Records (see ``base.SourceReader``).

``options`` declares each reader's typed options (pydantic only: ``pipeline.config`` inherits them);
``registry`` maps a params ``kind`` to its reader and builds the readers a params file names. WFDB
internals live in the private modules of ``wfdb``; ``wfdb_text``, ``wfdb_annotations`` and ``windows``
serve the generic WFDB folder reader. A reader may keep its parts in sibling modules named after it
(``code_table``/``code_hdf5`` for ``code``, ``ucr_formats`` for ``ucr``, ``wfdb_records`` and
``wfdb_scan`` for ``wfdb_folder``, ``edf_format`` for ``edf``); its own module still exports what
callers import.

May import: ``pipeline.core``; numpy, pandas, h5py, wfdb, edfio in the readers.
"""
