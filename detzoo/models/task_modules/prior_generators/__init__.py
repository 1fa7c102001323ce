from .point_generator import MlvlPointGenerator

__all__ = ["MlvlPointGenerator"]
