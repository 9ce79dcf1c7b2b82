"""Label mapping: from the raw labels a source states to the unified vocabulary (tables in `data/labels/`).

Owns: label tables, vocabularies, combination rules. May import: `pipeline.core`.
"""
