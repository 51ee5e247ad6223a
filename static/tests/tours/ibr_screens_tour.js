/** What the screens say by themselves: a finished batch is Done; without a
 * ready connection the wizard says ask an administrator; a list follows the
 * IBR's answers; a French officer reads French. Driven by tests/test_tours.py. */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("spp_dci_ibr_batch_done", {
    steps: () => [
        {
            content: "The finished batch is listed as Done",
            trigger: ".o_list_view .o_data_row:contains(Done) .o_data_cell",
            run: "click",
        },
        {
            content: "...and its form says Done",
            trigger: ".o_form_view .o_statusbar_status .o_arrow_button_current:contains(Done)",
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_no_connection", {
    steps: () => [
        {
            trigger: ".o_form_view button[name='action_open_ibr_check_wizard']",
            run: "click",
        },
        {
            content: "The wizard says what to do",
            trigger: ".modal .alert-warning:contains(Ask an administrator)",
        },
        {
            content: "...and offers no Check",
            trigger: ".modal .modal-footer:not(:has(button[name='action_confirm']))",
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_live_list", {
    steps: () => [
        {
            content: "The check waits for the IBR",
            trigger: ".o_list_view .o_data_row:contains(Registrant One):contains(Checking)",
        },
        {
            content: "The answer arrives: the list shows it without a reload",
            trigger: ".o_list_view .o_data_row:contains(Registrant One):contains(Completed):contains(No Match)",
            timeout: 20000,
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_french_officer", {
    steps: () => [
        {
            content: "The list speaks French",
            trigger: ".o_list_view .o_data_row:contains(Registrant One):contains(En cours)",
        },
        {
            content: "The batch's end is told in French, with a French date",
            trigger: ".o_notification:contains(Vérifications IBR terminées):contains(/12/2026)",
            timeout: 20000,
        },
        {
            content: "...and the list shows the answer, in French",
            trigger: ".o_list_view .o_data_row:contains(Registrant One):contains(Aucune correspondance)",
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_figures", {
    steps: () => [
        {
            content: "Results are coloured by meaning: No Match green, Confirmed Match red",
            trigger: ".o_graph_renderer canvas",
            run() {
                const chart = window.Chart.getChart(this.anchor);
                const colours = Object.fromEntries(
                    chart.data.datasets.map((d) => [d.label, d.backgroundColor])
                );
                if (colours["No Match"] !== "#28a745" || colours["Confirmed Match"] !== "#dc3545") {
                    throw new Error(`colours by result: ${JSON.stringify(colours)}`);
                }
            },
        },
        {
            content: "The pivot counts results by IBR connection",
            trigger: ".o_switch_view.o_pivot",
            run: "click",
        },
        {
            trigger: ".o_pivot thead:contains(No Match):contains(Confirmed Match)",
        },
        {
            trigger: ".o_pivot tbody th:contains(Test IBR connection)",
        },
    ],
});
