"""Summarise collapsed stacks (``py-spy record --format raw``) of an Odoo server.

Each line of the file is ``frame;frame;...;frame COUNT``, outermost frame
first, a frame being ``function (file:line)``. For each *path* (the stacks
holding one of its marker functions), the functions of this addon (file
under ``spp_dci_client_ibr``) and a few key Odoo frames (ORM, SQL, mail,
fastapi) are ranked by inclusive share: the share of the path's samples
whose stack holds the function. Frames in every stack of the path (its entry
frames) are left out of the ranking. ``own`` is the share where the function
is the deepest ranked frame: time in it, or in library code it called.

    python benchmarks/profile_summary.py profile.txt
"""

import re
import sys
from collections import Counter

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
ADDON = "spp_dci_client_ibr"
KEY_ODOO = re.compile(
    r"/odoo/(orm/|sql_db\.py|api\.py|fields\.py|models\.py|service/model\.py)"
    r"|/odoo/addons/(mail|fastapi)/"
)
# the callback path: its work runs in the thread pool, under the callback service
PATHS = {
    "callback path": ("receive", "_apply_search_response"),
    "send job": ("_cron_send_queued",),
}
CALLBACK_FILE = "callback_service.py"


def parse(lines):
    """``[(frames, count)]``, frames as ``(function, file)``, outermost first."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            match = FRAME.match(frame)
            frames.append((match["function"], match["file"]) if match else (frame, ""))
        stacks.append((frames, int(count)))
    return stacks


def _ranked(frame):
    function, file = frame
    return function != "<module>" and (ADDON in file or bool(KEY_ODOO.search(file)))


def _in_path(frames, markers):
    for function, file in frames:
        name = function.rpartition(".")[2]  # py-spy names methods Class.method
        if name in markers and (name != "receive" or file.endswith(CALLBACK_FILE)):
            return True
    return False


def _label(frame):
    function, file = frame
    if ADDON in file:
        file = file[file.rindex(ADDON) + len(ADDON) + 1 :]
    elif "/odoo/" in file:
        file = "odoo/" + file[file.rindex("/odoo/") + len("/odoo/") :]
    return f"{function} ({file})"


def summarise(stacks, markers, top=15):
    """``(samples, [(label, inclusive share, own share)])`` for the stacks
    holding one of ``markers``."""
    chosen = [(frames, count) for frames, count in stacks if _in_path(frames, markers)]
    total = sum(count for _, count in chosen)
    inclusive, own = Counter(), Counter()
    for frames, count in chosen:
        ranked = [frame for frame in frames if _ranked(frame)]
        for frame in set(ranked):
            inclusive[frame] += count
        if ranked:
            own[ranked[-1]] += count
    rows = [
        (_label(frame), hits / total, own[frame] / total)
        for frame, hits in inclusive.most_common()
        if hits < total  # entry frames (in every stack) tell nothing
    ]
    return total, rows[:top]


def report(path, top=15, out=sys.stdout):
    with open(path, encoding="utf-8", errors="replace") as file:
        stacks = parse(file)
    all_samples = sum(count for _, count in stacks)
    print(f"profile {path}: {all_samples} samples", file=out)
    for name, markers in PATHS.items():
        total, rows = summarise(stacks, markers, top)
        share = total / all_samples if all_samples else 0
        print(f"  {name}: {total} samples ({share:.0%} of all)", file=out)
        for label, inclusive, own in rows:
            print(f"    {inclusive:6.1%} incl {own:6.1%} own  {label}", file=out)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        report(argument)
