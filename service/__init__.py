"""Policy Nudge: keeps staff aware of their organisation's guidelines."""

__version__ = "0.1.0"
