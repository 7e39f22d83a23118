"""Tests of the supplier service."""
