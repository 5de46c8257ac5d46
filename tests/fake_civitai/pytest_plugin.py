"""pytest fixtures for the fake CivitAI server (work in progress)."""
