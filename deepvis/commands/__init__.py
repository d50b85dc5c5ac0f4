"""Subcommands of the `deepvis` console command (see deepvis.cli)."""
