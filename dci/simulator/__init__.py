"""The reference IBR simulator (``python -m dci simulate``)."""

from .dataset import Dataset, beneficiary
from .server import FAILURES, IbrSimulator

__all__ = ["FAILURES", "Dataset", "IbrSimulator", "beneficiary"]
