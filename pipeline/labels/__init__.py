"""Label mapping: from the raw labels a source states to the unified vocabulary (tables in `data/labels/`).

Owns: label tables and the vocabulary (`tables`), their digest (`digest`), combination rules and
multi-hot vectors (`mapping`). May import: `pipeline.core`.
"""
