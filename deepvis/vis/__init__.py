"""Arrays -> pictures: the toolbox's normalisations and filters, as pure functions."""
