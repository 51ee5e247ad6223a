"""19.0.2.5.0: the send job lives on the outbox, the answer watch has its name.

The scheduled jobs are ``noupdate`` data: an upgrade does not rewrite them, so
their model and code are repointed here (an administrator's own schedule,
interval or active flag stays as it was).
"""

from odoo import SUPERUSER_ID, api

JOBS = {
    "ir_cron_send_queued_checks": ("spp.dci.ibr.transaction", "model._cron_send_queued()"),
    "ir_cron_fail_stale_checks": ("spp.dci.duplication.check", "model._cron_watch_answers()"),
}


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    for xmlid, (model, code) in JOBS.items():
        job = env.ref(f"spp_dci_client_ibr.{xmlid}", raise_if_not_found=False)
        if job:
            job.write({"model_id": env["ir.model"]._get_id(model), "code": code})
