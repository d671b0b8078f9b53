"""Simulated MQTT side of document 003: a broker (mosquitto, else amqtt) and the devices."""

from fieldtui.sim.mqtt.broker import PROTOCOL_V5, PROTOCOL_V311, Broker, BrokerError
from fieldtui.sim.mqtt.devices import MqttDevices

__all__ = ["PROTOCOL_V5", "PROTOCOL_V311", "Broker", "BrokerError", "MqttDevices"]
