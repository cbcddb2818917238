//! The scope (`--scope`, `RELAYSCAN_SCOPE`): the addresses a run may send a
//! packet to, targets after resolution and DNS servers alike. And the
//! address set it is made of, which also holds the exclusions that are
//! checked after resolution.
//!
//! An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, RFC 4291 §2.5.5.2) is
//! judged as the IPv4 address it stands for: a dual-stack socket dialling
//! it reaches that IPv4 address.

use super::plan::Plan;
use super::spec::{ip_to_u128, Spec};
use anyhow::{bail, Context};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `::ffff:0:0/96`, the IPv4-mapped block.
const MAPPED_START: u128 = 0xffff_0000_0000;
const MAPPED_END: u128 = 0xffff_ffff_ffff;

/// Longest scope text quoted in a message.
const QUOTED: usize = 120;

/// The address as it is judged: IPv4-mapped IPv6 as its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// A set of addresses as merged, sorted ranges (IPv4-mapped IPv6 kept as IPv4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

impl AddrSet {
    /// The address ranges among `specs` (names are matched elsewhere).
    pub fn from_specs(specs: &[Spec]) -> AddrSet {
        let mut set = AddrSet::default();
        for spec in specs {
            if let Spec::Range { start, end, .. } = spec {
                set.add(*start, *end);
            }
        }
        set.merge();
        set
    }

    fn add(&mut self, start: IpAddr, end: IpAddr) {
        for (v6, s, e) in split(start, end) {
            if v6 {
                self.v6.push((s, e));
            } else {
                self.v4.push((s, e));
            }
        }
    }

    fn merge(&mut self) {
        for list in [&mut self.v4, &mut self.v6] {
            list.sort();
            let mut merged: Vec<(u128, u128)> = Vec::with_capacity(list.len());
            for &(s, e) in list.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *list = merged;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.first_outside(ip, ip).is_none()
    }

    /// The first address from `start` to `end` that is not in the set, if any.
    pub fn first_outside(&self, start: IpAddr, end: IpAddr) -> Option<IpAddr> {
        for (v6, s, e) in split(start, end) {
            let list = if v6 { &self.v6 } else { &self.v4 };
            if let Some(out) = uncovered(list, s, e) {
                return Some(if v6 {
                    IpAddr::V6(Ipv6Addr::from(out))
                } else {
                    IpAddr::V4(Ipv4Addr::from(out as u32))
                });
            }
        }
        None
    }
}

/// A range as its IPv4 part (from the IPv4-mapped block, too) and its
/// IPv6 parts: `(is_v6, start, end)`.
fn split(start: IpAddr, end: IpAddr) -> Vec<(bool, u128, u128)> {
    let (s, e) = (ip_to_u128(start), ip_to_u128(end));
    if start.is_ipv4() {
        return vec![(false, s, e)];
    }
    let mut parts = Vec::new();
    if s < MAPPED_START {
        parts.push((true, s, e.min(MAPPED_START - 1)));
    }
    if s <= MAPPED_END && e >= MAPPED_START {
        parts.push((
            false,
            s.max(MAPPED_START) - MAPPED_START,
            e.min(MAPPED_END) - MAPPED_START,
        ));
    }
    if e > MAPPED_END {
        parts.push((true, s.max(MAPPED_END + 1), e));
    }
    parts
}

/// The first value from `s` to `e` not covered by the merged, sorted `list`.
fn uncovered(list: &[(u128, u128)], s: u128, e: u128) -> Option<u128> {
    let mut cursor = s;
    for &(lo, hi) in list {
        if hi < cursor {
            continue;
        }
        if lo > cursor {
            return Some(cursor);
        }
        if hi >= e {
            return None;
        }
        cursor = hi + 1;
    }
    Some(cursor)
}

/// The scope of a run: where it may send packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    set: AddrSet,
    /// As the user wrote it, for messages.
    text: String,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.text.chars().count() > QUOTED {
            let short: String = self.text.chars().take(QUOTED).collect();
            write!(f, "{short}…")
        } else {
            f.write_str(&self.text)
        }
    }
}

impl Scope {
    /// `--scope` values (or `RELAYSCAN_SCOPE`): each a comma-separated list
    /// of addresses, CIDR blocks and ranges, or a file of them (one per
    /// line, `#` comments). None given: no scope, no restriction.
    pub fn parse(values: &[String]) -> anyhow::Result<Option<Scope>> {
        if values.is_empty() {
            return Ok(None);
        }
        let mut specs = Vec::new();
        for value in values {
            specs.extend(parse_value(value)?);
        }
        if specs.is_empty() {
            bail!(
                "--scope (or RELAYSCAN_SCOPE) is empty: name the addresses this run may reach \
                 (like 127.0.0.0/8,::1), or unset RELAYSCAN_SCOPE to run without a scope"
            );
        }
        for spec in &specs {
            match spec {
                Spec::Range { port: Some(_), .. } => {
                    bail!("--scope {spec}: a scope holds addresses, not ports")
                }
                Spec::Range { .. } => {}
                Spec::Name { .. } | Spec::Mx { .. } => bail!(
                    "--scope {spec}: a scope holds addresses, CIDR blocks and ranges, not names \
                     (a name would need DNS to know what it allows)"
                ),
            }
        }
        Ok(Some(Scope {
            set: AddrSet::from_specs(&specs),
            text: values.join(","),
        }))
    }

    /// May a packet go to `ip`?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.set.contains(canonical(ip))
    }

    /// The first address from `start` to `end` outside the scope, if any.
    pub fn first_outside(&self, start: IpAddr, end: IpAddr) -> Option<IpAddr> {
        self.set.first_outside(start, end)
    }

    /// Refuse a plan whose addresses are not all in scope (names are
    /// checked after resolution). `include` names the target as the user
    /// wrote it.
    pub fn check_plan(&self, plan: &Plan, include: &[Spec]) -> anyhow::Result<()> {
        for (start, end) in plan.address_ranges() {
            let Some(outside) = self.first_outside(start, end) else {
                continue;
            };
            let spec = include.iter().find(|s| match s {
                Spec::Range {
                    start: s, end: e, ..
                } => {
                    let o = ip_to_u128(outside);
                    s.is_ipv4() == outside.is_ipv4() && ip_to_u128(*s) <= o && o <= ip_to_u128(*e)
                }
                _ => false,
            });
            let target = spec.map_or_else(|| outside.to_string(), Spec::to_string);
            let which = match spec {
                Some(s) if s.len() == 1 => String::new(),
                _ => format!(" ({outside} is not in it)"),
            };
            bail!(
                "target {target} is outside --scope {self}{which}: nothing was sent; \
                 add it to --scope (or RELAYSCAN_SCOPE) if you may scan it, or leave it out"
            );
        }
        Ok(())
    }
}

fn parse_value(value: &str) -> anyhow::Result<Vec<Spec>> {
    let parsed: Result<Vec<Spec>, _> = value
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::parse::<Spec>)
        .collect();
    match parsed {
        Ok(specs) => Ok(specs),
        Err(e) if std::path::Path::new(value.trim()).is_file() => {
            let _ = e;
            super::read_list(value.trim()).with_context(|| format!("--scope {}", value.trim()))
        }
        Err(e) => Err(anyhow::anyhow!(
            "--scope: {e} (and there is no file by that name)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(&[s.to_string()]).unwrap().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn containment() {
        let sc = scope("127.0.0.0/8, ::1,192.0.2.10-20");
        for inside in [
            "127.0.0.1",
            "127.255.255.255",
            "::1",
            "192.0.2.15",
            "::ffff:127.0.0.1",
        ] {
            assert!(sc.allows(ip(inside)), "{inside}");
        }
        for outside in [
            "128.0.0.0",
            "126.255.255.255",
            "::2",
            "192.0.2.21",
            "::ffff:10.0.0.1",
            "10.255.255.53",
        ] {
            assert!(!sc.allows(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn mapped_scope_entries_are_ipv4() {
        let sc = scope("::ffff:127.0.0.0/104");
        assert!(sc.allows(ip("127.0.0.9")));
        assert!(sc.allows(ip("::ffff:127.0.0.9")));
        assert!(!sc.allows(ip("128.0.0.1")));
        assert!(!sc.allows(ip("::1")));
    }

    #[test]
    fn ranges_are_in_scope_only_whole() {
        let sc = scope("127.0.0.0/8,10.0.0.0/24,10.0.1.0/24");
        assert_eq!(
            sc.first_outside(ip("127.0.0.0"), ip("127.255.255.255")),
            None
        );
        assert_eq!(
            sc.first_outside(ip("10.0.0.7"), ip("10.0.1.255")),
            None,
            "adjacent blocks merge"
        );
        assert_eq!(
            sc.first_outside(ip("10.0.0.0"), ip("10.0.2.0")),
            Some(ip("10.0.2.0"))
        );
        assert_eq!(
            sc.first_outside(ip("126.255.255.250"), ip("127.0.0.1")),
            Some(ip("126.255.255.250"))
        );
        // An IPv6 range across the mapped block: its IPv4 part is judged as IPv4.
        let sc = scope("::/96,::ffff:0.0.0.0/96");
        assert_eq!(
            sc.first_outside(ip("::"), ip("::ffff:255.255.255.255")),
            Some(ip("::1:0:0"))
        );
        let sc = scope("0.0.0.0/0");
        assert_eq!(
            sc.first_outside(ip("::ffff:0.0.0.0"), ip("::ffff:255.255.255.255")),
            None
        );
        assert_eq!(
            sc.first_outside(ip("::ffff:0.0.0.0"), ip("::1:0:0:0")),
            Some(ip("::1:0:0:0"))
        );
    }

    #[test]
    fn bad_scopes_are_refused() {
        let e = |s: &str| Scope::parse(&[s.to_string()]).unwrap_err().to_string();
        assert!(e("").contains("empty"));
        assert!(e(" , ").contains("empty"));
        assert!(e("127.0.0.1:25").contains("not ports"));
        assert!(e("localhost").contains("not names"));
        assert!(e("127.0.0.0/88").contains("no file by that name"));
        assert!(e("0x7f.0.0.1").contains("write 127.0.0.1"));
        assert_eq!(Scope::parse(&[]).unwrap(), None);
    }

    #[test]
    fn a_scope_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scope.txt");
        std::fs::write(&path, "# our networks\n127.0.0.0/8\n::1 # loopback\n\n").unwrap();
        let path = path.to_str().unwrap().to_string();
        let sc = Scope::parse(&[path.clone(), "192.0.2.1".into()])
            .unwrap()
            .unwrap();
        assert!(sc.allows(ip("127.0.0.5")) && sc.allows(ip("::1")) && sc.allows(ip("192.0.2.1")));
        assert!(!sc.allows(ip("192.0.2.2")));
        assert!(sc.to_string().contains(&path));
    }

    #[test]
    fn plans_outside_the_scope_are_refused_naming_the_target() {
        let specs: Vec<Spec> = ["127.0.0.1", "127.0.1.0/24", "mail.example.org"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let plan = Plan::new(&specs, &[], &[25]).unwrap();
        scope("127.0.0.0/8").check_plan(&plan, &specs).unwrap();
        let e = scope("127.0.0.0/24")
            .check_plan(&plan, &specs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("target 127.0.1.0-127.0.1.255"), "{e}");
        assert!(e.contains("(127.0.1.0 is not in it)"), "{e}");
        assert!(e.contains("--scope 127.0.0.0/24"), "{e}");
        // What --exclude removed is not a target.
        let exclude: Vec<Spec> = vec!["127.0.1.0/24".parse().unwrap()];
        let plan = Plan::new(&specs, &exclude, &[25]).unwrap();
        scope("127.0.0.0/24").check_plan(&plan, &specs).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn first_outside_matches_a_naive_walk(a in 0u32..48, b in 0u32..48, c in 0u32..48, d in 0u32..48, s in 0u32..48, t in 0u32..48) {
            let v = |x: u32| IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + x));
            let sc = scope(&format!("{}-{},{}-{}", v(a.min(b)), v(a.max(b)), v(c.min(d)), v(c.max(d))));
            let inside = |x: u32| (a.min(b)..=a.max(b)).contains(&x) || (c.min(d)..=c.max(d)).contains(&x);
            let want = (s.min(t)..=s.max(t)).find(|x| !inside(*x)).map(v);
            proptest::prop_assert_eq!(sc.first_outside(v(s.min(t)), v(s.max(t))), want);
        }
    }
}
