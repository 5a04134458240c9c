"""Model Studio: design, train and compare neural networks for cross-sectional return prediction."""

__version__ = "0.1.0"
