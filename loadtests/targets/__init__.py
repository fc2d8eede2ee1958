"""Target protocols: one module per protocol behind the interface in `base`, registered in `registry`."""
