"""eventyard.storage."""
