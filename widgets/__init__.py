"""The panes of the minertop dashboard: passive views fed with view-models."""
