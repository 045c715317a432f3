"""frameworks: stage package of paramsym (docs/architecture.md)."""
