//! `report --by container`: the samples of a capture counted by the group their task was
//! in when each was taken (rows, folded stacks, JSON, pprof).

use super::*;

/// What the `--by container` rows need of a group, taken from the model when it is read.
pub(super) struct GroupInfo {
    label: String,
    kind: &'static str,
    name: String,
    runtime: Option<String>,
    runtime_id: Option<String>,
}

pub(super) fn group_info(model: &Attributor, g: Option<GroupId>) -> GroupInfo {
    match g {
        Some(g) => {
            let g = model.group(g);
            GroupInfo {
                label: g.label().to_string(),
                kind: g.kind.name(),
                name: g.name().to_string(),
                runtime: g.naming().runtime.clone(),
                runtime_id: g.naming().runtime_id.clone(),
            }
        }
        None => GroupInfo {
            label: "[unknown]".to_string(),
            kind: "-",
            name: "task never seen".to_string(),
            runtime: None,
            runtime_id: None,
        },
    }
}

/// `report --by container [--folded]`: every event feeds the model in time order, so each
/// sample is counted for the group its task was in when it was taken.
pub(super) fn by_container(
    args: &ReportArgs,
    name: &str,
    data: &mut PerfData,
    order: Order,
    select: &mut Selection,
    out: &mut impl Write,
) -> Result<()> {
    use nswatch::profile::{ContainerProfile, PeriodUnit};
    use nswatch::symbols::{build_id_cache_dirs, recorded_here, Kallsyms, Symbolizer};

    let pprof = matches!(args.format, Format::Pprof);
    let pprof_out = match (pprof, &args.output) {
        (true, Some(p)) => Some(nswatch::out_file::create_output(p)?.file),
        (true, None) => anyhow::bail!("--format pprof writes a binary file: give -o FILE"),
        (false, _) => None,
    };
    if pprof && args.folded {
        anyhow::bail!("--folded and --format pprof are two outputs of the stacks: choose one");
    }
    // Both want every sample's frames named.
    let stacks = args.folded || pprof;

    let mut builder = EventBuilder::new();
    let mut model = file_model();
    let mut profile = ContainerProfile::new();
    let mut sym = Symbolizer::new();
    let info = data.info().clone();
    sym.set_build_id_cache(build_id_cache_dirs());
    sym.add_recorded_build_ids(&info.features.build_ids);
    if stacks
        && recorded_here(
            info.features.hostname.as_deref(),
            info.features.os_release.as_deref(),
        )
    {
        sym.set_kallsyms_reading(std::thread::spawn(Kallsyms::read));
        // The processes may still run: their files are read through their own roots.
        sym.set_process_roots(true);
    }
    let mut frames = Vec::new();
    // A group's label as a name id, made once: a group keeps its label for life.
    let mut labels: hashbrown::HashMap<Option<GroupId>, u32> = hashbrown::HashMap::new();
    // A sample's cgroup names its group as in the text report (`perf record --all-cgroups`).
    let mut cgroups = CgroupNames::new();
    let r = data.for_each(order, |dec, view| -> Result<()> {
        let (rec, id) = dec.decode(view)?;
        if stacks {
            sym.observe(&rec);
        }
        let (is_sample, sample_cgroup) = match &rec {
            Record::Sample(s) => (true, s.cgroup),
            _ => (false, None),
        };
        let Some(ev) = builder.event(&rec, &id) else {
            return Ok(());
        };
        if !is_sample {
            model.observe(&ev);
            model.take_changes().for_each(drop);
            if let Body::Cgroup { id, path } = &ev.body {
                cgroups.cgroup(*id, path);
            }
            return Ok(());
        }
        // The task the sample was taken in, at the sample's time: its group and name from
        // one lookup. The idle task (pid 0, "swapper") has no NAMESPACES record; it runs
        // in the initial namespaces, so its samples are the host's.
        let time = ev.time_ns.unwrap_or(model.now_ns());
        model.advance(time);
        let (pid, tid) = (ev.pid.unwrap_or(0), ev.tid.unwrap_or(0));
        if let (Some(cg), Some(p), Some(t)) = (sample_cgroup, ev.pid, ev.tid) {
            cgroups.sample(&mut model, p, t, time, cg);
            model.take_changes().for_each(drop);
        }
        let owner = ev
            .tid
            .and_then(|t| model.task_at(ev.pid.unwrap_or(t), t, time));
        let idle = ev.pid == Some(0) && ev.tid == Some(0);
        let g = owner
            .map(|(_, iv)| iv.group)
            .or(idle.then_some(GroupId::HOST));
        if !select.keep(&model, &ev, g) {
            return Ok(());
        }
        let comm = match owner {
            Some((t, _)) if !t.comm().is_empty() => t.comm().to_string(),
            _ if tid == 0 => "swapper".to_string(),
            _ => format!("[tid {tid}]"),
        };
        let Body::Sample {
            ip,
            period,
            callchain,
        } = &ev.body
        else {
            unreachable!("a SAMPLE record makes a sample event")
        };
        profile.add(g, &comm, period.unwrap_or(0));
        if stacks {
            frames.clear();
            match callchain {
                Some(c) => sym.frame_ids(pid, c, &mut frames),
                None => sym.frame_ids(pid, &ip.iter().copied().collect::<Vec<_>>(), &mut frames),
            }
            let comm = sym.intern(&comm);
            if pprof {
                profile.add_pprof_stack(g, comm, &frames, period.unwrap_or(0));
            } else {
                let label = *labels
                    .entry(g)
                    .or_insert_with(|| sym.intern(&group_info(&model, g).label));
                profile.add_stack(label, comm, &frames);
            }
        }
        Ok(())
    });
    if let Err(e) = &r {
        // What was counted before the damage is still shown, marked as such.
        eprintln!(
            "nswatch: {}: incomplete, the input is damaged: {}",
            escape(name),
            escape(&format!("{e:#}"))
        );
    }
    for why in sym.notes() {
        eprintln!("nswatch: {}", escape(why));
    }
    if args.folded {
        for (stack, n) in profile.folded(sym.names()) {
            writeln!(out, "{} {n}", escape(&stack))?;
        }
        return r.map(drop);
    }
    if let Some(file) = pprof_out {
        // cpu-clock and task-clock periods are nanoseconds; perf's dummy side-band event
        // (software config 9) takes no samples.
        let cpu = data
            .decoder()
            .attrs()
            .filter(|a| !(a.kind == 1 && a.config == 9))
            .all(|a| a.kind == 1 && a.config <= 1);
        let unit = if cpu {
            PeriodUnit::CpuNanoseconds
        } else {
            PeriodUnit::Events
        };
        let labels = |g| {
            let gi = group_info(&model, g);
            let mut l = vec![
                ("container", gi.label),
                ("container_name", gi.name),
                ("container_kind", gi.kind.to_string()),
            ];
            l.extend(gi.runtime.map(|r| ("runtime", r)));
            l
        };
        profile
            .write_pprof(unit, labels, sym.names(), io::BufWriter::new(file))
            .with_context(|| format!("writing {}", args.output.as_ref().unwrap().display()))?;
        return r.map(drop);
    }
    let total = profile.samples();
    let pct = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / total as f64
        }
    };
    let row_json = |row: &nswatch::profile::Row| {
        let gi = group_info(&model, row.group);
        serde_json::json!({
            "container": gi.label,
            "kind": gi.kind,
            "name": gi.name,
            "runtime": gi.runtime,
            "runtime_id": gi.runtime_id,
            "samples": row.samples,
            "period": row.period,
            "overhead": (pct(row.samples) * 100.0).round() / 100.0,
            "comms": row.top_comms(usize::MAX).iter()
                .map(|(c, n)| serde_json::json!({"comm": c, "samples": n}))
                .collect::<Vec<_>>(),
        })
    };
    match args.format {
        // Written above, with the stacks.
        Format::Pprof => {}
        Format::Ndjson => {
            for row in profile.rows() {
                let mut v = row_json(row);
                v["type"] = "container_samples".into();
                writeln!(out, "{v}")?;
            }
        }
        Format::Json => {
            let v = serde_json::json!({
                "file": name,
                "complete": r.is_ok(),
                "samples": total,
                "period": profile.period(),
                "containers": profile.rows().into_iter().map(row_json).collect::<Vec<_>>(),
            });
            writeln!(out, "{v:#}")?;
        }
        Format::Text => {
            writeln!(out, "# {}: {}", escape(name), describe(&info))?;
            writeln!(
                out,
                "# {total} samples, period {}, {} groups{}",
                profile.period(),
                profile.rows().len(),
                if r.is_err() {
                    " (incomplete: the input is damaged)"
                } else {
                    ""
                }
            )?;
            writeln!(
                out,
                "{:>8}  {:>8}  {:>14}  {:<18} {:<9} {:<24} top comms",
                "overhead", "samples", "period", "container", "kind", "name / runtime"
            )?;
            for row in profile.rows() {
                let gi = group_info(&model, row.group);
                let mut who = gi.name.clone();
                if let Some(rt) = &gi.runtime {
                    who = format!("{who} ({rt})");
                }
                let comms: Vec<String> = row
                    .top_comms(3)
                    .iter()
                    .map(|(c, n)| format!("{c} ({n})"))
                    .collect();
                writeln!(
                    out,
                    "{:>7.2}%  {:>8}  {:>14}  {:<18} {:<9} {:<24} {}",
                    pct(row.samples),
                    row.samples,
                    row.period,
                    escape(&gi.label),
                    gi.kind,
                    escape(&who),
                    escape(&comms.join(", "))
                )?;
            }
        }
    }
    r.map(drop)
}
