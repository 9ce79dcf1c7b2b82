"""The built-in demo data: synthetic ECG and the raw source tree written from it.

May import: `pipeline.core`.
"""
