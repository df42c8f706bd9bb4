"""kvtool: offline calibration and a lightweight runtime for compressed KV caches."""

__version__ = "0.1.0"
