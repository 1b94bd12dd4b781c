"""pygame drawing and app loops for igym (installed as igym.renderers)."""
