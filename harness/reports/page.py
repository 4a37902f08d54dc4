"""``features.html``: one self-contained page, no scripts, every value HTML-escaped.

The top says how the run ended (and why, when it did not complete), the counts per
feature, the failures with their messages, where it ran and the deployed settings. The
"Failed only" filter is CSS alone (``#failed:target``), so the page keeps its
no-script Content-Security-Policy and the filtered view has its own address
(``features.html#failed``). Every feature and scenario has an anchor.
"""

from __future__ import annotations

import html

from harness.reports.model import (
    OUTCOMES,
    RunInfo,
    ScenarioResult,
    counts,
    feature_anchor,
)
from harness.reports.recording import Call

e = html.escape


def by_feature(results: list[ScenarioResult]) -> dict[str, list[ScenarioResult]]:
    """Scenarios grouped by feature, in the order features first appear."""
    grouped: dict[str, list[ScenarioResult]] = {}
    for result in results:
        grouped.setdefault(result.feature, []).append(result)
    return grouped


def render(run: RunInfo, results: list[ScenarioResult]) -> str:
    """The whole page."""
    grouped = by_feature(results)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{e(_verdict(run, results))}: Task API guarantees</title><style>",
        _CSS,
        # The filter's anchor comes first, so following #failed does not scroll the page.
        "</style></head><body><span id='failed'></span><header id='top'>",
        "<h1>Task API guarantees</h1>",
        _banner(run, results),
        _totals(run, results),
        "</header>",
        _overview(run, grouped),
        "<p class='filter-note'>Showing failed scenarios only. <a href='#top'>Show all</a></p>",
        "<main>",
    ]
    for feature, members in grouped.items():
        parts.append(_feature(feature, members))
    if not results:
        parts.append("<p class='empty'>No scenario ran.</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _verdict(run: RunInfo, results: list[ScenarioResult]) -> str:
    tally = counts(results)
    if run.status == "running":
        return "NOT FINISHED"
    if tally["failed"]:
        return "FAILED"
    if run.status != "complete":
        return "INCOMPLETE"
    return "PASSED" if tally["passed"] else "NOTHING RAN"


def _banner(run: RunInfo, results: list[ScenarioResult]) -> str:
    if run.status == "running":
        return (
            "<div class='banner running'><b>This run has not finished.</b> It started at "
            f"{e(run.started_at)}. If no run is under way, it was killed before it could "
            "write its results: they are unknown, and no earlier result stands in for them."
            "</div>"
        )
    if run.status == "complete":
        return ""
    tally = counts(results)
    not_run = (
        f" {tally['not run']} of {len(results)} selected scenarios did not run."
        if tally["not run"]
        else ""
    )
    reason = run.reason[:1].upper() + run.reason[1:]
    errors = "".join(
        f"<pre class='collect'>{e(error)}</pre>" for error in run.collection_errors[:5]
    )
    return (
        f"<div class='banner incomplete'><b>The run did not complete.</b> {e(reason)}."
        f"{e(not_run)} The counts below are those of the scenarios that ran.{errors}</div>"
    )


def _totals(run: RunInfo, results: list[ScenarioResult]) -> str:
    tally = counts(results)
    chips = " ".join(
        f"<span class='chip {outcome.replace(' ', '-')}'>{tally[outcome]} {outcome}</span>"
        for outcome in OUTCOMES
        if tally[outcome] or outcome in {"passed", "failed"}
    )
    verdict = _verdict(run, results)
    return (
        f"<p class='totals'><span class='verdict {e(verdict.lower().replace(' ', '-'))}'>"
        f"{e(verdict)}</span> {chips} <span class='time'>scenarios "
        f"{run.scenarios_s:.1f} s &middot; wall time {run.wall_time_s:.1f} s</span></p>"
        f"<nav><a href='#top'>All ({len(results)})</a> <a href='#failed'>Failed only "
        f"({tally['failed']})</a> <a href='#environment'>Environment</a></nav>"
    )


def _overview(run: RunInfo, grouped: dict[str, list[ScenarioResult]]) -> str:
    rows = []
    for feature, members in grouped.items():
        tally = counts(members)
        state = "failed" if tally["failed"] else "passed"
        cells = "".join(
            f"<td class='n {o.replace(' ', '-')}{' zero' if not tally[o] else ''}'>{tally[o]}</td>"
            for o in OUTCOMES
        )
        seconds = sum(m.duration_s for m in members)
        rows.append(
            f"<tr class='{state}'><td><a href='#{feature_anchor(members[0].feature_file)}'>"
            f"{e(feature)}</a></td>{cells}<td class='n'>{seconds:.1f} s</td></tr>"
        )
    header = "".join(f"<th>{o}</th>" for o in OUTCOMES)
    parts = [
        "<section class='overview'><table class='features'><thead><tr><th>Feature</th>",
        f"{header}<th>time</th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
    ]
    failed = [r for members in grouped.values() for r in members if r.outcome == "failed"]
    if failed:
        parts.append("<h2>Failures</h2><ol class='failures'>")
        for result in failed:
            first = (result.message.strip().splitlines() or [""])[0]
            parts.append(
                f"<li><a href='#{result.anchor}'>{e(result.title)}</a> "
                f"<small>{e(result.feature_file)}</small><br><code>{e(first[:300])}</code></li>"
            )
        parts.append("</ol>")
    parts.append(_environment(run))
    parts.append("</section>")
    return "".join(parts)


def _environment(run: RunInfo) -> str:
    rows = [("Target", run.target), ("Started", run.started_at), ("Command", run.command)]
    rows += list(run.environment.items())
    env = _rows([(k, v) for k, v in rows if v])
    if run.settings:
        settings = _rows(list(run.settings.items()))
    elif run.settings_error:
        settings = f"<tr><td>Could not be read from the stack: {e(run.settings_error)}</td></tr>"
    else:
        settings = "<tr><td>Not read: no scenario reached the stack.</td></tr>"
    return (
        "<div class='env' id='environment'><div><h2>Environment</h2>"
        f"<table>{env}</table></div><div><h2>Deployed settings that bound every wait</h2>"
        f"<table>{settings}</table></div></div>"
    )


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs)


def _feature(feature: str, members: list[ScenarioResult]) -> str:
    tally = counts(members)
    state = "failed" if tally["failed"] else "passed"
    first = members[0]
    parts = [
        f"<section class='feature {state}' id='{feature_anchor(first.feature_file)}'>"
        f"<h2>{e(feature)} <small>{e(first.feature_file)} &middot; {tally['passed']}/"
        f"{len(members)} passed</small></h2>"
    ]
    if first.feature_description:
        parts.append(f"<p class='desc'>{e(first.feature_description)}</p>")
    parts.extend(_scenario(result) for result in members)
    parts.append("</section>")
    return "\n".join(parts)


def _scenario(result: ScenarioResult) -> str:
    tags = " ".join(f"<span class='tag'>@{e(tag)}</span>" for tag in result.tags)
    outcome = result.outcome.replace(" ", "-")
    opened = " open" if result.outcome == "failed" else ""
    parts = [
        f"<details class='scenario {outcome}' id='{result.anchor}'{opened}><summary>"
        f"<span class='badge'>{e(result.outcome)}</span> {e(result.title)} "
        f"<small>{result.duration_s:.2f} s</small> {tags} "
        f"<a class='link' href='#{result.anchor}' title='link to this scenario'>#</a></summary>"
    ]
    if result.outcome == "failed" and result.message:
        parts.append(f"<pre class='message'>{e(result.message)}</pre>")
    if result.outcome == "skipped" and result.message:
        parts.append(f"<p class='skip'>Skipped: {e(result.message)}</p>")
    if result.examples:
        parts.append(f"<table class='example'>{_rows(list(result.examples.items()))}</table>")
    parts.append("<ol class='steps'>")
    for step in result.steps:
        timing = f" &middot; {step.duration_s:.2f} s" if step.status in {"passed", "failed"} else ""
        parts.append(
            f"<li class='{e(step.status.replace(' ', '-'))}'><b>{e(step.keyword)}</b> "
            f"{e(step.name)} <small>{e(step.status)}{timing}</small></li>"
        )
    parts.append("</ol>")
    if result.outcome == "failed" and result.detail:
        parts.append(
            "<details class='trace'><summary>Traceback</summary>"
            f"<pre>{e(result.detail)}</pre></details>"
        )
    if result.calls:
        parts.append(_calls(result.calls, result.calls_omitted))
    parts.append("</details>")
    return "\n".join(parts)


def _calls(calls: list[Call], omitted: int) -> str:
    http = sum(c.count for c in calls if c.kind == "http")
    aws = sum(c.count for c in calls if c.kind == "aws")
    failing = sum(c.count for c in calls if not c.ok)
    more = f", {omitted} more not kept" if omitted else ""
    note = f" &middot; <span class='bad'>{failing} not 2xx</span>" if failing else ""
    rows = []
    for call in calls:
        repeat = f" <span class='repeat'>&times;{call.count}</span>" if call.count > 1 else ""
        what = f"{call.method} {call.target}"
        rows.append(
            f"<tr class='{'ok' if call.ok else 'bad'}'><td class='n'>+{call.at_s:.2f} s</td>"
            f"<td>{'HTTP' if call.kind == 'http' else 'AWS'}</td>"
            f"<td><details><summary><code>{e(what)}</code>{repeat}</summary>"
            f"<div class='io'><b>request</b><pre>{e(call.request) or '(empty)'}</pre>"
            f"<b>{'last ' if call.count > 1 else ''}response</b>"
            f"<pre>{e(call.response) or '(empty)'}</pre></div></details></td>"
            f"<td>{e(call.status)}</td><td class='n'>{call.duration_s:.2f} s</td></tr>"
        )
    return (
        f"<details class='calls'><summary>Requests to the stack: {http} HTTP, {aws} AWS"
        f"{more}{note}</summary><table><thead><tr><th>at</th><th></th><th>call</th>"
        f"<th>status</th><th>time</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "<p class='hint'>A call repeated by a poll is one row with a count (its last "
        "response shown). "
        "Secrets and credentials are never recorded.</p></details>"
    )


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1150px;color:#222;
padding:0 1em}
h1{margin:.2em 0}h2{font-size:1.15em}
.banner{padding:.7em 1em;margin:.6em 0;border-radius:4px}
.banner.running{background:#fff8e1;border:1px solid #ffca28}
.banner.incomplete{background:#fdecea;border:1px solid #e57373}
.banner pre.collect{font-size:.8em;white-space:pre-wrap;max-height:12em;overflow:auto}
.totals{font-size:1.05em}.verdict{font-weight:bold;padding:.15em .6em;border-radius:3px;
color:#fff;background:#2e7d32}.verdict.failed,.verdict.incomplete,.verdict.not-finished,
.verdict.nothing-ran{background:#c62828}.verdict.incomplete,.verdict.not-finished,
.verdict.nothing-ran{background:#ef6c00}
.chip{display:inline-block;padding:0 .5em;border-radius:1em;border:1px solid #ccc;
font-size:.9em}.chip.failed{border-color:#c62828;color:#c62828}
.chip.passed{border-color:#2e7d32;color:#2e7d32}.time{color:#666;font-size:.9em}
nav a{margin-right:1.2em}
.overview table{border-collapse:collapse;margin:.5em 0}
.overview th,.overview td{border-bottom:1px solid #e4e4e4;padding:.15em .6em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.zero{color:#bbb}
tr.failed td:first-child{border-left:4px solid #c62828}
tr.passed td:first-child{border-left:4px solid #2e7d32}
td.failed:not(.zero){color:#c62828;font-weight:bold}
.failures li{margin:.3em 0}.failures code{color:#c62828;font-size:.85em}
.env{display:flex;flex-wrap:wrap;gap:0 2em}.env>div{flex:1 1 420px}
.env th{color:#555;font-weight:normal}
.env td{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}
section.feature{border-left:6px solid #2e7d32;padding:.2em 1em;margin:1.5em 0;background:#fafafa}
section.feature.failed{border-color:#c62828}
h2 small,summary small{color:#777;font-weight:normal;font-size:.8em}
.desc{white-space:pre-wrap;color:#444}
details.scenario{margin:.4em 0;padding:.3em .6em;background:#fff;border:1px solid #ddd}
details.scenario.failed{border-color:#e57373}
summary{cursor:pointer}.badge{display:inline-block;min-width:4.5em;text-align:center;
border-radius:3px;padding:0 .3em;color:#fff;background:#2e7d32;font-size:.85em}
.failed>summary .badge{background:#c62828}.skipped>summary .badge{background:#9e9e9e}
.not-run>summary .badge{background:#fff;color:#777;border:1px dashed #999}
a.link{color:#aaa;text-decoration:none;margin-left:.3em}
.tag{color:#6a1b9a;font-size:.8em}li.failed{color:#c62828;font-weight:bold}
li.not-run,li.skipped{color:#999}li.not-run small,li.skipped small{font-style:italic}
pre{white-space:pre-wrap;overflow:auto;font-size:.85em}
pre.message{background:#fdecea;border-left:4px solid #c62828;padding:.6em;font-size:.9em;
margin:.4em 0}
details.trace pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;max-height:30em}
table.example{font-size:.85em;border-collapse:collapse;margin:.3em 0}
table.example th{color:#555;font-weight:normal;text-align:left;padding-right:1em}
details.calls{margin:.4em 0}details.calls>summary{color:#555;font-size:.9em}
details.calls table{border-collapse:collapse;width:100%;font-size:.85em}
details.calls td,details.calls th{border-bottom:1px solid #eee;padding:.1em .4em;
vertical-align:top;text-align:left}
tr.bad td,.bad{color:#c62828}.repeat{color:#1565c0;font-weight:bold}
.io pre{background:#f7f7f7;border:1px solid #e4e4e4;padding:.4em;max-height:18em}
.hint{color:#777;font-size:.8em}.skip{color:#666}
.filter-note{display:none;background:#e3f2fd;padding:.4em 1em}
#failed:target~.filter-note{display:block}
#failed:target~main section.feature.passed,
#failed:target~main details.scenario:not(.failed){display:none}
"""
