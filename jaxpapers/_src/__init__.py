"""Private helpers shared by every method. Not part of the public API."""
