"""The enrolment gate, for OpenSPP's programmes, without depending on them.

When ``spp.program.membership`` is in the registry (OpenSPP's
``spp_programs``, detected at run time like the registry groups in
``registry_bridge.py``), its ``create`` and ``write`` are wrapped when the
registry finishes loading, as Odoo's ``base_automation`` wraps models: a
membership going to ``enrolled`` first asks :meth:`ResPartner._get_ibr_clearance`.
``blocked`` is refused (a UserError naming the programme and the check)
unless a manager overrode the block; ``review`` and ``unknown``/``pending``
follow the strictest setting of the company's connections (allow, allow
with a note on the membership, refuse). ``spp.program`` gets "Check
beneficiaries in IBR": one large request; when its answers are all in,
memberships of blocked registrants become ``duplicated`` (with a
``spp.program.membership.duplicate`` record where that model exists) and
every checked membership gets ``last_deduplication``.

Without those models nothing here does anything. Enrolments written in
plain SQL (bulk loaders) are not seen: such a loader calls the clearance
method itself.
"""

import json
import logging

from markupsafe import escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .groups import OFFICER_GROUP

_logger = logging.getLogger(__name__)

MEMBERSHIP = "spp.program.membership"
PROGRAM = "spp.program"
DUPLICATE = "spp.program.membership.duplicate"
AUTOMATION = "base.automation"
PROGRAMME_STATES = ("draft", "enrolled", "paused")  # the memberships a programme check covers
STRICTNESS = {"allow": 0, "warn": 1, "refuse": 2}
SHOWN = 5  # refused registrants named in one message


def _wrap(model_class, name, make):
    """Wrap ``model_class.name`` once (a registry reload builds new classes)."""
    current = getattr(model_class, name, None)
    if getattr(current, "_dci_gate", False):
        return
    method = make()
    method.origin = current
    method._dci_gate = True
    setattr(model_class, name, method)


def _make_create():
    @api.model_create_multi
    def create(self, vals_list):
        records = create.origin(self, vals_list)
        self.env["spp.dci.enrolment.gate"]._guard(records.filtered(lambda m: m.state == "enrolled"))
        return records

    return create


def _make_write():
    def write(self, vals):
        if vals.get("state") == "enrolled":
            self.env["spp.dci.enrolment.gate"]._guard(
                self.filtered(lambda m: m.state != "enrolled")
            )
        return write.origin(self, vals)

    return write


def _make_automation_hook():
    def _register_hook(self):
        _register_hook.origin(self)
        self.env["spp.dci.enrolment.gate"]._install_wrappers()

    return _register_hook


def _make_programme_action():
    def action_check_beneficiaries_in_ibr(self):
        """Check this programme's beneficiaries in the IBR (one large request)."""
        return self.env["spp.dci.enrolment.gate"]._check_programme(self)

    return action_check_beneficiaries_in_ibr


class EnrolmentGate(models.AbstractModel):
    _name = "spp.dci.enrolment.gate"
    _description = "IBR Enrolment Gate (for programme modules)"

    def _register_hook(self):
        super()._register_hook()
        self._install_wrappers()
        if PROGRAM in self.env:
            self._ensure_programme_action()
        if AUTOMATION in self.env:
            # automation rules re-patch models by deleting every model's patched
            # create/write, ours included: put ours back each time they do
            _wrap(self.env.registry[AUTOMATION], "_register_hook", _make_automation_hook)

    @api.model
    def _install_wrappers(self):
        if MEMBERSHIP in self.env:
            membership = self.env.registry[MEMBERSHIP]
            _wrap(membership, "create", _make_create)
            _wrap(membership, "write", _make_write)
        if PROGRAM in self.env:
            _wrap(
                self.env.registry[PROGRAM],
                "action_check_beneficiaries_in_ibr",
                _make_programme_action,
            )

    @api.model
    def _ensure_programme_action(self):
        """The programme's "Check beneficiaries in IBR" menu entry (made once)."""
        xmlid = "spp_dci_client_ibr.action_program_check_in_ibr"
        if self.env.ref(xmlid, raise_if_not_found=False):
            return
        action = (
            self.env["ir.actions.server"]
            .sudo()
            .create(
                {
                    "name": self.env._("Check beneficiaries in IBR"),
                    "model_id": self.env["ir.model"]._get_id(PROGRAM),
                    "binding_model_id": self.env["ir.model"]._get_id(PROGRAM),
                    "binding_view_types": "form,list",
                    "group_ids": [(4, self.env.ref(OFFICER_GROUP).id)],
                    "state": "code",
                    "code": "action = records.action_check_beneficiaries_in_ibr()",
                }
            )
        )
        self.env["ir.model.data"].sudo().create(
            {
                "module": "spp_dci_client_ibr",
                "name": "action_program_check_in_ibr",
                "model": "ir.actions.server",
                "res_id": action.id,
                "noupdate": True,
            }
        )

    # -- the gate ----------------------------------------------------------------

    @api.model
    def _policies(self):
        """The strictest ``(review, unknown)`` settings of the active connections
        of the environment's companies (``allow`` when there is none)."""
        connections = (
            self.env["spp.dci.ibr.connection"]
            .sudo()
            .search([("company_id", "in", self.env.companies.ids)])
        )
        review = max(connections.mapped("gate_on_review") or ["allow"], key=STRICTNESS.get)
        unknown = max(connections.mapped("gate_on_unknown") or ["allow"], key=STRICTNESS.get)
        return review, unknown

    @api.model
    def _guard(self, memberships):
        """Refuse enrolling the blocked registrants of ``memberships`` (and the
        doubtful ones where a connection says so); note the warned ones."""
        if not memberships:
            return
        clearance = memberships.partner_id._get_ibr_clearance()
        review_policy, unknown_policy = self._policies()
        policy = {
            "blocked": "refuse",
            "review": review_policy,
            "pending": unknown_policy,
            "unknown": unknown_policy,
            "cleared": "allow",
        }
        refused, warned = [], {}
        for membership in memberships:
            mine = clearance[membership.partner_id.id]
            verdict = policy[mine["state"]]
            if verdict == "refuse":
                refused.append((membership, mine))
            elif verdict == "warn":
                warned[membership.id] = self._why(membership, mine)
        if refused:
            lines = [self._why(membership, mine) for membership, mine in refused[:SHOWN]]
            if len(refused) > SHOWN:
                lines.append(self.env._("... and %(n)s more.", n=len(refused) - SHOWN))
            raise UserError("\n".join(lines))
        if warned:
            _logger.info("%s enrolment(s) allowed with an IBR warning", len(warned))
            if hasattr(memberships, "_message_log_batch"):
                memberships.browse(list(warned))._message_log_batch(
                    bodies={key: escape(text) for key, text in warned.items()}
                )

    @api.model
    def _why(self, membership, clearance):
        """One sentence: who, which programme, what the IBR check says, what to do."""
        checks = self.env["spp.dci.duplication.check"].sudo().browse(clearance["check_ids"])
        named = ", ".join(
            self.env._(
                "%(check)s on %(connection)s, %(date)s",
                check=check.display_name,
                connection=check.data_source_id.display_name,
                date=fields.Datetime.to_string(check.completed_at)[:10],
            )
            for check in checks
        )
        values = {
            "partner": membership.partner_id.display_name,
            "programme": membership.program_id.display_name,
            "checks": named or self.env._("no completed check"),
        }
        state = clearance["state"]
        if state == "blocked":
            return self.env._(
                "Cannot enrol %(partner)s in %(programme)s: the IBR found them enrolled "
                "elsewhere (%(checks)s). An IBR manager may override the block on the check, "
                "with a reason.",
                **values,
            )
        if state == "review":
            return self.env._(
                "Enrolling %(partner)s in %(programme)s: the IBR found a possible match "
                "(%(checks)s) that no officer reviewed yet: review it on the check.",
                **values,
            )
        return self.env._(
            "Enrolling %(partner)s in %(programme)s: no recent IBR result (%(checks)s): "
            "check the registrant in the IBR first.",
            **values,
        )

    # -- the programme's check -----------------------------------------------------

    @api.model
    def _check_programme(self, programmes):
        """Queue one request for the beneficiaries of each of ``programmes``."""
        if not self.env.user.has_group(OFFICER_GROUP):
            raise AccessError(self.env._("Only an IBR officer may check beneficiaries in the IBR."))
        requests = self.env["spp.dci.check.request"]
        for programme in programmes:
            company = programme.company_id if "company_id" in programme._fields else False
            connection = (
                self.env["spp.dci.ibr.connection"]
                .with_company(company or self.env.company)
                .get_default()
            )
            if not connection.auto_identifier_type:
                raise UserError(
                    self.env._(
                        "Set the identifier type for automatic checks on the IBR connection "
                        "%(name)s (tab Guarding Enrolment) to check a programme's "
                        "beneficiaries.",
                        name=connection.display_name,
                    )
                )
            partners = (
                self.env[MEMBERSHIP]
                .search([("program_id", "=", programme.id), ("state", "in", PROGRAMME_STATES)])
                .partner_id
            )
            if not partners:
                raise UserError(
                    self.env._(
                        "%(name)s has no beneficiaries to check.", name=programme.display_name
                    )
                )
            requests |= requests.with_context(
                dci_request_origin="programme", dci_programme_id=programme.id
            )._queue(partners, connection.auto_identifier_type, connection)
        return requests[:1]._summary_notification()

    @api.model
    def _mark_duplicates(self, request):
        """A programme's request is answered: its blocked beneficiaries'
        memberships become ``duplicated``; every checked one is deduplicated today."""
        if MEMBERSHIP not in self.env or not request.programme_res_id:
            return
        memberships = self.env[MEMBERSHIP].sudo()
        checked = request.check_ids.filtered(lambda c: c.state == "completed")
        mine = memberships.search(
            [
                ("program_id", "=", request.programme_res_id),
                ("partner_id", "in", checked.partner_id.ids),
                ("state", "in", PROGRAMME_STATES),
            ]
        )
        if not mine:
            return
        clearance = (
            mine.partner_id.with_company(request.company_id)
            .sudo()
            ._get_ibr_clearance(connection=request.connection_id)
        )
        duplicated = mine.filtered(lambda m: clearance[m.partner_id.id]["state"] == "blocked")
        fields_of = memberships._fields
        common = {"last_deduplication": fields.Date.context_today(self)}
        if "deduplication_status" in fields_of:
            (mine - duplicated).write(dict(common, deduplication_status="verified"))
        else:
            (mine - duplicated).write(common)
        if not duplicated:
            return
        vals = dict(common, state="duplicated")
        if "deduplication_status" in fields_of:
            vals["deduplication_status"] = "duplicated"
        duplicated.write(vals)
        reasons = {m.id: self._duplicate_reason(clearance[m.partner_id.id]) for m in duplicated}
        if DUPLICATE in self.env:
            self.env[DUPLICATE].sudo().create(
                [
                    {
                        "beneficiary_ids": [(6, 0, [membership.id])],
                        "state": "duplicate",
                        "reason": reasons[membership.id][:250],
                        "comment": json.dumps(
                            {"ibr_check_ids": clearance[membership.partner_id.id]["check_ids"]}
                        ),
                    }
                    for membership in duplicated
                ]
            )
        if hasattr(duplicated, "_message_log_batch"):
            duplicated._message_log_batch(bodies={k: escape(v) for k, v in reasons.items()})

    @api.model
    def _duplicate_reason(self, clearance):
        checks = self.env["spp.dci.duplication.check"].sudo().browse(clearance["check_ids"])
        return self.env._(
            "IBR: enrolled elsewhere (check %(checks)s)",
            checks=", ".join(
                f"#{check.id} {check.data_source_id.display_name}" for check in checks
            ),
        )
