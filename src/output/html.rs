//! `relayscan report`: one self-contained HTML file (inline CSS, script and
//! SVG; nothing fetched) or a Markdown page for a CI job summary, from scan
//! results. Every piece of server text goes through [`esc`]: control and
//! bidi characters made visible, then HTML-escaped. The page's
//! Content-Security-Policy allows only its own style and script (by hash)
//! and no network at all, so even text that escaped escaping could neither
//! run nor load anything.

use super::diff::{self, Change, ChangeKind};
use super::results::{HostKey, Results};
use super::sanitize::terminal;
use super::schema::{Meta, ResultLine};
use crate::relay::remediation::advice;
use crate::relay::{fingerprint::Software, FindingId, Status};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// What a report is made of.
pub struct Report<'a> {
    pub results: &'a Results,
    /// The changes since `--baseline`, when one was given, with its name.
    pub baseline: Option<(&'a str, &'a [Change])>,
    /// When the report was made, RFC 3339.
    pub generated: String,
}

/// Text for HTML (element content and quoted attribute values): control
/// and bidi characters shown as escapes, then `& < > " '` as entities.
pub fn esc(s: &str) -> String {
    let clean = terminal(s);
    let mut out = String::with_capacity(clean.len() + 8);
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1200px;padding:1em 2em}
h1{font-size:1.6em;margin:.2em 0}h2{border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.6em}
.muted{color:var(--muted)}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--alt);padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid var(--line);border-radius:6px;padding:.5em 1em;min-width:8em}
.card b{display:block;font-size:1.8em}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;border:1px solid var(--line);white-space:nowrap}
.v-open-relay,.v-possible-relay{background:#ffebe9;border-color:#cf222e;color:#82071e}
.v-closed,.v-auth-required{background:#dafbe1;border-color:#2da44e;color:#116329}
.v-temp-fail,.v-tls-required,.v-inconclusive,.v-rejected{background:#fff8c5;border-color:#bf8700;color:#6b4a00}
.v-not-smtp,.v-refused,.v-timeout,.v-error,.v-excluded{background:#eaeef2;border-color:#8c959f;color:#424a53}
.relay{border:1px solid #cf222e;border-left-width:6px;border-radius:6px;padding:.2em 1em 1em;margin:1em 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.5em 0}dt{color:var(--muted)}dd{margin:0;word-break:break-word}
table{border-collapse:collapse;width:100%}#verdicts{width:auto;min-width:22em}th,td{border-bottom:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top}
#hosts th{cursor:pointer;user-select:none;background:var(--alt);position:sticky;top:0}
#hosts th[aria-sort=ascending]::after{content:" ▲"}#hosts th[aria-sort=descending]::after{content:" ▼"}
#hosts td.text{max-width:32em;word-break:break-word}
.controls{display:flex;gap:1em;align-items:center;margin:.5em 0;flex-wrap:wrap}
input,select{font:inherit;padding:.2em .4em}
svg text{font:12px system-ui,sans-serif}
"#;

/// The page's script: sort and filter the host table, with the state in
/// the URL fragment (`#sort=verdict&dir=desc&q=postfix&verdict=closed`) so
/// a view can be shared as a link.
const SCRIPT: &str = r##"
(function(){
"use strict";
var table=document.getElementById("hosts");
if(!table){return;}
var body=table.tBodies[0];
var heads=Array.prototype.slice.call(table.tHead.rows[0].cells);
var rows=Array.prototype.slice.call(body.rows);
var q=document.getElementById("filter");
var vf=document.getElementById("verdict-filter");
var shown=document.getElementById("shown");
var state={sort:"",dir:"asc",q:"",verdict:""};
function key(row,i){var c=row.cells[i];var k=c.getAttribute("data-key");return k===null?c.textContent.trim().toLowerCase():k;}
function col(name){for(var i=0;i<heads.length;i++){if(heads[i].getAttribute("data-col")===name){return i;}}return -1;}
function apply(){
  var i=col(state.sort);
  var sorted=rows;
  if(i>=0){
    var num=heads[i].getAttribute("data-type")==="num";
    var sign=state.dir==="desc"?-1:1;
    var keyed=rows.map(function(r,n){var k=key(r,i);return {r:r,n:n,k:num?(parseFloat(k)||0):k};});
    keyed.sort(function(a,b){
      var d=num?a.k-b.k:(a.k<b.k?-1:a.k>b.k?1:0);
      return d===0?a.n-b.n:d*sign;
    });
    sorted=keyed.map(function(x){return x.r;});
  }
  heads.forEach(function(h,j){if(j===i){h.setAttribute("aria-sort",state.dir==="desc"?"descending":"ascending");}else{h.removeAttribute("aria-sort");}});
  var needle=state.q.toLowerCase();var n=0;
  var frag=document.createDocumentFragment();
  sorted.forEach(function(r){
    var ok=(!state.verdict||r.getAttribute("data-verdict")===state.verdict)&&(!needle||r.textContent.toLowerCase().indexOf(needle)>=0);
    if(ok){r.removeAttribute("hidden");n++;}else{r.setAttribute("hidden","");}
    frag.appendChild(r);
  });
  body.appendChild(frag);
  shown.textContent=n+" of "+rows.length+" targets shown";
  q.value=state.q;vf.value=state.verdict;
}
function read(){
  var s={sort:"",dir:"asc",q:"",verdict:""};
  location.hash.replace(/^#/,"").split("&").forEach(function(p){
    var kv=p.split("=");if(kv.length!==2){return;}
    var k=decodeURIComponent(kv[0]),v=decodeURIComponent(kv[1].replace(/\+/g," "));
    if(Object.prototype.hasOwnProperty.call(s,k)){s[k]=v;}
  });
  if(s.dir!=="desc"){s.dir="asc";}
  state=s;
}
function write(){
  var parts=[];
  ["sort","dir","q","verdict"].forEach(function(k){if(state[k]&&!(k==="dir"&&!state.sort)){parts.push(k+"="+encodeURIComponent(state[k]));}});
  var h=parts.length?"#"+parts.join("&"):" ";
  try{history.replaceState(null,"",h===" "?location.pathname+location.search:h);}catch(e){location.hash=h;}
}
heads.forEach(function(h){
  h.addEventListener("click",function(){
    var name=h.getAttribute("data-col");
    if(state.sort===name){state.dir=state.dir==="asc"?"desc":"asc";}else{state.sort=name;state.dir="asc";}
    write();apply();
  });
});
q.addEventListener("input",function(){state.q=q.value;write();apply();});
vf.addEventListener("change",function(){state.verdict=vf.value;write();apply();});
window.addEventListener("hashchange",function(){read();apply();});
read();apply();
document.body.setAttribute("data-ready","1");
})();
"##;

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Where a verdict sorts: relays first, then the order of [`Status::ALL`].
fn rank(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(99)
}

/// A key that sorts targets by address, then port: IPv4 before IPv6,
/// numbers zero-padded; names after addresses.
fn address_key(r: &ResultLine) -> String {
    match HostKey::of(r) {
        HostKey::Addr(std::net::IpAddr::V4(ip), port) => {
            let o = ip.octets();
            format!("4{:03}{:03}{:03}{:03}:{port:05}", o[0], o[1], o[2], o[3])
        }
        HostKey::Addr(std::net::IpAddr::V6(ip), port) => {
            let hex: String = ip.octets().iter().map(|b| format!("{b:02x}")).collect();
            format!("6{hex}:{port:05}")
        }
        HostKey::Name(name, port) => format!("n{}:{port:05}", name.to_lowercase()),
    }
}

fn software_label(r: &ResultLine) -> String {
    match (r.software, &r.software_version) {
        (Some(s), Some(v)) => format!("{} {v}", s.name()),
        (Some(s), None) => s.name().to_string(),
        _ => String::new(),
    }
}

/// The fixes a relay's record carries; for a CSV record (which has none),
/// the advice for its verdict on its software.
fn fixes(r: &ResultLine) -> Vec<(String, String)> {
    if !r.remediation.is_empty() {
        return r
            .remediation
            .iter()
            .map(|x| (x.finding.as_str().to_string(), x.fix.clone()))
            .collect();
    }
    let finding = if r.verdict == Status::OpenRelay {
        FindingId::OpenRelay
    } else {
        FindingId::PossibleRelay
    };
    advice(finding, r.software.unwrap_or(Software::Unknown))
        .map(|fix| vec![(finding.as_str().to_string(), fix.to_string())])
        .unwrap_or_default()
}

/// The deciding test as it ran, from the record's test list.
fn deciding(r: &ResultLine) -> Option<&super::schema::TestLine> {
    let id = r.deciding_test.as_deref()?;
    r.tests
        .iter()
        .flatten()
        .chain(r.controls.iter().flatten())
        .find(|t| t.id == id)
}

/// The dialogue a reader needs: the start of the session from the
/// transcript (connect, greeting, EHLO, STARTTLS; long multi-line replies
/// shortened) up to the first MAIL FROM, then the deciding test's MAIL FROM
/// and RCPT TO with the replies its record holds. Commands are pipelined
/// (RFC 2920), so on the wire the replies come later in a batch; the
/// record pairs each with its command. Without a transcript only the test.
/// The second value says where the lines came from.
fn excerpt(r: &ResultLine) -> (Vec<String>, &'static str) {
    let mut out = Vec::new();
    let transcript = r.transcript.as_ref().and_then(Value::as_array);
    if let Some(lines) = transcript {
        let mut run = 0usize;
        let mut hidden = 0usize;
        for l in lines {
            let dir = l["dir"].as_str().unwrap_or("?");
            let text = l["line"].as_str().unwrap_or("");
            if dir == "C" && text.to_ascii_uppercase().starts_with("MAIL FROM") {
                break;
            }
            // A multi-line reply (`250-…`) shows its first two lines.
            if dir == "S" {
                run += 1;
                let last = text.as_bytes().get(3) != Some(&b'-');
                if run > 2 && !last {
                    hidden += 1;
                    continue;
                }
            } else {
                run = 0;
            }
            if hidden > 0 {
                out.push(format!("S: … ({hidden} more lines)"));
                hidden = 0;
            }
            out.push(format!("{dir}: {text}"));
            if dir == "S" && text.as_bytes().get(3) != Some(&b'-') {
                run = 0;
            }
            if out.len() >= 24 {
                out.push("…".into());
                break;
            }
        }
    }
    let Some(t) = deciding(r) else {
        return match transcript {
            Some(_) if !out.is_empty() => (out, "transcript"),
            _ => (Vec::new(), ""),
        };
    };
    if !out.is_empty() {
        let on = if t.connection > 0 {
            format!(", on connection {}", t.connection)
        } else {
            String::new()
        };
        out.push(format!("… (the deciding test, {}{on})", t.id));
    }
    if let Some(from) = &t.mail_from {
        out.push(format!("C: MAIL FROM:{from}"));
    }
    if let Some(reply) = t.replies.first() {
        out.push(format!("S: {reply}"));
    }
    if let Some(to) = &t.rcpt_to {
        out.push(format!("C: RCPT TO:{to}"));
    }
    for reply in t.replies.iter().skip(1) {
        out.push(format!("S: {reply}"));
    }
    let source = if transcript.is_some() {
        "transcript and the test record"
    } else {
        "test record"
    };
    (out, source)
}

/// The vantage warnings, grouped: the same warning for many targets (with
/// each target's address in it) once, with the targets it applies to.
fn vantage_groups(results: &Results) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in &results.hosts {
        let target = HostKey::of(r).to_string();
        for w in r.vantage["warnings"].as_array().into_iter().flatten() {
            let Some(w) = w.as_str() else { continue };
            let general = match r.ip {
                Some(ip) => w.replace(&ip.to_string(), "…"),
                None => w.to_string(),
            };
            match groups.iter_mut().find(|(g, _)| *g == general) {
                Some((_, list)) => list.push(target.clone()),
                None => groups.push((general, vec![target.clone()])),
            }
        }
    }
    groups
}

fn chart(counts: &[(Status, usize)], total: usize) -> String {
    let bar_h = 22;
    let label_w = 120.0;
    let width = 640.0;
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let height = counts.len() * (bar_h + 6) + 8;
    let mut svg = format!(
        "<svg id=\"chart\" role=\"img\" aria-label=\"targets per verdict\" \
         xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\"><title>{total} targets per verdict</title>"
    );
    for (i, (status, n)) in counts.iter().enumerate() {
        let y = 4 + i * (bar_h + 6);
        let w = ((width - label_w - 60.0) * (*n as f64) / max).max(2.0);
        let fill = match status {
            Status::OpenRelay | Status::PossibleRelay => "#cf222e",
            Status::Closed | Status::AuthRequired => "#2da44e",
            Status::TempFail | Status::TlsRequired | Status::Inconclusive | Status::Rejected => {
                "#bf8700"
            }
            _ => "#8c959f",
        };
        let _ = write!(
            svg,
            "<g class=\"bar\" data-verdict=\"{v}\"><text x=\"0\" y=\"{ty}\">{v}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{fill}\"></rect>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{n}</text></g>",
            v = status.as_str(),
            ty = y + 16,
            tx = label_w + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The HTML page.
pub fn html(report: &Report) -> String {
    let results = report.results;
    let counts = results.counts();
    let total = results.hosts.len();
    let relays: Vec<&ResultLine> = {
        let mut r: Vec<&ResultLine> = results.relays().collect();
        r.sort_by_key(|h| (rank(h.verdict), address_key(h)));
        r
    };
    let untested = results
        .hosts
        .iter()
        .filter(|h| h.verdict.is_untested())
        .count();
    let mut o = String::with_capacity(64 * 1024 + total * 600);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src {}; script-src {}; img-src data:; form-action 'none'; base-uri 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"relayscan {}\">\n\
         <title>relayscan report: {} relay{} in {} target{}</title>\n<style>{STYLE}</style></head>\n<body>\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        env!("CARGO_PKG_VERSION"),
        relays.len(),
        if relays.len() == 1 { "" } else { "s" },
        total,
        if total == 1 { "" } else { "s" },
    );
    let files: Vec<String> = results
        .files
        .iter()
        .map(|p| format!("<code>{}</code>", esc(&p.display().to_string())))
        .collect();
    let _ = writeln!(
        o,
        "<header><h1>relayscan report</h1><p class=\"muted\">{} · generated {} by relayscan {}</p></header>",
        files.join(", "),
        esc(&report.generated),
        env!("CARGO_PKG_VERSION")
    );

    // Overview.
    let _ = write!(
        o,
        "<section id=\"overview\"><h2>Overview</h2>\n<div class=\"cards\">\
         <div class=\"card\"><b id=\"count-total\">{total}</b>targets</div>\
         <div class=\"card v-open-relay\"><b id=\"count-relays\">{}</b>relays</div>\
         <div class=\"card\"><b id=\"count-untested\">{untested}</b>not tested</div>",
        relays.len()
    );
    if let Some((_, changes)) = report.baseline {
        let new = changes
            .iter()
            .filter(|c| c.change == ChangeKind::NewRelay)
            .count();
        let _ = write!(
            o,
            "<div class=\"card\"><b id=\"count-new-relays\">{new}</b>new relays</div>"
        );
    }
    o.push_str("</div>\n<table id=\"verdicts\"><thead><tr><th>Verdict</th><th>Targets</th></tr></thead><tbody>");
    for (s, n) in &counts {
        let _ = write!(
            o,
            "<tr data-verdict=\"{v}\"><td><span class=\"badge v-{v}\">{v}</span></td><td>{n}</td></tr>",
            v = s.as_str()
        );
    }
    o.push_str("</tbody></table>\n");
    o.push_str(&chart(&counts, total));
    o.push_str("</section>\n");

    // Changes since the baseline.
    if let Some((name, changes)) = report.baseline {
        let _ = write!(
            o,
            "<section id=\"changes\"><h2>Changes since <code>{}</code></h2>\n<p id=\"changes-summary\">{}</p>\n",
            esc(name),
            esc(&diff::summary(changes))
        );
        if !changes.is_empty() {
            o.push_str("<table><thead><tr><th>Change</th><th>Target</th><th>Host name</th><th>Old</th><th>New</th><th>Software</th><th>Deciding reply</th></tr></thead><tbody>\n");
            for c in changes {
                let badge = |v: Option<Status>| {
                    v.map(|v| format!("<span class=\"badge v-{s}\">{s}</span>", s = v.as_str()))
                        .unwrap_or_else(|| "–".into())
                };
                let software = if c.old_software == c.new_software {
                    esc(c.new_software.as_deref().unwrap_or(""))
                } else {
                    format!(
                        "{} → {}",
                        esc(c.old_software.as_deref().unwrap_or("–")),
                        esc(c.new_software.as_deref().unwrap_or("–"))
                    )
                };
                let reply = match (&c.deciding_test, &c.reply) {
                    (Some(t), Some(r)) => format!("{}: {}", esc(t), esc(r)),
                    (None, Some(r)) => esc(r),
                    _ => String::new(),
                };
                let _ = writeln!(
                    o,
                    "<tr class=\"change\" data-change=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{software}</td><td class=\"text\">{reply}</td></tr>",
                    c.change.as_str(),
                    c.change.as_str(),
                    esc(&c.target),
                    esc(c.hostname.as_deref().unwrap_or("")),
                    badge(c.old_verdict),
                    badge(c.new_verdict),
                );
            }
            o.push_str("</tbody></table>\n");
        }
        o.push_str("</section>\n");
    }

    // The relays, with their evidence and the fix.
    let _ = writeln!(
        o,
        "<section id=\"relays\"><h2>Relays ({})</h2>",
        relays.len()
    );
    if relays.is_empty() {
        o.push_str("<p>No target relayed mail for a foreign domain.</p>\n");
    }
    for r in &relays {
        relay_card(&mut o, r);
    }
    o.push_str("</section>\n");

    // Every target.
    hosts_table(&mut o, results, &counts);

    // Settings and vantage point.
    settings(&mut o, &results.metas);
    let groups = vantage_groups(results);
    if !groups.is_empty() {
        o.push_str("<section id=\"vantage\"><h2>Vantage point</h2>\n<p>Where relayscan probed from changes what a server allows: these warnings apply to the verdicts below them.</p>\n<ul>\n");
        for (warning, targets) in &groups {
            let shown: Vec<String> = targets.iter().take(20).map(|t| esc(t)).collect();
            let more = if targets.len() > 20 {
                format!(" and {} more", targets.len() - 20)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "<li class=\"warning\">{} <span class=\"muted\">({} target{}: {}{more})</span></li>",
                esc(warning),
                targets.len(),
                if targets.len() == 1 { "" } else { "s" },
                shown.join(", ")
            );
        }
        o.push_str("</ul></section>\n");
    }
    let _ = write!(
        o,
        "<footer><p class=\"muted\">Made by relayscan {}. Server text is shown escaped: control characters as \\xNN.</p></footer>\n<script>{SCRIPT}</script>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    o
}

fn relay_card(o: &mut String, r: &ResultLine) {
    let target = HostKey::of(r).to_string();
    let v = r.verdict.as_str();
    let _ = write!(
        o,
        "<article class=\"relay\" data-target=\"{t}\"><h3><code>{t}</code> {h} <span class=\"badge v-{v}\">{v}</span></h3>\n<dl>",
        t = esc(&target),
        h = r.hostname.as_deref().map(esc).unwrap_or_default(),
    );
    let mut row = |name: &str, value: String| {
        if !value.is_empty() {
            let _ = write!(o, "<dt>{name}</dt><dd>{value}</dd>");
        }
    };
    row("Why", esc(&r.reason));
    row(
        "Confidence",
        r.confidence
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
    );
    row("Software", esc(&software_label(r)));
    let test = deciding(r);
    row(
        "Deciding test",
        match (r.deciding_test.as_deref(), test) {
            (Some(id), Some(t)) => format!(
                "<code>{}</code> MAIL FROM:<code>{}</code> RCPT TO:<code>{}</code>",
                esc(id),
                esc(t.mail_from.as_deref().unwrap_or("")),
                esc(t.rcpt_to.as_deref().unwrap_or(""))
            ),
            (Some(id), None) => format!("<code>{}</code>", esc(id)),
            _ => String::new(),
        },
    );
    row(
        "Reply",
        r.reply
            .as_deref()
            .map(|x| format!("<code>{}</code>", esc(x)))
            .unwrap_or_default(),
    );
    row("Accepted tests", esc(&r.accepted.join(" ")));
    row(
        "Banner",
        r.banner
            .as_deref()
            .map(|x| format!("<code>{}</code>", esc(x)))
            .unwrap_or_default(),
    );
    for note in &r.notes {
        row("Note", esc(note));
    }
    o.push_str("</dl>\n");
    let (lines, source) = excerpt(r);
    if !lines.is_empty() {
        let body: Vec<String> = lines.iter().map(|l| esc(l)).collect();
        let _ = writeln!(
            o,
            "<details open><summary>Dialogue (from the {source})</summary><pre class=\"excerpt\">{}</pre></details>",
            body.join("\n")
        );
    }
    let fixes = fixes(r);
    if !fixes.is_empty() {
        o.push_str("<h4>How to fix it</h4><ul class=\"fixes\">");
        for (finding, fix) in fixes {
            let _ = write!(o, "<li><b>{}</b>: {}</li>", esc(&finding), esc(&fix));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</article>\n");
}

fn hosts_table(o: &mut String, results: &Results, counts: &[(Status, usize)]) {
    let total = results.hosts.len();
    let _ = write!(
        o,
        "<section id=\"all\"><h2>All targets ({total})</h2>\n<div class=\"controls\">\
         <label>Filter <input id=\"filter\" type=\"search\" placeholder=\"text in any column\"></label>\
         <label>Verdict <select id=\"verdict-filter\"><option value=\"\">all</option>"
    );
    for (s, n) in counts {
        let _ = write!(
            o,
            "<option value=\"{v}\">{v} ({n})</option>",
            v = s.as_str()
        );
    }
    let _ = writeln!(
        o,
        "</select></label><span id=\"shown\">{total} of {total} targets shown</span>\
         <span class=\"muted\">Click a column to sort; the view is kept in the page's address.</span></div>"
    );
    o.push_str(
        "<table id=\"hosts\"><thead><tr>\
         <th data-col=\"target\">Target</th><th data-col=\"hostname\">Host name</th>\
         <th data-col=\"verdict\">Verdict</th><th data-col=\"confidence\">Confidence</th>\
         <th data-col=\"software\">Software</th><th data-col=\"accepted\">Accepted</th>\
         <th data-col=\"starttls\">STARTTLS</th><th data-col=\"reply\">Reply or error</th>\
         <th data-col=\"ms\" data-type=\"num\">ms</th></tr></thead>\n<tbody>\n",
    );
    let mut hosts: Vec<&ResultLine> = results.hosts.iter().collect();
    hosts.sort_by_key(|h| (rank(h.verdict), address_key(h)));
    for r in hosts {
        let v = r.verdict.as_str();
        let reply = r
            .reply
            .as_deref()
            .or(r.error.as_deref())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<tr data-verdict=\"{v}\"><td data-key=\"{ak}\"><code>{t}</code></td><td>{h}</td>\
             <td data-key=\"{rk:02}\"><span class=\"badge v-{v}\">{v}</span></td><td>{c}</td><td>{s}</td>\
             <td>{a}</td><td>{tls}</td><td class=\"text\">{reply}</td><td data-key=\"{ms}\">{ms}</td></tr>",
            ak = esc(&address_key(r)),
            t = esc(&HostKey::of(r).to_string()),
            h = esc(r.hostname.as_deref().unwrap_or("")),
            rk = rank(r.verdict),
            c = r.confidence.map(|c| c.as_str()).unwrap_or(""),
            s = esc(&software_label(r)),
            a = esc(&r.accepted.join(" ")),
            tls = esc(r.starttls.as_deref().unwrap_or("")),
            reply = esc(reply),
            ms = r.duration_ms,
        );
    }
    o.push_str("</tbody></table></section>\n");
}

fn settings(o: &mut String, metas: &[Meta]) {
    o.push_str("<section id=\"settings\"><h2>Scan settings</h2>\n");
    if metas.is_empty() {
        o.push_str("<p>The results carry no settings (CSV input has no meta line).</p>");
    }
    for meta in metas {
        o.push_str("<dl class=\"meta\">");
        let mut row = |name: &str, value: &str| {
            if !value.is_empty() {
                let _ = write!(o, "<dt>{name}</dt><dd><code>{}</code></dd>", esc(value));
            }
        };
        match meta {
            Meta::Scan(m) => {
                row("Command", &shell_words(&m.argv));
                row("relayscan", &m.version);
                row("Started", &m.started);
                row(
                    "Ports",
                    &m.ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                row("Tests", &m.tests.join(" "));
                row("EHLO name", &m.ehlo);
                row("Foreign domain", &m.foreign_domain);
                row("STARTTLS", &m.starttls);
                row("Implicit TLS", if m.implicit_tls { "yes" } else { "" });
                row("Scope", m.scope.as_deref().unwrap_or(""));
                row("Order", m.order.as_str());
                row("Seed", &m.seed);
                row("Shard", &m.shard.to_string());
                row("Jobs", &m.jobs);
                row("Resumed from", m.resumed_from.as_deref().unwrap_or(""));
                row("AUTH user", m.auth_user.as_deref().unwrap_or(""));
                row("Config hash", &m.config_hash);
            }
            Meta::Merge(m) => {
                row("Merged", &m.merged.join(" "));
                row(
                    "Shards",
                    &m.shards
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                row("relayscan", &m.version);
                row("Config hash", m.config_hash.as_deref().unwrap_or(""));
            }
        }
        o.push_str("</dl>\n");
    }
    o.push_str("</section>\n");
}

/// A command line as a reader would type it: arguments with spaces or
/// shell characters in single quotes.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Markdown page: a CI job summary (GitHub renders it; it also reads
/// as text). Server text only in code spans ([`diff::md_code`]).
pub fn markdown(report: &Report) -> String {
    use diff::md_code;
    let results = report.results;
    let counts = results.counts();
    let mut relays: Vec<&ResultLine> = results.relays().collect();
    relays.sort_by_key(|h| (rank(h.verdict), address_key(h)));
    let mut o = String::from("## relayscan report\n\n");
    let untested = results
        .hosts
        .iter()
        .filter(|h| h.verdict.is_untested())
        .count();
    let _ = writeln!(
        o,
        "**{} relay{}** in {} target{} ({untested} not tested).\n",
        relays.len(),
        if relays.len() == 1 { "" } else { "s" },
        results.hosts.len(),
        if results.hosts.len() == 1 { "" } else { "s" },
    );
    o.push_str("| Verdict | Targets |\n|---|---:|\n");
    for (s, n) in &counts {
        let _ = writeln!(o, "| {} | {n} |", s.as_str());
    }
    if let Some((name, changes)) = report.baseline {
        let _ = writeln!(
            o,
            "\n### Changes since {}\n\n{}\n",
            md_code(name),
            diff::summary(changes)
        );
        if !changes.is_empty() {
            o.push_str("| Change | Target | Old | New |\n|---|---|---|---|\n");
            for c in changes {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    c.change.as_str(),
                    md_code(&c.target),
                    c.old_verdict.map_or("-", Status::as_str),
                    c.new_verdict.map_or("-", Status::as_str)
                );
            }
        }
    }
    if !relays.is_empty() {
        o.push_str("\n### Relays\n\n| Target | Host name | Verdict | Software | Test | Reply |\n|---|---|---|---|---|---|\n");
        for r in &relays {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md_code(&HostKey::of(r).to_string()),
                md_code(r.hostname.as_deref().unwrap_or("")),
                r.verdict.as_str(),
                md_code(&software_label(r)),
                r.deciding_test.as_deref().unwrap_or(""),
                md_code(r.reply.as_deref().unwrap_or(""))
            );
        }
        o.push_str("\n### How to fix them\n\n");
        for r in &relays {
            for (finding, fix) in fixes(r)
                .into_iter()
                .filter(|(f, _)| f == "open-relay" || f == "possible-relay")
            {
                let _ = writeln!(
                    o,
                    "- {} ({finding}): {}",
                    md_code(&HostKey::of(r).to_string()),
                    md_text(&fix)
                );
            }
        }
    }
    let groups = vantage_groups(results);
    if !groups.is_empty() {
        o.push_str("\n### Vantage point\n\n");
        for (warning, targets) in &groups {
            let _ = writeln!(
                o,
                "- {} ({} target{})",
                md_code(warning),
                targets.len(),
                if targets.len() == 1 { "" } else { "s" }
            );
        }
    }
    for meta in &results.metas {
        if let Meta::Scan(m) = meta {
            let _ = writeln!(
                o,
                "\n<sub>relayscan {} · started {} · {}</sub>",
                md_text(&m.version),
                md_text(&m.started),
                md_code(&shell_words(&m.argv))
            );
        }
    }
    o
}

/// Our own prose (remediation text, which quotes configuration) for
/// Markdown: characters that would start HTML or a link escaped.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in terminal(s).chars() {
        if matches!(
            c,
            '<' | '>' | '[' | ']' | '*' | '_' | '|' | '\\' | '#' | '`'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}[31mb\u{202e}c\0"), "a\\x1B[31mb\\u{202E}c\\x00");
    }

    #[test]
    fn style_and_script_hashes_match_the_policy() {
        let results = Results::default();
        let page = html(&Report {
            results: &results,
            baseline: None,
            generated: "now".into(),
        });
        assert!(page.contains(&format!("script-src {}", csp_hash(SCRIPT))));
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.contains("default-src 'none'"));
        // Nothing to fetch: no src or href attribute at all.
        assert!(!page.contains(" src=") && !page.contains("href="));
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        let argv = ["relayscan", "scan", "a b", "it's", "-p", "25"].map(String::from);
        assert_eq!(shell_words(&argv), "relayscan scan 'a b' 'it'\\''s' -p 25");
    }
}
