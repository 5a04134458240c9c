"""Colours and sizes of the editor, in one place."""

from __future__ import annotations

from PySide6.QtGui import QColor

GRID = 20.0
NODE_WIDTH = 190.0
HEADER = 38.0
PORT_ROW = 20.0
PORT_RADIUS = 6.0

BACKGROUND = QColor("#1f2227")
GRID_MINOR = QColor("#262a30")
GRID_MAJOR = QColor("#2e333a")
NODE_BODY = QColor("#2f343c")
NODE_TEXT = QColor("#e6e6e6")
NODE_SUBTEXT = QColor("#9aa3ad")
SELECTED = QColor("#f4f4f4")  # white: far from the warning orange and the error red
ERROR = QColor("#e05252")
WARNING = QColor("#e0a030")
LABEL_BACKGROUND = QColor(20, 22, 26, 220)

CATEGORY_COLOURS = {
    "Input / output": QColor("#5a6b7d"),
    "Convolution": QColor("#3d7ab8"),
    "Pooling": QColor("#3d8fa8"),
    "Linear": QColor("#7a5ab8"),
    "Recurrent": QColor("#b8733d"),
    "Cells": QColor("#c0603a"),
    "Transformer": QColor("#3da88a"),
    "Activation": QColor("#4f9a5a"),
    "Regularisation": QColor("#6d8a3d"),
    "Normalisation": QColor("#8a8a3d"),
    "Merge": QColor("#a84f7a"),
    "Reduce": QColor("#8a4fa8"),
    "Blocks": QColor("#b89a3d"),
}
DEFAULT_CATEGORY = QColor("#6b6b6b")

KIND_COLOURS = {"seq": QColor("#5ea8e8"), "vec": QColor("#e8a85e"), "map": QColor("#b88ee8"),
                "score": QColor("#7ed38a")}
UNKNOWN_KIND = QColor("#8a8a8a")


def category_colour(category: str) -> QColor:
    return CATEGORY_COLOURS.get(category, DEFAULT_CATEGORY)
