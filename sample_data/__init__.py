"""Sample registry, trial arm and demo study, and the simulator that made them."""
