//! `relayscan lab`: the simulated servers, until Ctrl-C.

use super::{out, runtime, EXIT_CLEAN};
use crate::cli::LabArgs;
use crate::lab::{profile, server, Lab, Profile, PROFILES};

pub(crate) fn run(args: LabArgs) -> anyhow::Result<i32> {
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
    let Some(first) = profiles.first() else {
        anyhow::bail!("--profiles names no profile (see `relayscan lab` for the list)");
    };
    let first = first.name;
    runtime()?.block_on(async {
        let lab = Lab::start_forwarding(
            args.base,
            args.port,
            &profiles,
            crate::lab::tls::Identity::SelfSigned,
            args.forward,
        )
        .await?;
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
        let try_addr = lab
            .servers
            .iter()
            .find(|(_, p)| p.name == first)
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        if let Some(to) = args.forward {
            out(format!("\nrelaying profiles forward what they accept to {to}") + "\n")?;
        }
        out(format!(
            "\nlab running on port {}; try: relayscan check {try_addr}  (Ctrl-C stops)",
            lab.port(),
        ) + "\n")?;
        tokio::signal::ctrl_c().await?;
        drop(lab);
        Ok(EXIT_CLEAN)
    })
}
