"""Shipped bench specs (YAML): TalkVid-Bench's sub-benchmarks and strata."""
