"""Benchmarks: every analytics tool on a demo warehouse of N customers, side by side with the libraries people
would use instead (lifetimes, ChannelAttribution, pandas), plus the agent's per-turn overhead and cold starts.

`northstar bench` (and `make bench`) calls `bench.harness.main`; see bench/README.md.
"""
