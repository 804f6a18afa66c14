"""eventyard.broker."""
