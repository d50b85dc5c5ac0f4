"""Settings: documented defaults, a model template, and the user's own file (YAML or the
original toolbox's settings_local.py), merged in that order."""
from .loader import Settings, load_settings, read_settings_file

__all__ = ["Settings", "load_settings", "read_settings_file"]
