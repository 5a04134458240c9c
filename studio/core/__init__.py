"""The pure core: graph documents, node-type declarations, the registry, files and validation.

Nothing here imports torch or Qt (an import-linter contract checks it), so a graph can be read,
checked and shape-inferred on any machine.
"""
