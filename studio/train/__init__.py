"""Training: the engine that trains a graph on a data source, and its run records (torch, no Qt)."""
