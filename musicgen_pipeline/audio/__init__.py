"""Pure audio code (numpy, scipy, librosa, soundfile). Imports neither torch nor dagster.

Convention everywhere: audio is float32, shaped (channels, frames), always 2-D (mono is (1, n)),
carried with its sample rate in `musicgen_pipeline.audio.io.Audio`.
"""
