"""eventyard.client."""
