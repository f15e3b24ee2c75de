"""Model wrappers: the only package that imports torch (MusicGen via transformers, Demucs).

Import the submodules directly (`musicgen_pipeline.models.musicgen`, `.demucs`, `.tiny`); importing
this package alone loads nothing heavy.
"""
