"""Exact offline token counting: encodings in `encodings`, OpenAI billing rules in `counting`."""
