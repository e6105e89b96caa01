"""Batching: a deadline-ordered queue per model version, AIMD, a batcher per replica."""
