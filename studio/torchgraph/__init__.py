"""From graph documents to torch: the builder and the exporters (torch, no Qt)."""
