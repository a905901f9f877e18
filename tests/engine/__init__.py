"""Tests of csvpg.engine, one file per module."""
