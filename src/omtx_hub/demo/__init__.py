"""The demo's data: the 1IEP receptor and reference ligand, and ten drugs to screen."""

__all__: list[str] = []  # data files only (importlib.resources)
