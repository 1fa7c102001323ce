"""detzoo: object detection toolbox and model zoo in pure PyTorch."""
__version__ = "0.1.0"
