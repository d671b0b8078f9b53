"""A faithful simulator of the five device clouds (an independent reading of the vendor documents).

Imports nothing from the rest of fieldtui: a client bug cannot hide behind a simulator
written to match it.
"""
