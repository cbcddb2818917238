//! What may be dialled once a job's names are resolved. The scope, the
//! exclusions and reserved space apply to every address that would be
//! dialled, however it was named (an address, a range, a host name, an
//! `mx:` domain): the plan subtracts ranges before the scan, and this
//! guard judges each resolved address before the probe dials it.

use crate::targets::{AddrSet, Scope};
use std::net::IpAddr;

/// The checks applied to every address before it is dialled.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// `--scope`: outside it, nothing is sent.
    pub scope: Option<Scope>,
    /// `--exclude` / `--exclude-file` addresses and ranges.
    pub exclude: AddrSet,
    /// `--exclude` / `--exclude-file` names, matched against the name an
    /// address was found by (a host name or an MX exchange).
    pub exclude_names: ExcludedNames,
    /// Reserved space skipped (absent with `--include-reserved`).
    pub reserved: Option<AddrSet>,
    /// `--show-excluded`: write a record for each excluded address.
    pub show_excluded: bool,
}

/// Excluded host names, found in constant time whatever their number
/// (a million `--exclude-file` lines must not make each host pay for all).
/// Matched without case and without a trailing dot.
#[derive(Debug, Clone, Default)]
pub struct ExcludedNames(std::collections::HashMap<String, String>);

impl ExcludedNames {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        ExcludedNames(
            names
                .into_iter()
                .map(|n| (Self::key(n), n.to_string()))
                .collect(),
        )
    }

    fn key(name: &str) -> String {
        name.trim_end_matches('.').to_ascii_lowercase()
    }

    /// The exclusion as the user wrote it, if `name` is excluded.
    pub fn find(&self, name: &str) -> Option<&str> {
        self.0.get(&Self::key(name)).map(String::as_str)
    }
}

/// The guard's decision about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    Dial,
    /// Outside the scope: recorded as an error, never dialled.
    OutOfScope(String),
    /// Excluded: not dialled, counted (recorded with `--show-excluded`).
    Excluded(String),
}

impl Guard {
    /// May `ip` (found by `name`, if by one) be dialled? Exclusions are
    /// asked first: what the user left out is not an error.
    pub fn admit(&self, ip: IpAddr, name: Option<&str>) -> Admit {
        let from = name.map_or(String::new(), |n| format!(" (from {n})"));
        if let Some(n) = name {
            let n = n.trim_end_matches('.');
            if let Some(e) = self.exclude_names.find(n) {
                return Admit::Excluded(format!("excluded: {ip} (from {n}): {e} is in --exclude"));
            }
        }
        if self.exclude.contains(ip) {
            return Admit::Excluded(format!("excluded: {ip}{from} is in --exclude"));
        }
        if self.reserved.as_ref().is_some_and(|r| r.contains(ip)) {
            return Admit::Excluded(format!(
                "excluded: {ip}{from} is reserved space (pass --include-reserved to scan it)"
            ));
        }
        match &self.scope {
            Some(scope) if !scope.allows(ip) => Admit::OutOfScope(format!(
                "out-of-scope: {ip}{from} is outside --scope {scope}"
            )),
            _ => Admit::Dial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Spec;

    fn specs(list: &[&str]) -> Vec<Spec> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard() -> Guard {
        Guard {
            scope: Scope::parse(&["127.0.0.0/8,::1".into()]).unwrap(),
            exclude: AddrSet::from_specs(&specs(&["127.0.0.12", "127.0.1.0/24"])),
            exclude_names: ExcludedNames::new(["mx2.lab.test"]),
            reserved: Some(AddrSet::from_specs(&crate::targets::reserved())),
            show_excluded: false,
        }
    }

    #[test]
    fn every_resolved_address_is_judged() {
        let g = guard();
        assert_eq!(g.admit(ip("127.0.0.11"), Some("mx1.lab.test")), Admit::Dial);
        assert_eq!(g.admit(ip("::1"), None), Admit::Dial);
        assert_eq!(
            g.admit(ip("127.0.0.12"), Some("mail.lab.test")),
            Admit::Excluded("excluded: 127.0.0.12 (from mail.lab.test) is in --exclude".into())
        );
        assert!(matches!(g.admit(ip("127.0.1.9"), None), Admit::Excluded(_)));
        assert!(matches!(
            g.admit(ip("::ffff:127.0.0.12"), None),
            Admit::Excluded(_)
        ));
        let Admit::Excluded(why) = g.admit(ip("127.0.0.13"), Some("MX2.lab.test.")) else {
            panic!("an excluded exchange name")
        };
        assert!(why.contains("mx2.lab.test is in --exclude"), "{why}");
        let Admit::Excluded(why) = g.admit(ip("0.0.0.0"), Some("zero.lab.test")) else {
            panic!("reserved space")
        };
        assert!(why.contains("reserved space"), "{why}");
        assert_eq!(
            g.admit(ip("10.0.0.1"), Some("far.lab.test")),
            Admit::OutOfScope(
                "out-of-scope: 10.0.0.1 (from far.lab.test) is outside --scope 127.0.0.0/8,::1"
                    .into()
            )
        );
        assert!(matches!(
            g.admit(ip("::ffff:10.0.0.1"), None),
            Admit::OutOfScope(_)
        ));
        assert_eq!(g.admit(ip("::ffff:127.0.0.1"), None), Admit::Dial);
    }

    #[test]
    fn no_scope_and_nothing_excluded_dials_everything() {
        let g = Guard::default();
        for a in ["0.0.0.0", "10.0.0.1", "224.0.0.1", "::1"] {
            assert_eq!(g.admit(ip(a), Some("x.example")), Admit::Dial, "{a}");
        }
    }
}
