"""What the capturing proxy knows of each chat protocol: one module per protocol, one interface."""
