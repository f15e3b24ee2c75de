"""The assets, one per module, each module named after its asset."""
