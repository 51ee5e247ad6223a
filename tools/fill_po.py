"""Write ``i18n/<lang>.po`` from the ``.pot``, filling translations from a
``{msgid: msgstr}`` Python file (``FR = {...}``); terms it lacks stay empty.

    python tools/fill_po.py fr /path/to/fr_terms.py
"""

import re
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POT = ROOT / "i18n" / "spp_dci_client_ibr.pot"
PLURALS = {"fr": "nplurals=2; plural=(n > 1);"}


def po_string(block):
    text = "".join(re.findall(r'^"(.*)"$', block, re.M))
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), text)


def escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fill(lang, terms):
    entries = POT.read_text(encoding="utf-8").split("\n\n")
    header = entries[0].replace(
        '"Language-Team: \\n"\n', f'"Language-Team: \\n"\n"Language: {lang}\\n"\n'
    )
    header = header.replace('"Plural-Forms: \\n"', f'"Plural-Forms: {PLURALS.get(lang, "")}\\n"')
    out = [header]
    for entry in entries[1:]:
        match = re.search(r'^msgid ((?:".*"\n?)+)msgstr ""$', entry, re.M)
        if match and po_string(match.group(1)) in terms:
            value = escape(terms[po_string(match.group(1))])
            entry = entry[: match.end() - 2] + f'"{value}"' + entry[match.end() :]
        out.append(entry)
    return "\n\n".join(out)


if __name__ == "__main__":
    lang, path = sys.argv[1], sys.argv[2]
    terms = runpy.run_path(path)[lang.upper()]
    (ROOT / "i18n" / f"{lang}.po").write_text(fill(lang, terms), encoding="utf-8")
