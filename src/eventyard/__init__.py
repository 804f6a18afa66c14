"""eventyard: event-driven architecture end to end."""
