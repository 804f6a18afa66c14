"""Wire-protocol fronts that expose the eventyard broker to foreign clients."""

__all__: list[str] = []
