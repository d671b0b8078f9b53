"""DeviceHQ simulator: the account and its users, as the samples of document 002 show them."""

from __future__ import annotations

from typing import Any


def account_resource() -> dict[str, Any]:
    def alert(details: str, frequency: str = "every_checkin", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "enabled": "1",
            **extra,
            "recipient_groups": [""],
            "max_notifications_per_day": frequency,
            "email": "1",
            "sms": "0",
        }
        body["details"] = details
        return body

    return {
        "id": "jeff@ez-tech.com",
        "type": "accounts",
        "attributes": {
            "name": "EZ-TECH",
            "address1": "1704 Standish Ave",
            "address2": "",
            "city": "Woodsville",
            "state": "AK",
            "postal_code": "32118",
            "country": "United States",
            "phone": "706-242-2222",
            "email": "jeff@ez-tech.com",
            "website": "https://ez-tech.biz",
            "alerts_config": {
                "enabled": "1",
                "low_signal": alert("Signal < -100 dBm", "daily", threshold="-100"),
                "missed_checkin": alert("device fails to check in"),
                "high_data_usage": alert("data usage > threshold"),
                "failed_actions": alert("action failed"),
                # The document's page break hides this entry's name; only its details survive.
                "failed_scheduled_actions": alert("scheduled actions failed to execute"),
                "device_reboot": alert("device rebooted"),
                "recipient_groups": {"1": {"name": "t"}, "2": {"name": "rr"}},
            },
            "enabled": True,
            "confirmed": True,
        },
    }


def users_resource() -> dict[str, Any]:
    # The sample closes the users array and then opens a bare object (name, email,
    # created_at): read as the account's own fields beside "users".
    return {
        "id": "jeff@ez-tech.com",
        "type": "accounts",
        "attributes": {
            "users": [
                {
                    "email": "jeff@ez-tech.com",
                    "first_name": "jeff",
                    "last_name": "Wilson",
                    "last_login_at": "2016-09-20T15:48:02.790+00:00",
                    "created_at": "2014-11-20T15:53:26.000Z",
                    "enabled": True,
                    "role": "manager",
                },
                {
                    "email": "guest_user@ez-tech.com",
                    "first_name": "Guest",
                    "last_name": "User",
                    "last_login_at": "2015-06-23T19:44:26.647+00:00",
                    "created_at": "2014-12-02T15:42:24.000Z",
                    "enabled": True,
                    "role": "basic",
                },
            ],
            "name": "EZ-TECH",
            "email": "jeff@ez-tech.com",
            "created_at": "2014-11-20T15:53:25.000Z",
        },
    }
