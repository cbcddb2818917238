//! `relayscan lab`: the simulated servers, until Ctrl-C.

use super::{out, runtime, EXIT_CLEAN};
use crate::cli::LabArgs;
use crate::lab::{profile, server, Lab, Profile, PROFILES};

pub fn run(args: LabArgs) -> anyhow::Result<i32> {
    let profiles: Vec<&'static Profile> = match &args.profiles {
        None => PROFILES.iter().collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                profile::find(n).ok_or_else(|| {
                    anyhow::anyhow!("unknown lab profile {n:?} (see `relayscan lab` for the list)")
                })
            })
            .collect::<Result<_, _>>()?,
    };
    runtime()?.block_on(async {
        let lab = Lab::start(args.base, args.port, &profiles).await?;
        out(format!(
            "{:<22} {:<24} {:<15} description",
            "address", "profile", "expected"
        ) + "\n")?;
        for (addr, p) in &lab.servers {
            out(format!(
                "{:<22} {:<24} {:<15} {} ({})",
                addr.to_string(),
                p.name,
                p.expected.as_str(),
                p.description,
                server::host_name(p)
            ) + "\n")?;
        }
        out(format!(
            "\nlab running on port {}; try: relayscan check {}  (Ctrl-C stops)",
            lab.port(),
            lab.servers[0].0
        ) + "\n")?;
        tokio::signal::ctrl_c().await?;
        drop(lab);
        Ok(EXIT_CLEAN)
    })
}
