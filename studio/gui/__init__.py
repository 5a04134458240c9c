"""The desktop studio (PySide6 + pyqtgraph): the only package that imports Qt."""
