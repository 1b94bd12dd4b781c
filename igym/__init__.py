"""igym: human-in-the-loop experiments on simulation environments."""
