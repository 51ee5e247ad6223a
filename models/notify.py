"""What the web client is told: the notification a button returns to say
how it went, and the bus message that reloads the screens an answer changed."""

# listened to by static/src/live_views.js
VIEWS_CHANGED = "spp_dci_ibr/changed"


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
            "className": "o_spp_dci_ibr_notification",  # its lines stay lines (static/src)
            "next": {"type": "ir.actions.client", "tag": "soft_reload"},
        },
    }


def tell_views(users, models):
    """Have the web clients of ``users`` reload the views of ``models`` they
    show (sent when the transaction commits; nothing if it rolls back)."""
    # the bus needs each user's partner: read just that link (a user's prefetch
    # reads every column of the user and of its partner, after every commit)
    users.fetch(["partner_id"])
    for user in users:  # the officers who asked: a few per answer
        user._bus_send(VIEWS_CHANGED, {"models": sorted(models)})
