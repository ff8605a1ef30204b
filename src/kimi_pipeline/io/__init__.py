"""Custom Kedro datasets (the only part of the library that imports Kedro)."""
