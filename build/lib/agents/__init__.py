"""Faust agents, one module per event family; found by the app's autodiscovery."""
