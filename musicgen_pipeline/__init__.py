"""musicgen-pipeline: text prompts to long-form, seamlessly crossfaded music soundtracks."""

__version__ = "0.1.0"
