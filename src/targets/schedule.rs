//! The order a scan walks its plan: random (a keyed permutation) or
//! sequential, cut into shards, and started from a checkpoint.

use super::permutation::Permutation;
use super::plan::{Job, Plan};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// `--shard K/N`: this run takes positions K, K+N, K+2N, … (0 ≤ K < N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: expected K/N, like 0/4"))?;
        let index: u64 = k
            .trim()
            .parse()
            .map_err(|_| format!("--shard {s:?}: K is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("--shard {s:?}: N is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "--shard {s:?}: K must be from 0 to N-1 (shards are numbered from 0)"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// In JSON (the `--resume` checkpoint, the meta line) a shard is the text
/// `--shard` takes: `"0/4"`.
impl serde::Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shard, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Shard {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shard".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`--shard K/N`: this run's share, K from 0 to N-1.",
            "type": "string",
            "pattern": "^[0-9]+/[0-9]+$",
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Scan order for `--order`. In JSON, the lowercase name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[derive(schemars::JsonSchema)]
pub enum Order {
    /// A reproducible pseudo-random order from `--seed`: spreads load across networks.
    Random,
    /// Address order.
    Sequential,
}

impl Order {
    /// The name `--order` takes, the same as in JSON (tested).
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Random => "random",
            Order::Sequential => "sequential",
        }
    }
}

/// Which jobs a run does, and in what order. Position `j` (0-based, within
/// this shard) is the unit of checkpoints.
#[derive(Debug, Clone)]
pub struct Schedule {
    plan: Arc<Plan>,
    permutation: Option<Permutation>,
    shard: Shard,
}

impl Schedule {
    pub fn new(plan: Arc<Plan>, order: Order, seed: u64, shard: Shard) -> Self {
        let permutation = (order == Order::Random).then(|| Permutation::new(plan.len(), seed));
        Schedule {
            plan,
            permutation,
            shard,
        }
    }

    /// Jobs in this shard.
    pub fn len(&self) -> u128 {
        let total = self.plan.len();
        let (k, n) = (u128::from(self.shard.index), u128::from(self.shard.count));
        if total <= k {
            0
        } else {
            (total - k).div_ceil(n)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The job at position `j` of this shard.
    pub fn get(&self, j: u128) -> Option<Job> {
        if j >= self.len() {
            return None;
        }
        let global = u128::from(self.shard.index) + j * u128::from(self.shard.count);
        let index = match &self.permutation {
            Some(p) => p.apply(global),
            None => global,
        };
        self.plan.get(index)
    }

    /// `(position, job)` from position `start` on, generated on demand.
    pub fn iter_from(&self, start: u128) -> impl Iterator<Item = (u128, Job)> + '_ {
        let len = self.len();
        (start..len).map_while(move |j| self.get(j).map(|job| (j, job)))
    }
}

/// A random seed when the user gives none: std's per-process random keys.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_shard_read_and_write_the_text_the_flags_take() {
        for order in [Order::Random, Order::Sequential] {
            let json = serde_json::to_string(&order).unwrap();
            assert_eq!(json, format!("\"{}\"", order.as_str()));
            let flag = <Order as clap::ValueEnum>::to_possible_value(&order).unwrap();
            assert_eq!(flag.get_name(), order.as_str());
        }
        let shard: Shard = serde_json::from_str("\"1/4\"").unwrap();
        assert_eq!((shard.index, shard.count), (1, 4));
        assert_eq!(serde_json::to_string(&shard).unwrap(), "\"1/4\"");
        assert!(serde_json::from_str::<Shard>("\"4/4\"").is_err());
        assert!(serde_json::from_str::<Shard>("14").is_err());
    }
    use crate::targets::Spec;

    fn plan(n: u32) -> Arc<Plan> {
        let spec: Spec = format!("10.0.0.0-10.0.{}.{}", (n - 1) / 256, (n - 1) % 256)
            .parse()
            .unwrap();
        Arc::new(Plan::new(&[spec], &[], &[25]).unwrap())
    }

    fn jobs(s: &Schedule) -> Vec<Job> {
        s.iter_from(0).map(|(_, j)| j).collect()
    }

    #[test]
    fn shards_are_disjoint_and_complete() {
        let plan = plan(1001);
        for n in [1u64, 2, 3, 7, 1000, 1001, 2000] {
            let mut all: Vec<String> = Vec::new();
            for k in 0..n {
                let s = Schedule::new(
                    plan.clone(),
                    Order::Random,
                    99,
                    Shard { index: k, count: n },
                );
                let got = jobs(&s);
                assert_eq!(got.len() as u128, s.len());
                all.extend(got.iter().map(|j| format!("{j:?}")));
            }
            let before = all.len();
            all.sort();
            all.dedup();
            assert_eq!(before, 1001, "n={n}");
            assert_eq!(all.len(), 1001, "n={n}: shards overlap");
        }
    }

    #[test]
    fn sequential_order_is_address_order() {
        let s = Schedule::new(plan(3), Order::Sequential, 0, Shard::default());
        assert_eq!(
            jobs(&s),
            vec![
                Job::Addr("10.0.0.0:25".parse().unwrap()),
                Job::Addr("10.0.0.1:25".parse().unwrap()),
                Job::Addr("10.0.0.2:25".parse().unwrap())
            ]
        );
    }

    #[test]
    fn resume_continues_the_same_sequence() {
        let s = Schedule::new(plan(500), Order::Random, 5, Shard { index: 1, count: 3 });
        let all: Vec<(u128, Job)> = s.iter_from(0).collect();
        let rest: Vec<(u128, Job)> = s.iter_from(40).collect();
        assert_eq!(&all[40..], &rest[..]);
    }

    #[test]
    fn shard_parsing() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().unwrap_err().contains("0 to N-1"));
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
