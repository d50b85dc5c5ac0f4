"""One module per window pane; each draws into its own view of the window buffer."""
