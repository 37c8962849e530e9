"""Unit tests for the gateway side of evaluations."""
