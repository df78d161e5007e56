"""OMTX-Hub: a self-hostable hub for protein–ligand prediction jobs and batch screens."""

__version__ = "0.1.0"

__all__ = ["__version__"]
