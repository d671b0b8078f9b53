"""One connector per device cloud, all behind :class:`fieldtui.connectors.base.Connector`."""
