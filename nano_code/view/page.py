"""The page around a view: one HTML file with its CSS and its one script inline, and a
Content-Security-Policy that lets only those two run (by their SHA-256), nothing else load.

Nothing is fetched: no fonts, images, frames or connections (`default-src 'none'`), no <base>,
no form. The script only moves, opens, sorts and hides what the page already holds; it never
turns text into markup (no innerHTML), so text from a session stays text with it too.
"""

from __future__ import annotations

import base64
import hashlib

from nano_code.view.text import text

GENERATOR = "nano-code view"
"""The page's <meta name="generator">: how `nano-code view` knows a file it may overwrite."""

CSS = """
:root{color-scheme:light dark;--fg:#1d1f23;--bg:#fff;--muted:#5f6670;--line:#d8dce3;--code:#f4f5f7;
--pass:#1a7f37;--fail:#c62828;--warn:#8a5a00;--accent:#0b57d0;--soft:#eef3fd}
@media (prefers-color-scheme:dark){:root{--fg:#e4e6ea;--bg:#15171b;--muted:#9aa3ad;--line:#343a44;
--code:#1d2127;--pass:#56d364;--fail:#ff7b72;--warn:#e3b341;--accent:#79a8ff;--soft:#1c2433}}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;max-width:1400px;padding:1rem 1.5rem 4rem}
a{color:var(--accent)}
h1{font-size:1.35rem;margin:.4rem 0 .8rem}h2{font-size:1.15rem;margin:.2rem 0 .5rem}
h3{font-size:1rem;margin:1.4rem 0 .4rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--code);padding:.45rem .65rem;
border-radius:4px;margin:.3rem 0;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
details.fold>summary,details.reasoning>summary{cursor:pointer;color:var(--muted)}
details.fold>summary .preview{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--fg)}
.size{color:var(--muted);font-size:.85em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.4rem 0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
.session{border-top:2px solid var(--line);padding-top:.8rem;margin-top:1.5rem}
.session.more:not(:target):not(:has(:target)){display:none}
body>.session:first-child{border-top:0;margin-top:0}
.wide{overflow-x:auto}
.buttons{float:right}
button{font:inherit;font-size:.85em;padding:.1rem .5rem;margin-left:.3rem;cursor:pointer}
ol.timeline{list-style:none;padding:0;margin:.8rem 0}
ol.timeline>li{border-left:3px solid var(--line);padding:.15rem .8rem;margin:.45rem 0;
content-visibility:auto;contain-intrinsic-size:auto 5rem}
li.prompt{border-color:var(--accent)!important;background:var(--soft)}
.who{font-weight:600;color:var(--muted);font-size:.85em;text-transform:uppercase;letter-spacing:.03em}
li.step.summary{border-style:dashed!important}
li.step .head{color:var(--muted);font-size:.9em}
li.step .head a.num{font-weight:600;color:var(--fg);text-decoration:none}
li.note{color:var(--muted);font-size:.9em}
li.note.warning{color:var(--warn)}li.note.error{color:var(--fail)}
li.end{font-size:.9em}li.end.completed{color:var(--pass)}
li.end.failed,li.end.interrupted,li.end.step_budget{color:var(--fail)}
.failure{color:var(--fail)}
.forked{color:var(--accent);font-weight:600;font-size:.9em}
ol.calls{list-style:none;padding:0;margin:.3rem 0 .2rem}
ol.calls>li{border:1px solid var(--line);border-radius:5px;padding:.3rem .6rem;margin:.35rem 0}
.call .name{font-weight:600}
.call .status{float:right;font-size:.85em;color:var(--muted)}
.call.bad .status,.call.refused .status,.call.denied .status{color:var(--fail)}
.call .approval{font-size:.85em;color:var(--muted)}
dl.args{margin:.2rem 0}dl.args dt{font-size:.85em;color:var(--muted)}dl.args dd{margin:0 0 .2rem 0}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.88em}
th,td{border:1px solid var(--line);padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:var(--code)}table.sortable th{cursor:pointer}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:var(--pass)}.fail{color:var(--fail)}.error{color:var(--warn)}
.muted{color:var(--muted)}
input[type=search]{font:inherit;padding:.15rem .4rem;width:18rem}
nav.index ol{padding-left:1.6rem}
"""

SCRIPT = """
(function () {
  "use strict";
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    if (!target) return;
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.scrollIntoView({block: "start"});
  }
  function key(cell) {
    var shown = cell ? cell.textContent.trim() : "";
    var value = parseFloat(shown.replace(/[$,%]/g, ""));
    return isNaN(value) ? shown.toLowerCase() : value;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-act]");
    if (button) {
      var scope = button.closest("section") || document;
      var open = button.getAttribute("data-act") === "open";
      scope.querySelectorAll("details").forEach(function (d) { d.open = open; });
      return;
    }
    var th = event.target.closest("table.sortable th");
    if (th) sortBy(th);
  });
  document.addEventListener("input", function (event) {
    var box = event.target.closest("input[data-filter]");
    var table = box ? document.getElementById(box.getAttribute("data-filter")) : null;
    if (!table) return;
    var wanted = box.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = wanted !== "" && row.textContent.toLowerCase().indexOf(wanted) < 0;
    });
  });
  window.addEventListener("hashchange", reveal);
  reveal();
})();
"""


def source_hash(source: str) -> str:
    """A CSP source expression allowing exactly this inline script or style."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSP = (
    f"default-src 'none'; script-src {source_hash(SCRIPT)}; style-src {source_hash(CSS)}; "
    "img-src 'none'; font-src 'none'; connect-src 'none'; media-src 'none'; object-src 'none'; "
    "frame-src 'none'; worker-src 'none'; manifest-src 'none'; base-uri 'none'; form-action 'none'"
)


def page(title: str, body: str) -> str:
    """The whole HTML document around `body` (already HTML, built only through view/text.py)."""
    return "".join(
        (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
            '<meta name="referrer" content="no-referrer">\n',
            f'<meta name="generator" content="{GENERATOR}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{text(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            body,
            f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        )
    )
