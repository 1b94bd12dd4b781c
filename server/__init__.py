"""websockets server for networked igym experiments (installed as igym.server)."""
