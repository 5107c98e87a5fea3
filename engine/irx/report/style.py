"""The HTML report's stylesheet, inlined into every page (irx.report.html): the page needs nothing but itself."""

CSS = """
.metrics table { border-collapse: collapse; margin: 0.5em 0 1em; }
.metrics td, .metrics th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }
.metrics tr.over td { color: #b00020; font-weight: bold; }
:root{--ok:#2f9e5a;--failed:#d64545;--timed_out:#e0861e;--unreachable:#8b4fd8;--skipped:#9aa3ad;
--would_run:#4a7fd6;--refused:#b0306f;--not_run:#c9ced4;--unfinished:#b58b00;--ink:#1f2933;--muted:#66717d;--line:#e3e7eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0;
padding:24px 32px;background:#f7f8fa}
h1{font-size:22px;margin:0 0 12px}h2{font-size:16px;margin:28px 0 10px}
header,section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin-bottom:16px}
section h2{margin-top:0}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px 20px;margin:0}
.field dt{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.field dd{margin:0;font-weight:600;word-break:break-all}
.status{display:inline-block;padding:0 8px;border-radius:10px;color:#fff;background:var(--muted)}
.summary,.reason{color:var(--muted);margin:10px 0 0}
.problems{border-color:#e0861e;background:#fff8ef}
.chart{position:relative}
.row{display:flex;align-items:center;min-height:30px;border-top:1px solid var(--line)}
.row.axis{border-top:0;min-height:22px}
.name{flex:0 0 150px;padding-right:10px;font-size:12px;color:var(--muted);white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.lane .name{color:var(--ink);font-weight:600}
.track{position:relative;flex:1;height:24px}
.grid{position:absolute;left:150px;right:0;top:22px;bottom:0;pointer-events:none}
.gridline{position:absolute;top:0;bottom:0;border-left:1px dashed var(--line)}
.group{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);padding:10px 0 4px}
.tick{position:absolute;top:2px;font-size:11px;color:var(--muted);transform:translateX(-50%);white-space:nowrap}
.tick:first-child{transform:none}
.bar{position:absolute;top:3px;height:18px;min-width:4px;border-radius:3px;background:var(--muted);color:#fff;
font-size:11px;line-height:18px;padding:0 4px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;
text-decoration:none}
.bar span{pointer-events:none}
.bar.st-would_run{background:repeating-linear-gradient(135deg,var(--would_run) 0 6px,#7aa2e6 6px 12px)}
.bar:hover{outline:2px solid var(--ink)}
.marker{position:absolute;top:2px;width:11px;height:11px;margin-left:-5px;transform:rotate(45deg);
border:1px solid #fff;background:#334e68}
.marker.approval{top:12px;background:#e0a800;border-radius:50%;transform:none}
.marker[data-status=refused]{background:var(--failed)}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin-top:12px;font-size:12px;color:var(--muted)}
.key{display:inline-flex;align-items:center;gap:5px}
.swatch{display:inline-block;width:14px;height:10px;border-radius:2px}
.mk{display:inline-block;width:10px;height:10px;background:#334e68;transform:rotate(45deg)}
.mk.approval{background:#e0a800;border-radius:50%;transform:none}
.badge{display:inline-block;min-width:64px;text-align:center;padding:0 6px;border-radius:4px;color:#fff;
font-size:12px;background:var(--muted)}
.st-ok{background:var(--ok)}.st-failed{background:var(--failed)}.st-timed_out{background:var(--timed_out)}
.st-unreachable{background:var(--unreachable)}.st-skipped{background:var(--skipped)}
.st-would_run{background:var(--would_run)}.st-not_run{background:var(--not_run);color:var(--ink)}
.st-unfinished,.st-interrupted,.st-running{background:var(--unfinished)}
.st-verified,.st-dry_run{background:var(--ok)}.st-rolled_back,.st-awaiting_approval{background:var(--timed_out)}
.st-aborted{background:var(--failed)}.st-refused{background:var(--refused)}
.bar.st-refused{background:repeating-linear-gradient(45deg,var(--refused) 0 6px,#d0689b 6px 12px)}
.mk.approval.refused{background:var(--failed)}
.finding{border-color:#334e68}.finding dl{margin:0}.headline{display:flex;gap:12px;margin:4px 0}
.headline dt{flex:0 0 130px;font-weight:600}.headline dd{margin:0}
.ran{margin:6px 0}.ran-head{font-size:12px;color:var(--muted)}.muted{color:var(--muted)}
details.step{border-top:1px solid var(--line);padding:8px 0}
details.step>summary{cursor:pointer}
.step-phase{color:var(--muted);font-size:12px;text-transform:uppercase}
.dur{color:var(--muted);font-size:12px}
pre{background:#f1f3f5;border-radius:4px;padding:8px 10px;overflow:auto;max-height:360px;margin:6px 0;
white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.result{margin:8px 0 8px 16px}.rhead{font-size:13px}
details.output{margin-left:16px}details.output>summary{cursor:pointer;color:var(--muted);font-size:12px}
.note{margin:6px 0 6px 16px;font-size:13px}.note.error{color:var(--failed)}
"""
