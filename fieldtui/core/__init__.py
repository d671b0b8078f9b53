"""The domain: devices, telemetry, tasks, groups, actions, capabilities and errors. No I/O."""
