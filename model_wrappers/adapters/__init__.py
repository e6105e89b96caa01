"""One adapter per framework; ``registry`` imports only the one being served."""
