"""Private drivers and the reproduction runner of jaxpapers.xit."""
