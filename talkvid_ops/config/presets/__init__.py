"""Shipped config presets: named partial TALKVID_CONFIG files (`talkvid run --preset NAME`, TALKVID_PRESET)."""
