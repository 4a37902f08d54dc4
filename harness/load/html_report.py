"""``index.html``: the report folder's front page, written from ``summary.json``'s data.

One self-contained page (its charts are the folder's PNG files, linked relatively):
the verdict, what was lost, the thresholds, the knee against the limits, failures by
cause, the SQS quota figures, the charts, and links to locust's own page and files.
Everything shown is escaped: task titles and error messages are not trusted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.load.locust_stats import THROTTLED_SUFFIX

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d1d1f; line-height: 1.4; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.verdict { display: inline-block; padding: .3rem .9rem; border-radius: .4rem;
           font-weight: 700; color: white; }
.pass { background: #1a7f37; } .fail { background: #cf222e; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.knee td { background: #fff4ce; }
.statement { font-size: 1.15rem; padding: .6rem .9rem; border-left: 4px solid #888;
             background: #f6f8fa; }
img { max-width: 100%; border: 1px solid #eee; margin: .5rem 0; }
nav a { margin-right: 1rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return _e("-" if value is None else value)
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], classes: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers) if any(headers) else ""
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
        cells = "".join(_cell(c) for c in row)
        body.append(f"<tr{css}>{cells}</tr>")
    head_row = f"<tr>{head}</tr>" if head else ""
    return f"<table>{head_row}{''.join(body)}</table>"


class _Html(str):
    """Markup built here (already escaped)."""


def _cell(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{_num(value)}</td>'
    return f"<td>{value if isinstance(value, _Html) else _e(value)}</td>"


def _mark(passed: bool, text: str | None = None) -> _Html:
    word = text or ("PASS" if passed else "FAIL")
    return _Html(f'<span class="{"ok" if passed else "bad"}">{_e(word)}</span>')


def _ledger_section(summary: Mapping[str, Any]) -> str:
    ledger = summary.get("ledger")
    if not ledger:
        return (
            '<p class="statement">No ledger: this scenario does not follow tasks through '
            "the processor (<code>end_to_end</code> does).</p>"
        )
    lost, twice = ledger["lost"], ledger["applied_twice"]
    whole = lost == 0 and twice == 0 and ledger["order_preserved"]
    headline = (
        "Nothing lost, nothing applied twice, order kept."
        if whole
        else f"LOST {lost}, applied twice {twice}, order kept: {ledger['order_preserved']}."
    )
    statement = (
        f'<p class="statement">{_mark(whole, headline)} {ledger["accepted"]:,} tasks accepted '
        f"= {ledger['completed']:,} completed + {ledger['dead_lettered']:,} dead-lettered. "
        f"{ledger['idempotent_retries']:,} idempotent retries were answered with their first "
        "task's id and are not counted again.</p>"
    )
    rows = [
        ("tasks accepted (each counted once)", ledger["accepted"]),
        ("idempotent retries (same task id returned)", ledger["idempotent_retries"]),
        ("completed", ledger["completed"]),
        ("dead-lettered (expected / unexpected)",
         _Html(f"{ledger['expected_dead_lettered']:,} / {ledger['unexpected_dead_lettered']:,}")),
        ("lost", ledger["lost"]),
        ("applied twice", ledger["applied_twice"]),
        ("duplicate deliveries absorbed", ledger["duplicate_deliveries"]),
        ("order preserved", _mark(ledger["order_preserved"], str(ledger["order_preserved"]))),
        ("arrival rate (tasks/s)", ledger.get("accepted_per_s")),
        ("drain rate (tasks/s)", ledger["drain_per_s"]),
        ("end-to-end p50 / p95 / p99 (ms)",
         _Html(" / ".join(_num(ledger[k]) for k in ("e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms")))),
    ]  # fmt: skip
    ids = [("lost", ledger["lost_ids"]), ("applied twice", ledger["applied_twice_ids"]),
           ("out of order", ledger["order_violation_ids"])]  # fmt: skip
    samples = "".join(
        f"<p>{_e(name)} (first ids): <code>{_e(', '.join(values))}</code></p>"
        for name, values in ids
        if values
    )
    return statement + _table(("", "count"), rows) + samples


def _knee_section(summary: Mapping[str, Any]) -> str:
    steps = summary.get("steps") or []
    limits = summary.get("limits") or {}
    parts = []
    if limits:
        parts.append(
            "<p>Limits drawn on the charts: "
            + "; ".join(f"{_e(label)}" for label in limits)
            + ".</p>"
        )
    knee = summary.get("knee")
    if len(steps) > 1:
        if knee:
            parts.append(
                f'<p class="statement">Knee at step {knee["index"]} ({knee["users"]} users): '
                f"offered {knee['offered_per_s']:g}/s, achieved {knee['achieved_per_s']:g}/s "
                f"({knee['throttled_per_s']:g}/s throttled, {knee['failed_per_s']:g}/s failed)."
                "</p>"
            )
        else:
            parts.append(
                '<p class="statement">No knee: achieved followed offered at every step '
                "(raise --users or --user-rate to go further).</p>"
            )
        rows = [
            (s["index"], s["users"], s["offered_per_s"], s["achieved_per_s"],
             s["throttled_per_s"], s["failed_per_s"])
            for s in steps
        ]  # fmt: skip
        classes = ["knee" if knee and s["index"] == knee["index"] else "" for s in steps]
        parts.append(
            _table(
                ("step", "users", "offered/s", "achieved/s", "throttled/s", "failed/s"),
                rows,
                classes,
            )
            + "<p>Over each step less its first 2 s. throttled/s: the stage throttle's 429s "
            "(SQS: ThrottlingException); failed/s: every other unexpected answer, the 500s "
            "of a throttled API function included (see the causes below).</p>"
        )
    return "".join(parts)


def _quota_section(summary: Mapping[str, Any]) -> str:
    sqs = summary.get("sqs")
    if not sqs:
        return ""
    quota = sqs.get("quota") or {}
    q = quota.get("quota_calls_per_s")
    rows = []
    for row in sqs["calls"]:
        peaks = quota.get("calls", {}).get(row["call"], {})
        rows.append(
            (row["call"], row["calls_ok"], row["throttled"], row["errors"], row["calls_per_s"],
             peaks.get("peak_accepted_per_s"), peaks.get("peak_attempted_per_s"),
             row["messages_per_s"], row["messages_per_call"])
        )  # fmt: skip
    over = quota.get("offered_over_quota") or []
    throttled = quota.get("throttled_over_quota")
    statement = (
        f'<p class="statement">FIFO quota checked: {_num(q)} calls/s per action per queue '
        f"({_num(quota.get('quota_messages_per_s_batched'))} messages/s batched). Highest "
        f"accepted rate over 5 s: {_num(quota.get('peak_calls_vs_quota'))} x the quota. "
        + (
            f"Offered above the quota: {_e(', '.join(over))}; throttled: "
            f"{_mark(bool(throttled), str(throttled))}. "
            if over
            else "No call type was offered above the quota. "
        )
        + f"Batching factor (messages per call): {_num(quota.get('batch_factor'))}.</p>"
    )
    knees = summary.get("call_knees") or {}
    if knees:
        statement += _table(
            ("call", "knee", "offered calls/s there", "accepted calls/s there", "quota calls/s"),
            [
                (name, k["index"] if k else "none", k["offered_per_s"] if k else "-",
                 k["achieved_per_s"] if k else "-", q)
                for name, k in knees.items()
            ],
        )  # fmt: skip
    return statement + _table(
        ("call", "ok", "throttled", "errors", "calls/s", "peak accepted/s (5 s)",
         "peak attempted/s (5 s)", "messages/s", "messages/call"),
        rows,
    )  # fmt: skip


def _causes_section(summary: Mapping[str, Any]) -> str:
    by_cause: Mapping[str, int] = summary.get("failures_by_cause") or {}
    figures = summary.get("figures", {})
    total = summary["locust"]["total"]["requests"] or 1
    lines = []
    if figures.get("lambda_throttles") is not None:
        lines.append(
            f"<p>API function's <code>AWS/Lambda Throttles</code> during the run: "
            f"{_num(figures['lambda_throttles'])}.</p>"
        )
    if not by_cause:
        return "<p>No request failed or was throttled.</p>" + "".join(lines)
    rows = [(cause, count, f"{100 * count / total:.2f} %") for cause, count in by_cause.items()]
    return _table(("cause", "requests", "share of all"), rows) + "".join(lines)


def render(summary: Mapping[str, Any], files: Sequence[str]) -> str:
    """The whole page."""
    passed = bool(summary["passed"])
    shape = summary["shape"]
    title = f"Load run: {summary['scenario']} / {shape['shape']}"
    verdict = (
        f'<span class="verdict {"pass" if passed else "fail"}">'
        f"{'PASSED' if passed else 'FAILED'} (exit code {summary['exit_code']})</span>"
    )
    if summary["locust"]["crashed"]:
        code = _e(summary["locust"]["exit_code"])
        verdict += f" locust did not finish cleanly (exit code {code}); see locust.log"
    if summary.get("interrupted"):
        verdict += " interrupted"
    total = summary["locust"]["total"]
    where = summary["target"].get("api_url") or summary["target"].get("aws_endpoint_url")
    # Lambda-throttle 500s are failures to locust but throttles to this report.
    lambda_throttled = int(summary.get("figures", {}).get("lambda_throttled_500s") or 0)
    throttled = lambda_throttled + sum(
        e["requests"]
        for e in summary["locust"].get("entries", [])
        if e["name"].endswith(THROTTLED_SUFFIX)
    )
    errors = total["failures"] - throttled
    pcts = " / ".join(f"{total[k]:g}" for k in ("p50_ms", "p95_ms", "p99_ms"))
    facts = [
        ("target", f"{summary['target']['kind']} ({where})"),
        ("shape", ", ".join(f"{k} {v}" for k, v in shape.items() if v)),
        ("per-user rate (req/s)", summary["user_rate_per_user"]),
        ("started / wall time", f"{summary['started_at']} / {summary['wall_time_s']:.1f} s"),
        ("requests / failed / throttled", f"{total['requests']:,} / {errors:,} / {throttled:,}"),
        ("p50 / p95 / p99 (ms)", pcts),
        ("run id", summary["run_id"]),
    ]  # fmt: skip
    verdict_rows = [
        (v["threshold"], _num(v["limit"]), _num(v["actual"]), _mark(v["passed"]), v["message"])
        for v in summary["thresholds"]["verdicts"]
    ]
    charts = "".join(
        f'<h3>{_e(name.removesuffix(".png"))}</h3><img src="{_e(name)}" alt="{_e(name)}">'
        for name in summary.get("charts", [])
    )
    links = "".join(
        f'<li><a href="{_e(name)}">{_e(name)}</a></li>'
        for name in files
        if name not in summary.get("charts", []) and name != "index.html"
    )
    limits_html = _knee_section(summary) + _quota_section(summary)
    body = f"""
<h1>{_e(title)}</h1>
<p>{verdict}</p>
<nav><a href="#lost">Lost?</a><a href="#thresholds">Thresholds</a>
<a href="#knee">Knee and limits</a><a href="#failures">Failures</a><a href="#charts">Charts</a>
<a href="locust.html">locust's page</a><a href="#files">Files</a></nav>
{_table(("", ""), facts)}
<h2 id="lost">Accepted, completed, lost</h2>{_ledger_section(summary)}
<h2 id="thresholds">Thresholds ({_e(summary["thresholds"]["file"])})</h2>
{_table(("threshold", "limit", "measured", "", "detail"), verdict_rows)}
<h2 id="knee">Knee and limits</h2>{limits_html or "<p>No step or limit in this run.</p>"}
<h2 id="failures">Failed and throttled requests by cause</h2>{_causes_section(summary)}
<h2 id="charts">Charts</h2>{charts}
<h2 id="files">Files</h2><ul>{links}</ul>
"""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_index(report: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``index.html`` into the report folder."""
    path = report / "index.html"
    files = sorted({*(p.name for p in report.iterdir() if p.is_file()), "summary.json"})
    path.write_text(render(summary, files), encoding="utf-8")
    return path
