"""The ccv performance suite (SPEC §8): `python -m benchmarks --help`."""
