"""fieldtui: a keyboard-driven terminal UI for field technicians of IoT device fleets."""

__version__ = "0.1.0"
