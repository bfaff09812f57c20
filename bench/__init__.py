"""Benchmarks: ``make bench`` runs them and prints the figures."""
