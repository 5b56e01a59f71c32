"""Broken addons for the tests. Each shows one way an addon can fail to load."""
