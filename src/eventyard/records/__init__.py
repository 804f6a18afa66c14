"""eventyard.records."""
