//! The scan plan: targets minus exclusions, times ports, as an index space.
//!
//! Addresses are never listed: a plan holds one block per merged range, so a
//! /8 (or a /64) costs the same memory as one address. Job `i` is found by a
//! binary search over the blocks' running totals, which is what lets a later
//! permutation or shard walk the space in any order.

use super::spec::{ip_to_u128, Spec};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// One unit of work: an address and port, or a name to resolve first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Addr(SocketAddr),
    Name {
        host: String,
        port: u16,
    },
    /// A mail domain: its MX hosts are resolved, then probed.
    Mx {
        domain: String,
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    V4(u128),
    V6(u128),
    Name(String),
    Mx(String),
}

#[derive(Debug, Clone)]
struct Block {
    what: What,
    /// Addresses in the block (1 for a name).
    len: u128,
    ports: Arc<[u16]>,
}

impl Block {
    /// Saturating: `::/0` times any ports does not fit in a u128.
    fn jobs(&self) -> u128 {
        self.len.saturating_mul(self.ports.len() as u128)
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    blocks: Vec<Block>,
    /// `ends[k]` = jobs in blocks 0..=k.
    ends: Vec<u128>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no targets given (name them on the command line or with --input)")]
    Empty,
    #[error("every target is excluded: nothing left to scan")]
    AllExcluded,
    #[error("no ports given")]
    NoPorts,
}

impl Plan {
    /// Build a plan. `ports` applies to every spec that does not name its own.
    pub fn new(include: &[Spec], exclude: &[Spec], ports: &[u16]) -> Result<Plan, PlanError> {
        if include.is_empty() {
            return Err(PlanError::Empty);
        }
        if ports.is_empty() {
            return Err(PlanError::NoPorts);
        }
        let default_ports: Arc<[u16]> = ports.into();
        let mut ranges: Vec<(bool, u128, u128, Arc<[u16]>)> = Vec::new();
        let mut names: Vec<Block> = Vec::new();
        // Hash sets, not scans: planning stays O(n log n) for a million
        // names and a million exclusions.
        let excluded_names: HashSet<&str> = exclude
            .iter()
            .filter_map(|e| match e {
                Spec::Name { host, .. } | Spec::Mx { domain: host, .. } => Some(host.as_str()),
                Spec::Range { .. } => None,
            })
            .collect();
        // (is an mx: domain, name, ports), borrowed from `include`.
        let mut seen: HashSet<(bool, &str, Arc<[u16]>)> = HashSet::new();
        for spec in include {
            let ports = match spec.port() {
                Some(p) => Arc::from([p].as_slice()),
                None => default_ports.clone(),
            };
            match spec {
                Spec::Range { start, end, .. } => {
                    ranges.push((start.is_ipv6(), ip_to_u128(*start), ip_to_u128(*end), ports))
                }
                Spec::Name { host, .. } | Spec::Mx { domain: host, .. } => {
                    if excluded_names.contains(host.as_str()) {
                        continue;
                    }
                    let mx = matches!(spec, Spec::Mx { .. });
                    if seen.insert((mx, host.as_str(), ports.clone())) {
                        let what = if mx {
                            What::Mx(host.clone())
                        } else {
                            What::Name(host.clone())
                        };
                        names.push(Block {
                            what,
                            len: 1,
                            ports,
                        });
                    }
                }
            }
        }
        // Merge overlapping includes with the same family and ports.
        ranges.sort_by(|a, b| (a.0, &a.3, a.1).cmp(&(b.0, &b.3, b.1)));
        let mut merged: Vec<(bool, u128, u128, Arc<[u16]>)> = Vec::new();
        for r in ranges {
            match merged.last_mut() {
                Some(last) if last.0 == r.0 && last.3 == r.3 && r.1 <= last.2.saturating_add(1) => {
                    last.2 = last.2.max(r.2)
                }
                _ => merged.push(r),
            }
        }
        // Subtract exclusions: sorted and merged per family, so each range
        // starts at its first overlapping exclusion (a binary search) and
        // walks only the ones inside it.
        let mut excl: Vec<(bool, u128, u128)> = exclude
            .iter()
            .filter_map(|e| match e {
                Spec::Range { start, end, .. } => {
                    Some((start.is_ipv6(), ip_to_u128(*start), ip_to_u128(*end)))
                }
                Spec::Name { .. } | Spec::Mx { .. } => None,
            })
            .collect();
        excl.sort_unstable();
        let mut excl_merged: Vec<(bool, u128, u128)> = Vec::with_capacity(excl.len());
        for e in excl {
            match excl_merged.last_mut() {
                Some(last) if last.0 == e.0 && e.1 <= last.2.saturating_add(1) => {
                    last.2 = last.2.max(e.2)
                }
                _ => excl_merged.push(e),
            }
        }
        let mut blocks = Vec::new();
        for (v6, start, end, ports) in merged {
            let mut cursor = start;
            let mut done = false;
            // The first exclusion of this family that ends at or after `start`.
            let first = excl_merged.partition_point(|&(ev6, _, ee)| (ev6, ee) < (v6, start));
            for &(_, es, ee) in excl_merged[first..].iter().take_while(|e| e.0 == v6) {
                if es > end {
                    break;
                }
                if es > cursor {
                    blocks.push(Self::addr_block(v6, cursor, es - 1, &ports));
                }
                if ee >= end {
                    done = true;
                    break;
                }
                cursor = ee + 1;
            }
            if !done {
                blocks.push(Self::addr_block(v6, cursor, end, &ports));
            }
        }
        blocks.extend(names);
        if blocks.is_empty() {
            return Err(PlanError::AllExcluded);
        }
        let mut ends = Vec::with_capacity(blocks.len());
        let mut total: u128 = 0;
        for b in &blocks {
            total = total.saturating_add(b.jobs());
            ends.push(total);
        }
        Ok(Plan { blocks, ends })
    }

    fn addr_block(v6: bool, start: u128, end: u128, ports: &Arc<[u16]>) -> Block {
        Block {
            what: if v6 { What::V6(start) } else { What::V4(start) },
            // `::/0` has 2^128 addresses: saturate rather than overflow.
            len: (end - start).saturating_add(1),
            ports: ports.clone(),
        }
    }

    /// The address ranges the plan dials, first and last address of each
    /// (after exclusions; names are resolved later).
    pub fn address_ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.blocks.iter().filter_map(|b| {
            // `len` saturates only for the whole IPv6 space.
            let last = |start: u128| {
                if b.len == u128::MAX {
                    u128::MAX
                } else {
                    start + (b.len - 1)
                }
            };
            match b.what {
                What::V4(start) => Some((
                    IpAddr::V4(Ipv4Addr::from(start as u32)),
                    IpAddr::V4(Ipv4Addr::from(last(start) as u32)),
                )),
                What::V6(start) => Some((
                    IpAddr::V6(Ipv6Addr::from(start)),
                    IpAddr::V6(Ipv6Addr::from(last(start))),
                )),
                What::Name(_) | What::Mx(_) => None,
            }
        })
    }

    /// Does the plan hold host names or mail domains (jobs that need DNS)?
    pub fn has_names(&self) -> bool {
        self.blocks
            .iter()
            .any(|b| matches!(b.what, What::Name(_) | What::Mx(_)))
    }

    /// How many jobs (address × port, or name × port) the plan holds.
    pub fn len(&self) -> u128 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Job number `i` (0-based), or `None` past the end.
    pub fn get(&self, i: u128) -> Option<Job> {
        let k = self.ends.partition_point(|&end| end <= i);
        let block = self.blocks.get(k)?;
        let before = if k == 0 { 0 } else { self.ends[k - 1] };
        let offset = i - before;
        let nports = block.ports.len() as u128;
        let port = block.ports[(offset % nports) as usize];
        let n = offset / nports;
        Some(match &block.what {
            What::V4(start) => Job::Addr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from((start + n) as u32)),
                port,
            )),
            What::V6(start) => {
                Job::Addr(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(start + n)), port))
            }
            What::Name(host) => Job::Name {
                host: host.clone(),
                port,
            },
            What::Mx(domain) => Job::Mx {
                domain: domain.clone(),
                port,
            },
        })
    }

    /// Every job in order, generated on demand.
    pub fn iter(&self) -> impl Iterator<Item = Job> + '_ {
        let total = self.len();
        let mut i: u128 = 0;
        std::iter::from_fn(move || {
            if i >= total {
                return None;
            }
            let job = self.get(i);
            i += 1;
            job
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[&str]) -> Vec<Spec> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }
    fn addrs(plan: &Plan) -> Vec<String> {
        plan.iter()
            .map(|j| match j {
                Job::Addr(a) => a.to_string(),
                Job::Name { host, port } => format!("{host}:{port}"),
                Job::Mx { domain, port } => format!("mx:{domain}:{port}"),
            })
            .collect()
    }

    #[test]
    fn ranges_times_ports() {
        let plan = Plan::new(&specs(&["192.0.2.1-2"]), &[], &[25, 587]).unwrap();
        assert_eq!(
            addrs(&plan),
            [
                "192.0.2.1:25",
                "192.0.2.1:587",
                "192.0.2.2:25",
                "192.0.2.2:587"
            ]
        );
    }

    #[test]
    fn overlaps_are_merged_and_exclusions_subtracted() {
        let plan = Plan::new(
            &specs(&["192.0.2.0/29", "192.0.2.4-10"]),
            &specs(&["192.0.2.2-3", "192.0.2.10", "192.0.2.200"]),
            &[25],
        )
        .unwrap();
        assert_eq!(
            addrs(&plan),
            [
                "192.0.2.0:25",
                "192.0.2.1:25",
                "192.0.2.4:25",
                "192.0.2.5:25",
                "192.0.2.6:25",
                "192.0.2.7:25",
                "192.0.2.8:25",
                "192.0.2.9:25"
            ]
        );
    }

    #[test]
    fn own_ports_and_names() {
        let plan = Plan::new(
            &specs(&[
                "192.0.2.1:2525",
                "mx.example.org",
                "mx.example.org",
                "mx:example.org",
                "mx:example.org",
                "mx:example.net",
            ]),
            &specs(&["example.net"]),
            &[25],
        )
        .unwrap();
        assert_eq!(
            addrs(&plan),
            ["192.0.2.1:2525", "mx.example.org:25", "mx:example.org:25"]
        );
    }

    #[test]
    fn huge_ranges_plan_in_constant_memory() {
        let plan = Plan::new(
            &specs(&["10.0.0.0/8", "2001:db8::/32"]),
            &[],
            &[25, 465, 587],
        )
        .unwrap();
        assert_eq!(plan.len(), 3 * ((1u128 << 24) + (1u128 << 96)));
        assert_eq!(
            plan.get(3 * (1 << 24) - 1),
            Some(Job::Addr("10.255.255.255:587".parse().unwrap()))
        );
        assert_eq!(
            plan.get(3 * (1 << 24)),
            Some(Job::Addr("[2001:db8::]:25".parse().unwrap()))
        );
        assert_eq!(plan.get(plan.len()), None);
    }

    #[test]
    fn the_whole_address_space_saturates_instead_of_overflowing() {
        let all_v6 = Plan::new(&specs(&["::/0"]), &[], &[25, 587]).unwrap();
        assert_eq!(all_v6.len(), u128::MAX);
        assert_eq!(all_v6.get(3), Some(Job::Addr("[::1]:587".parse().unwrap())));
        let all_v4 = Plan::new(&specs(&["0.0.0.0/0", "::/0"]), &[], &[25]).unwrap();
        assert_eq!(all_v4.len(), u128::MAX);
        assert_eq!(
            all_v4.get((1 << 32) - 1),
            Some(Job::Addr("255.255.255.255:25".parse().unwrap()))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Plan::new(&[], &[], &[25]).unwrap_err(), PlanError::Empty);
        assert_eq!(
            Plan::new(&specs(&["192.0.2.0/24"]), &specs(&["192.0.2.0/23"]), &[25]).unwrap_err(),
            PlanError::AllExcluded
        );
        assert_eq!(
            Plan::new(&specs(&["192.0.2.1"]), &[], &[]).unwrap_err(),
            PlanError::NoPorts
        );
    }

    proptest::proptest! {
        #[test]
        fn exclusion_matches_a_naive_set(a in 0u32..64, b in 0u32..64, c in 0u32..64, d in 0u32..64) {
            let (lo, hi) = (a.min(b), a.max(b));
            let (elo, ehi) = (c.min(d), c.max(d));
            let inc = format!("192.0.2.{lo}-192.0.2.{hi}");
            let exc = format!("192.0.2.{elo}-192.0.2.{ehi}");
            let want: Vec<String> = (lo..=hi).filter(|x| *x < elo || *x > ehi).map(|x| format!("192.0.2.{x}:25")).collect();
            match Plan::new(&specs(&[&inc]), &specs(&[&exc]), &[25]) {
                Ok(plan) => proptest::prop_assert_eq!(addrs(&plan), want),
                Err(e) => {
                    proptest::prop_assert_eq!(e, PlanError::AllExcluded);
                    proptest::prop_assert!(want.is_empty());
                }
            }
        }

        /// Many overlapping ranges of both families against many
        /// overlapping exclusions (the sweep that keeps planning
        /// O(n log n)), and names with repeats: the same set as a naive walk.
        #[test]
        fn many_ranges_and_exclusions_match_a_naive_set(
            inc in proptest::collection::vec((0u32..200, 0u32..8, proptest::bool::ANY), 1..30),
            exc in proptest::collection::vec((0u32..200, 0u32..8, proptest::bool::ANY), 0..30),
            names in proptest::collection::vec(0u32..6, 0..10),
            excluded_names in proptest::collection::vec(0u32..6, 0..3),
        ) {
            let spec = |&(start, len, v6): &(u32, u32, bool)| {
                if v6 {
                    format!("::1:{:x}-::1:{:x}", start, start + len)
                } else {
                    format!("127.0.0.{start}-127.0.0.{}", (start + len).min(255))
                }
            };
            let include: Vec<String> = inc.iter().map(spec)
                .chain(names.iter().map(|n| format!("h{n}.lab.test")))
                .collect();
            let exclude: Vec<String> = exc.iter().map(spec)
                .chain(excluded_names.iter().map(|n| format!("h{n}.lab.test")))
                .collect();
            let inc_specs: Vec<Spec> = include.iter().map(|s| s.parse().unwrap()).collect();
            let exc_specs: Vec<Spec> = exclude.iter().map(|s| s.parse().unwrap()).collect();
            let member = |set: &[(u32, u32, bool)], x: u32, v6: bool| {
                set.iter().any(|&(s, l, f)| {
                    let end = if f { s + l } else { (s + l).min(255) };
                    f == v6 && (s..=end).contains(&x)
                })
            };
            let mut want = std::collections::BTreeSet::new();
            for v6 in [false, true] {
                for x in 0..=260u32 {
                    if member(&inc, x, v6) && !member(&exc, x, v6) {
                        want.insert(if v6 { format!("[::1:{x:x}]:25") } else { format!("127.0.0.{x}:25") });
                    }
                }
            }
            for n in &names {
                if !excluded_names.contains(n) {
                    want.insert(format!("h{n}.lab.test:25"));
                }
            }
            match Plan::new(&inc_specs, &exc_specs, &[25]) {
                Ok(plan) => {
                    let got: Vec<String> = plan.iter().map(|j| match j {
                        Job::Addr(a) => a.to_string(),
                        Job::Name { host, port } | Job::Mx { domain: host, port } => format!("{host}:{port}"),
                    }).collect();
                    // Every job once, and the same set.
                    let set: std::collections::BTreeSet<String> = got.iter().cloned().collect();
                    proptest::prop_assert_eq!(set.len(), got.len());
                    proptest::prop_assert_eq!(set, want);
                }
                Err(e) => {
                    proptest::prop_assert_eq!(e, PlanError::AllExcluded);
                    proptest::prop_assert!(want.is_empty());
                }
            }
        }
    }
}
