"""Rendering for ``pathbench report``: Markdown pipe tables, and ``report.html`` — one
self-contained, offline page.

Tables are written here (not by pandas) so that each carries its caption, its alignment and
the hooks of the small inline script that sorts it: click a header to sort by that column
(numbers numerically where a cell starts with one, text after them, ``-`` / ``not reached``
always last; a second click reverses). Plots are embedded as base64 PNGs. Nothing is fetched:
no CDN, no link, no external script.

Test hooks of the script (used by the headless-browser test, harmless otherwise): the query
string ``?click=T.C`` (repeatable) clicks header C of table T (both 0-based, in page order)
once the page is parsed; after the ``load`` event every ``<img>`` carries
``data-natural-width`` and ``<body>`` carries ``data-images`` (how many) and
``data-images-decoded`` (how many decoded with a width > 0).
"""

from __future__ import annotations

import base64
import html

import pandas as pd

MISSING = "-"
NOT_REACHED = "not reached"

STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
         "caption{caption-side:top;text-align:left;padding:.3em 0;max-width:70em;color:#333}"
         "th,td{border:1px solid #bbb;padding:2px 8px}td.num{text-align:right}td.txt{text-align:left}"
         "th{background:#eee;cursor:pointer;user-select:none;white-space:nowrap}"
         'th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}'
         "img{max-width:100%}pre{background:#f4f4f4;padding:.5em}"
         # a wide table scrolls inside its box instead of widening the page
         "div.scroll{overflow-x:auto;max-width:100%}summary{cursor:pointer}")

SCRIPT = r"""
(function () {
  "use strict";
  function key(text) {
    var t = text.trim();
    if (t === "" || t === "-" || t.indexOf("not reached") === 0) return [2, 0];
    var m = /^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?/i.exec(t);
    return m ? [0, parseFloat(m[0])] : [1, t.toLowerCase()];
  }
  function sortBy(table, col, dir) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col].textContent), y = key(b.cells[col].textContent);
      if (x[0] !== y[0]) return x[0] - y[0];
      return x[1] < y[1] ? -dir : x[1] > y[1] ? dir : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }
  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        function go() { sortBy(table, col, th.getAttribute("aria-sort") === "ascending" ? -1 : 1); }
        th.addEventListener("click", go);
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      });
    });
    new URLSearchParams(location.search).getAll("click").forEach(function (spec) {
      var p = spec.split("."), table = tables[+p[0]];
      if (table) table.tHead.rows[0].cells[+p[1]].click();
    });
  }
  window.pathbenchSort = sortBy;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
  window.addEventListener("load", function () {
    var imgs = document.images, decoded = 0;
    Array.prototype.forEach.call(imgs, function (img) {
      img.setAttribute("data-natural-width", img.naturalWidth);
      if (img.complete && img.naturalWidth > 0) decoded += 1;
    });
    document.body.setAttribute("data-images", imgs.length);
    document.body.setAttribute("data-images-decoded", decoded);
  });
})();
"""


def is_numeric(cell: str) -> bool:
    return cell == MISSING or cell.startswith(NOT_REACHED) or cell[:1].isdigit() or \
        (cell[:1] in "-+" and cell[1:2].isdigit())


def numeric_columns(table: pd.DataFrame) -> list[bool]:
    """Per column: every cell a number (or missing) -> right-aligned."""
    cells = table.astype(str)
    return [len(cells) > 0 and all(is_numeric(c) for c in cells.iloc[:, i]) for i in range(cells.shape[1])]


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table; text columns left-aligned, numeric ones right-aligned."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in table.astype(str).itertuples(index=False)]
    heads = [str(h).replace("|", "\\|") for h in table.columns]
    numeric = numeric_columns(table)
    widths = [max([len(heads[i]), 3, *(len(r[i]) for r in cells)]) for i in range(len(heads))]
    pad = lambda s, i: s.rjust(widths[i]) if numeric[i] else s.ljust(widths[i])  # noqa: E731
    lines = ["| " + " | ".join(pad(h, i) for i, h in enumerate(heads)) + " |",
             "|" + "|".join("-" * (w + 1) + ":" if numeric[i] else ":" + "-" * (w + 1)
                            for i, w in enumerate(widths)) + "|"]
    lines += ["| " + " | ".join(pad(c, i) for i, c in enumerate(r)) + " |" for r in cells]
    return "\n".join(lines) + "\n"


def table_html(table: pd.DataFrame, caption: str | None = None, kind: str = "settings") -> str:
    esc = html.escape
    numeric = numeric_columns(table)
    head = "".join(f'<th scope="col" tabindex="0">{esc(str(h))}</th>' for h in table.columns)
    rows = ["<tr>" + "".join(f'<td class="{"num" if numeric[i] else "txt"}">{esc(str(c))}</td>'
                             for i, c in enumerate(row)) + "</tr>" for row in table.itertuples(index=False)]
    cap = f"<caption>{esc(caption.strip())}</caption>" if caption else ""
    return (f'<table class="sortable {kind}">{cap}<thead><tr>{head}</tr></thead>'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def page(title: str, summary: str, legend: str, sections: list) -> str:
    """The whole page: the sections of :mod:`pathbench.report.sections` in their order (a
    section's paragraph, its table in a horizontally scrolling box, its figures, notes and
    folded ``<details>``)."""
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", f"<p>{esc(summary)}</p>", f"<p>{esc(legend)}</p>"]
    for s in sections:
        warn = s.kind == "warning"  # inline, so that a page without a warning keeps its bytes
        body.append(f'<h2 role="alert" style="color:#b00000">{esc(s.title)}</h2>' if warn else f"<h2>{esc(s.title)}</h2>")
        if s.text:
            body.append(f"<p>{esc(s.text.strip())}</p>")
        if s.table is not None:
            body.append(f'<div class="scroll">{table_html(s.table, s.caption, s.kind)}</div>')
        for figure in s.figures:
            data = base64.b64encode(figure.png).decode("ascii")
            body.append(f'<figure><img alt="{esc(figure.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{esc(figure.caption)}</figcaption></figure>")
        if s.kind in ("problems", "warning") and s.notes:
            body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul>")
        else:
            body += [f"<p>{esc(n)}</p>" for n in s.notes]
        body += [f"<details><summary>{esc(summary_)}</summary><pre>{esc(text)}</pre></details>"
                 for summary_, text in s.folded]
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) +
            f"\n<script>{SCRIPT}</script>\n</body></html>\n")
