"""Data sources: async clients that return immutable snapshots."""
