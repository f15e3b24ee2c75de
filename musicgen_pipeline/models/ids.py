"""Names of the offline tiny models (random weights, built from a config), importable without torch.

The REST health check and the request validators name these models without loading the model stack.
"""

TINY_IDS = ("tiny-random", "tiny-random-stereo", "tiny-random-melody")
TINY_DEMUCS_ID = "tiny-random"
