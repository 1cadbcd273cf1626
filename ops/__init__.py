"""chroma-ops: the operator's command line for a Chroma deployment (smoke, bench, capacity, cost)."""
