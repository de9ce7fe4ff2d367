"""Helpers for testing wukong and its plugins: reference workloads shared by tests and benchmarks."""
