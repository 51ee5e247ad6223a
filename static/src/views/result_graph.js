/** The checks' graph colours results by meaning, whatever their order:
 * No Match green, Possible Match orange, Confirmed Match red, none grey
 * (js_class="spp_dci_ibr_result_graph" on the checks' graph view). */
import { registry } from "@web/core/registry";
import { graphView } from "@web/views/graph/graph_view";
import { GraphRenderer } from "@web/views/graph/graph_renderer";

const RESULT_COLORS = {
    no_match: "#28a745",
    possible_match: "#f0ad4e",
    confirmed_match: "#dc3545",
};
const NONE_COLOR = "#adb5bd";

export class IbrResultGraphRenderer extends GraphRenderer {
    getBarChartData() {
        const data = super.getBarChartData();
        const selection = this.model.metaData.fields.result?.selection || [];
        const byLabel = Object.fromEntries(
            selection.map(([value, label]) => [label, RESULT_COLORS[value]])
        );
        const fields = this.model.metaData.groupBy.map((gb) =>
            typeof gb === "string" ? gb.split(":")[0] : gb.fieldName
        );
        const colorOf = (label) => byLabel[String(label)] || NONE_COLOR;
        for (const dataset of data.datasets) {
            if (dataset.type === "line") {
                continue;
            }
            if (fields.length === 1 && fields[0] === "result") {
                dataset.backgroundColor = data.labels.map(colorOf); // one bar per result
            } else if (fields[1] === "result") {
                dataset.backgroundColor = colorOf(dataset.label); // one dataset per result
            }
        }
        return data;
    }
}

registry.category("views").add("spp_dci_ibr_result_graph", {
    ...graphView,
    Renderer: IbrResultGraphRenderer,
});
