/** The officer's path: the IBR Checks app → Registrants → a registrant →
 * Check in IBR → the wizard lists what is sent → Check → the batch's checks;
 * then (after the send job ran) the result with its match lines. Driven by
 * tests/test_tours.py. */
import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

registry.category("web_tour.tours").add("spp_dci_ibr_officer_check", {
    steps: () => [
        ...stepUtils.goToAppSteps("spp_dci_client_ibr.menu_ibr_officer_root", "Open the IBR Checks app"),
        {
            content: "The app opens on the registrants; open one",
            trigger: ".o_list_view .o_data_row:contains(Registrant One) .o_data_cell",
            run: "click",
        },
        {
            content: "Check the registrant in the IBR",
            trigger: ".o_form_view button[name='action_open_ibr_check_wizard']",
            run: "click",
        },
        {
            content: "The wizard proposes the identifier type the registrant has",
            trigger: ".modal .o_field_widget[name='identifier_type'] input:value(NID)",
        },
        {
            content: "...and lists the value that will be sent",
            trigger: ".modal .o_field_widget[name='line_ids'] .o_data_row:contains(1000000001)",
        },
        {
            trigger: ".modal .o_field_widget[name='count_summary']:contains(1 registrant will be checked, 0 skipped.)",
        },
        {
            content: "Check",
            trigger: ".modal button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The summary says what was queued",
            trigger: ".o_notification:contains(1 check queued, 0 registrants skipped.)",
        },
        {
            content: "The batch's check is listed, queued",
            trigger: ".o_list_view .o_data_row:contains(Queued)",
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_officer_result", {
    steps: () => [
        {
            content: "The answer: a confirmed match",
            trigger: ".o_form_view .o_field_widget[name='result']:contains(Confirmed Match)",
        },
        {
            trigger: ".o_form_view .o_field_widget[name='result_source']:contains(IBR search)",
        },
        {
            content: "Open the matches",
            trigger: ".o_notebook a[name='matches']",
            run: "click",
        },
        {
            content: "One line per enrolment, with the programme and the matched person",
            trigger:
                ".o_field_widget[name='match_ids'] .o_data_row:contains(Cash Transfer Programme):contains(Amina Diallo):contains(Active)",
        },
    ],
});
