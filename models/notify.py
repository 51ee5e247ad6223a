"""The notification a button returns to say how it went."""


def notification(title, message, kind="info"):
    """A ``display_notification`` client action; a danger one stays until closed.
    The view behind it is reloaded, so it shows what the button changed."""
    return {
        "type": "ir.actions.client",
        "tag": "display_notification",
        "params": {
            "title": title,
            "message": message,
            "type": kind,
            "sticky": kind == "danger",
            "next": {"type": "ir.actions.client", "tag": "soft_reload"},
        },
    }
