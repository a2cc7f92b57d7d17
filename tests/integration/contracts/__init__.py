"""Helpers shared by the Marketplace contract tests, the fuzzer and the contract benchmarks."""
