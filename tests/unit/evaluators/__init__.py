"""Unit tests for the evaluators library."""
