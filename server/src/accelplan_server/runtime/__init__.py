"""The serving process: serve, its flags, workers, interceptors, security, metrics."""
