"""Torch implementations behind node types, for the tensor layout of docs/graph-format.md.

Every tensor has two leading axes (B dates, N stocks) and channels last. Each class here must be
self-contained: it may use only ``math``, ``torch``, ``torch.nn as nn`` and ``torch.nn.functional as F``
(and module-level functions, classes and plain constants of ``studio.modules``: the exporter finds
the names a class reads and copies them too), because the ``.py`` exporter copies its
source into a standalone file. tests/test_export.py runs such a file with nothing but torch.
"""
