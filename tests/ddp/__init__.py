"""Helpers for the multi-process tests: a bounded launcher for gloo process groups and the code each rank runs."""
