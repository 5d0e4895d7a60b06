"""An OpenAI-compatible fine-tuning API on 127.0.0.1: the test double and ``ftops emulator``."""

from ftops.emulator.faults import FAULT_MODES
from ftops.emulator.server import Emulator

__all__ = ["FAULT_MODES", "Emulator"]
