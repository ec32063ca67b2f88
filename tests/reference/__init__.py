"""Independent reference implementations the engine is tested against (not part of the package)."""
