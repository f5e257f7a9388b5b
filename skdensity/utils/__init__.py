"""Helpers shared by every estimator: validation, randomness, threads, and the
one place that imports scikit-learn's private helpers."""
