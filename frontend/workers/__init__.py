"""Several frontend processes per pod: the supervisor, and how workers see each other."""
