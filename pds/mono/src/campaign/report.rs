//! The campaign's report: a Markdown file, an SVG plot (written by hand: survival per fault kind
//! and per PD, recovery-time distributions, isolated beside monolithic), the per-run CSV, and
//! the one summary line.

use super::catalogue::{self, Kind};
use super::judge::{Campaign, RunResult, Verdict};
use super::session::Composition;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Survivors among some runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Runs judged.
    pub runs: usize,
    /// Of which survived.
    pub survived: usize,
    /// Of which clients saw errors.
    pub visible: usize,
    /// Recovery times (µs) of the surviving runs with an outage, ascending.
    pub recoveries: Vec<u64>,
}

impl Tally {
    fn of<'a>(results: impl Iterator<Item = &'a RunResult>) -> Self {
        let mut t = Self::default();
        for r in results {
            t.runs += 1;
            t.survived += usize::from(r.survived());
            t.visible += usize::from(r.visible);
            if let (true, Some(us)) = (r.survived(), r.recovery_us) {
                t.recoveries.push(us);
            }
        }
        t.recoveries.sort_unstable();
        t
    }

    /// Survival in percent (0 for no runs: nothing measured is no success).
    pub fn percent(&self) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        // CAST: run counts are far below 2^52.
        100.0 * self.survived as f64 / self.runs as f64
    }

    /// The `q`-quantile of the recovery times in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.recoveries.len();
        if n == 0 {
            return None;
        }
        // CAST: an index into a non-empty vector, rounded down and clamped.
        let i = ((n - 1) as f64 * q.clamp(0.0, 1.0)) as usize;
        // CAST: µs to ms for display.
        self.recoveries.get(i).map(|&us| us as f64 / 1000.0)
    }
}

/// The runs of `comp` matching `pick`.
pub fn tally(c: &Campaign, comp: Composition, pick: impl Fn(&RunResult) -> bool) -> Tally {
    Tally::of(
        c.results
            .iter()
            .filter(|r| r.composition == comp && pick(r)),
    )
}

/// Leaked pages (DMA + VRAM) over a composition's sessions.
pub fn leaked_pages(c: &Campaign, comp: Composition) -> u64 {
    c.sessions
        .iter()
        .filter(|s| s.composition == comp)
        .map(|s| s.leaked_dma_pages + s.leaked_vram_pages)
        .sum()
}

/// Client buffers whose contents changed that should not have, over a composition's runs: jobs
/// that copied wrong bytes and canary pages that changed.
pub fn corrupted_buffers(c: &Campaign, comp: Composition) -> u64 {
    c.results
        .iter()
        .filter(|r| r.composition == comp)
        .map(|r| r.corrupt + r.wrong)
        .sum()
}

/// The campaign's one summary line; leaks and corruption are the isolated composition's (the
/// report has both). A composition that did not run (seL4: no monolithic image) reads `n/a`.
pub fn summary_line(c: &Campaign) -> String {
    let iso = tally(c, Composition::Isolated, |_| true);
    let mono = tally(c, Composition::Monolithic, |_| true);
    let ran = |comp: Composition| {
        c.sessions.iter().any(|s| s.composition == comp)
            || c.results.iter().any(|r| r.composition == comp)
    };
    let percent = |comp: Composition, t: &Tally| {
        if ran(comp) {
            format!("{:.1}%", t.percent())
        } else {
            "n/a".to_owned()
        }
    };
    format!(
        "faults runs {} isolated-survival {} monolithic-survival {} leaked-pages {} corrupted-buffers {}",
        iso.runs.max(mono.runs),
        percent(Composition::Isolated, &iso),
        percent(Composition::Monolithic, &mono),
        leaked_pages(c, Composition::Isolated),
        corrupted_buffers(c, Composition::Isolated)
    )
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

fn row(t: &Tally) -> String {
    if t.runs == 0 {
        return "– | ".into();
    }
    format!("{}/{} ({:.1}%) | ", t.survived, t.runs, t.percent())
}

/// The Markdown report. `meta` are extra `(key, value)` lines for the configuration table (the
/// command, the commit).
pub fn markdown(c: &Campaign, meta: &[(String, String)]) -> String {
    let cfg = &c.config;
    let mut m = String::new();
    let _ = writeln!(m, "# Isolation, measured: fault-injection campaign\n");
    let _ = writeln!(m, "```text\n{}\n```\n", summary_line(c));
    let _ = writeln!(
        m,
        "Every run injects one fault into one PD while the demo clients' workload runs, in both \
         compositions built from the same crates: **isolated** (hosted runtime, one process per PD, \
         the supervisor restarts a faulted driver) and **monolithic** (every PD in one process, a \
         PPC is a function call). A run *survived* when, within its window, both clients were \
         served again, clients that do not depend on the faulted PD saw no error, no client buffer \
         changed, and no PD died but the faulted one. *Recovery* is the time from the injected fault \
         until every client that saw an error was served again (surviving runs; a hang's includes \
         the watchdog's deadline). Leaks compare what the PDs that report usage \
         (`Handler::usage`) hold after a session with what they held before its first fault; \
         corrupted buffers are client jobs that copied wrong bytes plus canary pages that \
         changed.\n"
    );
    let _ = writeln!(m, "![survival and recovery per fault kind](survival.svg)\n");
    let _ = writeln!(m, "## Configuration (to reproduce)\n");
    let _ = writeln!(m, "| setting | value |\n|---|---|");
    let mut rows: Vec<(String, String)> = vec![
        ("runs per composition".into(), cfg.runs.to_string()),
        ("seed".into(), cfg.seed.to_string()),
        (
            "warm-up before the first fault, at least".into(),
            format!("{} ms", cfg.warmup_ns / 1_000_000),
        ),
        (
            "window per run".into(),
            format!("{} ms (hang: + watchdog)", cfg.window_ns / 1_000_000),
        ),
        (
            "watchdog".into(),
            format!("{} ms", cfg.watchdog_ns / 1_000_000),
        ),
        (
            "runs per session (most)".into(),
            cfg.per_session.to_string(),
        ),
        ("sessions at a time".into(), cfg.jobs.to_string()),
        (
            "kinds".into(),
            if cfg.kinds.is_empty() {
                "all".into()
            } else {
                cfg.kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    for (comp, (boot, warmup)) in &c.boot {
        rows.push((
            format!("{}: clients first served, first fault", comp.name()),
            format!(
                "{} ms, {} ms after start",
                boot.as_millis(),
                warmup.as_millis()
            ),
        ));
    }
    for comp in [Composition::Isolated, Composition::Monolithic] {
        let n = c.sessions.iter().filter(|s| s.composition == comp).count();
        let wall = c.wall.get(&comp).map_or(0.0, |d| d.as_secs_f64());
        rows.push((
            format!("{} sessions, wall time", comp.name()),
            format!("{n}, {wall:.1} s"),
        ));
    }
    rows.extend(meta.iter().cloned());
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    if !c.idle.is_empty() {
        let _ = writeln!(
            m,
            "\nNot exercised by the workload (no event while it runs, so a fault there cannot \
             fire; none drawn): {}.",
            c.idle.join(", ")
        );
    }
    let _ = writeln!(m, "\n## Survival per fault kind\n");
    let _ = writeln!(
        m,
        "| kind | isolated survived | monolithic survived | isolated recovery ms (median / p95 / max) | isolated runs whose clients saw errors |\n|---|---|---|---|---|"
    );
    for kind in Kind::ALL {
        let iso = tally(c, Composition::Isolated, |r| r.run.target.kind == kind);
        let mono = tally(c, Composition::Monolithic, |r| r.run.target.kind == kind);
        if iso.runs + mono.runs == 0 {
            continue;
        }
        let _ = writeln!(
            m,
            "| {} | {}{}{} / {} / {} | {} |",
            kind.name(),
            row(&iso),
            row(&mono),
            ms(iso.quantile_ms(0.5)),
            ms(iso.quantile_ms(0.95)),
            ms(iso.quantile_ms(1.0)),
            iso.visible
        );
    }
    let _ = writeln!(m, "\n## Survival per fault kind and PD\n");
    let _ = writeln!(m, "| kind | PD | isolated | monolithic | isolated recovery ms (median / max) |\n|---|---|---|---|---|");
    for t in catalogue::targets() {
        let same = |r: &RunResult| r.run.target == t;
        let iso = tally(c, Composition::Isolated, same);
        let mono = tally(c, Composition::Monolithic, same);
        if iso.runs + mono.runs == 0 {
            continue;
        }
        let _ = writeln!(
            m,
            "| {} | {} | {}{}{} / {} |",
            t.kind.name(),
            t.pd,
            row(&iso),
            row(&mono),
            ms(iso.quantile_ms(0.5)),
            ms(iso.quantile_ms(1.0))
        );
    }
    let _ = writeln!(m, "\n## Leaks and corrupted buffers\n");
    for comp in [Composition::Isolated, Composition::Monolithic] {
        let mut sources: Vec<&str> = c
            .sessions
            .iter()
            .filter(|s| s.composition == comp)
            .flat_map(|s| s.usage_sources.iter().map(String::as_str))
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let dma: u64 = c
            .sessions
            .iter()
            .filter(|s| s.composition == comp)
            .map(|s| s.leaked_dma_pages)
            .sum();
        let vram: u64 = c
            .sessions
            .iter()
            .filter(|s| s.composition == comp)
            .map(|s| s.leaked_vram_pages)
            .sum();
        let _ = writeln!(
            m,
            "- {}: {} DMA and {} VRAM pages leaked; {} corrupted client buffers; usage reported by: {}.",
            comp.name(),
            dma,
            vram,
            corrupted_buffers(c, comp),
            if sources.is_empty() {
                "none (no session had a usage report both before its first fault and after its \
                 end, so leaks are not measured)"
                    .to_owned()
            } else {
                sources.join(", ")
            }
        );
        for s in c.sessions.iter().filter(|s| s.composition == comp) {
            let pages = s.leaked_dma_pages + s.leaked_vram_pages;
            if pages > 0 {
                let runs: Vec<String> = s.runs.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    m,
                    "  - {pages} pages after the session of runs {}",
                    runs.join(", ")
                );
            }
        }
    }
    let _ = writeln!(m, "\n## Why runs failed\n");
    for comp in [Composition::Isolated, Composition::Monolithic] {
        let mut why: BTreeMap<String, usize> = BTreeMap::new();
        for r in c.results.iter().filter(|r| r.composition == comp) {
            if let Verdict::Failed(w) = &r.verdict {
                // Group by reason without numbers that vary run to run.
                let key = format!("{} in {}: {}", r.run.target.kind.name(), r.run.target.pd, w);
                *why.entry(key).or_default() += 1;
            }
        }
        let _ = writeln!(
            m,
            "{} ({} failed runs):\n",
            comp.name(),
            why.values().sum::<usize>()
        );
        let mut list: Vec<(String, usize)> = why.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (w, n) in list.iter().take(25) {
            let _ = writeln!(m, "- {n} × {w}");
        }
        if list.len() > 25 {
            let _ = writeln!(m, "- … {} more reasons (see runs.csv)", list.len() - 25);
        }
        let _ = writeln!(m);
    }
    if !c.unjudged.is_empty() {
        let _ = writeln!(m, "## Runs not judged\n");
        let _ = writeln!(
            m,
            "{} runs could not be judged after {} attempts (the fault never fired, or an earlier \
             failure spoiled the window) and are left out of the percentages:\n",
            c.unjudged.len(),
            super::judge::ATTEMPTS
        );
        for u in c.unjudged.iter().take(25) {
            let _ = writeln!(
                m,
                "- run {} ({} in {}, {}): {}",
                u.run.id,
                u.run.target.kind.name(),
                u.run.target.pd,
                u.composition.name(),
                u.why
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(
        m,
        "## How to read it\n\nThe isolated figure is the product's promise: a fault that kills \
         or hangs a driver is contained to that driver, which the supervisor restarts while its \
         clients get clean errors and then service again. The monolithic figure is the same code \
         without isolation: every fault that kills a PD ends the whole process. Kinds that do not \
         kill (a corrupt reply, out-of-memory, GSP firmware faults) depend on the servers' own \
         checks, in both compositions alike. `runs.csv` has every run; rerun one campaign with the \
         command above."
    );
    m
}

/// One CSV line per judged run.
pub fn csv(c: &Campaign) -> String {
    let mut s = String::from("composition,run,kind,pd,action,nth,survived,visible,recovery_us,corrupt,wrong,also_died,reason\n");
    for r in &c.results {
        let reason = match &r.verdict {
            Verdict::Survived => String::new(),
            Verdict::Failed(w) => w.replace(',', ";"),
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.composition.name(),
            r.run.id,
            r.run.target.kind.name(),
            r.run.target.pd,
            r.run.action.to_string().replace(',', " "),
            r.run.nth,
            u8::from(r.survived()),
            u8::from(r.visible),
            r.recovery_us.map_or_else(String::new, |v| v.to_string()),
            r.corrupt,
            r.wrong,
            r.also_faulted.join(" "),
            reason
        );
    }
    s
}

const ISO: &str = "#2b7bba";
const MONO: &str = "#d7301f";

/// Green at 100 %, red at 0 %.
fn heat(p: f64) -> String {
    // CAST: percent to a colour channel, clamped.
    let t = (p / 100.0).clamp(0.0, 1.0);
    let (r, g) = (
        (215.0 * (1.0 - t) + 40.0 * t) as u8,
        (48.0 * (1.0 - t) + 160.0 * t) as u8,
    );
    format!("#{r:02x}{g:02x}40")
}

/// The SVG plot.
pub fn svg(c: &Campaign) -> String {
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|&k| c.results.iter().any(|r| r.run.target.kind == k))
        .collect();
    // The faulted PDs that ran, in catalogue order.
    let mut pds: Vec<&str> = Vec::new();
    for t in catalogue::targets() {
        if !pds.contains(&t.pd) && c.results.iter().any(|r| r.run.target.pd == t.pd) {
            pds.push(t.pd);
        }
    }
    let row_h = 26.0;
    let top = 60.0;
    let panel_h = top + row_h * kinds.len().max(1) as f64 + 40.0;
    let (w, h) = (1180.0, panel_h * 2.0 - top + 40.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"#,
        summary_line(c)
    );
    // Panel 1: survival per kind, two bars each.
    let (x0, bar_w) = (120.0, 300.0);
    let _ = writeln!(
        s,
        r#"<text x="10" y="45" font-weight="bold">Survival per fault kind</text>"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="{}" y="40" width="10" height="10" fill="{ISO}"/><text x="{}" y="49">isolated</text><rect x="{}" y="40" width="10" height="10" fill="{MONO}"/><text x="{}" y="49">monolithic</text>"#,
        x0 + 200.0,
        x0 + 214.0,
        x0 + 280.0,
        x0 + 294.0
    );
    for (i, kind) in kinds.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(s, r#"<text x="10" y="{}">{}</text>"#, y + 15.0, kind.name());
        for (j, comp) in [Composition::Isolated, Composition::Monolithic]
            .into_iter()
            .enumerate()
        {
            let t = tally(c, comp, |r| r.run.target.kind == *kind);
            if t.runs == 0 {
                continue;
            }
            let by = y + 2.0 + 11.0 * j as f64;
            let bw = bar_w * t.percent() / 100.0;
            let colour = if j == 0 { ISO } else { MONO };
            let _ = writeln!(
                s,
                r#"<rect x="{x0}" y="{by}" width="{bw:.1}" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="10">{:.1}% ({}/{})</text>"#,
                x0 + bw + 4.0,
                by + 9.0,
                t.percent(),
                t.survived,
                t.runs
            );
        }
    }
    // Panel 2: recovery distribution (isolated), log scale 0.1 ms .. 10 s.
    let (rx0, rw) = (620.0, 520.0);
    let _ = writeln!(
        s,
        r#"<text x="{rx0}" y="45" font-weight="bold">Isolated recovery: fault to service again, ms, log scale</text>"#
    );
    let xlog = |v: f64| rx0 + rw * ((v.max(0.1).log10() + 1.0) / 5.0).clamp(0.0, 1.0);
    let axis_y = top + row_h * kinds.len() as f64 + 5.0;
    for tick in [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
        let x = xlog(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{axis_y}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{tick}</text>"##,
            axis_y + 12.0
        );
    }
    for (i, kind) in kinds.iter().enumerate() {
        let t = tally(c, Composition::Isolated, |r| r.run.target.kind == *kind);
        let y = top + row_h * i as f64 + 12.0;
        let q = |p| t.quantile_ms(p);
        let (Some(lo), Some(p25), Some(med), Some(p75), Some(hi)) =
            (q(0.0), q(0.25), q(0.5), q(0.75), q(1.0))
        else {
            let _ = writeln!(
                s,
                r#"<text x="{rx0}" y="{:.1}" font-size="10" fill="gray">no outage seen</text>"#,
                y + 4.0
            );
            continue;
        };
        // The label goes right of the whiskers, or left of them near the axis's end.
        let (label_x, anchor) = if xlog(hi) > rx0 + rw - 130.0 {
            (xlog(lo) - 4.0, "end")
        } else {
            (xlog(hi) + 4.0, "start")
        };
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{y}" x2="{:.1}" y2="{y}" stroke="{ISO}"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="{ISO}" fill-opacity="0.35" stroke="{ISO}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black" stroke-width="2"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="{}">median {med:.1}, n={}</text>"#,
            xlog(lo),
            xlog(hi),
            xlog(p25),
            y - 6.0,
            (xlog(p75) - xlog(p25)).max(1.0),
            xlog(med),
            y - 6.0,
            xlog(med),
            y + 6.0,
            label_x,
            y + 4.0,
            anchor,
            t.recoveries.len()
        );
    }
    // Panel 3: survival per kind and PD, both compositions, as heat maps.
    let y3 = panel_h + 20.0;
    let cell_w = 62.0;
    for (j, comp) in [Composition::Isolated, Composition::Monolithic]
        .into_iter()
        .enumerate()
    {
        let px = 120.0 + j as f64 * (cell_w * pds.len() as f64 + 80.0);
        let _ = writeln!(
            s,
            r#"<text x="{px}" y="{y3}" font-weight="bold">{} survival per kind and PD</text>"#,
            comp.name()
        );
        for (k, pd) in pds.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{pd}</text>"#,
                px + cell_w * (k as f64 + 0.5),
                y3 + 16.0
            );
        }
        for (i, kind) in kinds.iter().enumerate() {
            let y = y3 + 22.0 + row_h * i as f64;
            if j == 0 {
                let _ = writeln!(
                    s,
                    r#"<text x="10" y="{:.1}">{}</text>"#,
                    y + 16.0,
                    kind.name()
                );
            }
            for (k, pd) in pds.iter().enumerate() {
                let t = tally(c, comp, |r| {
                    r.run.target.kind == *kind && r.run.target.pd == *pd
                });
                if t.runs == 0 {
                    continue;
                }
                let x = px + cell_w * k as f64;
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="white">{:.0}% ({})</text>"#,
                    cell_w - 2.0,
                    row_h - 2.0,
                    heat(t.percent()),
                    x + cell_w / 2.0,
                    y + 16.0,
                    t.percent(),
                    t.runs
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Write `REPORT.md`, `survival.svg` and `runs.csv` into `dir`.
///
/// # Errors
/// The first file that cannot be written.
pub fn write(c: &Campaign, dir: &Path, meta: &[(String, String)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("REPORT.md"), markdown(c, meta))?;
    std::fs::write(dir.join("survival.svg"), svg(c))?;
    std::fs::write(dir.join("runs.csv"), csv(c))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::catalogue::Target;
    use crate::campaign::judge::SessionSummary;
    use crate::campaign::schedule::Run;
    use crate::campaign::session::Exit;

    fn result(comp: Composition, kind: Kind, survived: bool, recovery: Option<u64>) -> RunResult {
        let target = Target {
            kind,
            pd: "gpu",
            inject_in: "gpu",
        };
        RunResult {
            run: Run {
                id: 0,
                target,
                action: catalogue::action(target, 0),
                nth: 1,
            },
            composition: comp,
            verdict: if survived {
                Verdict::Survived
            } else {
                Verdict::Failed("client0 stopped".into())
            },
            visible: recovery.is_some(),
            recovery_us: recovery,
            corrupt: 0,
            wrong: 0,
            also_faulted: vec![],
        }
    }

    #[test]
    fn the_summary_line_counts_what_was_judged() {
        let mut c = Campaign::default();
        for i in 0..4 {
            c.results.push(result(
                Composition::Isolated,
                Kind::Panic,
                true,
                Some(1000 * (i + 1)),
            ));
            c.results
                .push(result(Composition::Monolithic, Kind::Panic, i == 0, None));
        }
        c.sessions.push(SessionSummary {
            composition: Composition::Isolated,
            runs: vec![0],
            leaked_dma_pages: 2,
            leaked_vram_pages: 1,
            usage_sources: vec!["alloc".into()],
            exit: Exit::Code(0),
            wall: std::time::Duration::ZERO,
        });
        assert_eq!(
            summary_line(&c),
            "faults runs 4 isolated-survival 100.0% monolithic-survival 25.0% leaked-pages 3 corrupted-buffers 0"
        );
        let mut sel4 = c.clone();
        sel4.results
            .retain(|r| r.composition == Composition::Isolated);
        assert_eq!(
            summary_line(&sel4),
            "faults runs 4 isolated-survival 100.0% monolithic-survival n/a leaked-pages 3 corrupted-buffers 0",
            "a composition that did not run (the seL4 campaign's monolithic) has no figure"
        );
        let t = tally(&c, Composition::Isolated, |_| true);
        assert_eq!(
            (t.quantile_ms(0.0), t.quantile_ms(0.5), t.quantile_ms(1.0)),
            (Some(1.0), Some(2.0), Some(4.0))
        );
        let md = markdown(&c, &[("command".into(), "cargo xtask faults".into())]);
        assert!(
            md.contains("| panic | 4/4 (100.0%) | 1/4 (25.0%) | 2.0 / 3.0 / 4.0 | 4 |"),
            "{md}"
        );
        assert!(md.contains("usage reported by: alloc"));
        assert!(md.contains("3 × panic in gpu: client0 stopped"));
        let svg = svg(&c);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("100.0% (4/4)") && svg.contains("25.0% (1/4)"));
        assert_eq!(csv(&c).lines().count(), 9);
    }
}
