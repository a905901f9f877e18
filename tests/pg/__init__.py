"""Tests of csvpg.pg, one file per module."""
