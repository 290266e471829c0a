"""The hall's MQTT broker, locked down: a Mosquitto configuration generated from the site files.

``hallgrid broker-config`` writes ``mosquitto.conf``, a password file and an ACL
so that nobody but the hall's own systems can write: no anonymous clients, each
edge box publishes only its own cameras' topics, the ticket feed only its
site's ticket topic, and hubs alone publish alerts (README, "Security: the
broker").
"""

from hub.broker.config import Account, BrokerFiles, plan_accounts, write_broker_config

__all__ = ["Account", "BrokerFiles", "plan_accounts", "write_broker_config"]
