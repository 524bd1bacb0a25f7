"""Learnable coupling."""
