"""minertop: htop for a Bitcoin mining site."""

__version__ = "0.1.0"
