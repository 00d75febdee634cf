"""Tests for the rule engine."""
