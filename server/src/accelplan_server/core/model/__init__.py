"""A model's shape: config.json architectures, parameter counts, weight bytes, the footprint entry point."""
