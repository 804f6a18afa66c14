"""eventyard.cli."""
