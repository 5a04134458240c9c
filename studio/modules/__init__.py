"""Torch implementations behind node types, for the tensor layout of docs/graph-format.md.

Every tensor has two leading axes (B dates, N stocks) and channels last. Each class here must be
self-contained: it may use only ``math``, ``torch``, ``torch.nn as nn`` and ``torch.nn.functional as F``
(and classes or functions it lists in ``__export_deps__``), because the ``.py`` exporter copies its
source into a standalone file. tests/test_export.py runs such a file with nothing but torch.
"""
