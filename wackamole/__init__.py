"""Wackamole 2.1-compatible virtual IP manager, a client of the local Spread daemon."""
