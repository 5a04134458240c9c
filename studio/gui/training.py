"""Placeholder replaced below."""


def install_training(window) -> None:
    window.training = None
