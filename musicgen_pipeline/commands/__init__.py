"""Sub-commands of `musicgen-pipeline`; each module has `register(subparsers)`."""
