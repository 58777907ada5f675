"""Local, Docker-free runner of the six services plus Redis."""
