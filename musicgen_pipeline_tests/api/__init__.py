"""Tests of the REST layer (musicgen_pipeline.api)."""
