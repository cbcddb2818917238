//! Whether a lookup (PTR, DNS blocklists) is made for a target.

/// Whether a lookup is made for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// For every target.
    On,
    /// For none.
    Off,
    /// For targets found through a domain's MX records only: a range scan
    /// of a /16 would otherwise cost hundreds of thousands of queries.
    Auto,
}

impl Switch {
    /// Is the lookup made for a target (`mx`: found through MX records)?
    pub fn wanted(self, mx: bool) -> bool {
        match self {
            Switch::On => true,
            Switch::Off => false,
            Switch::Auto => mx,
        }
    }

    /// `check` looks at one server: `Auto` means on there.
    pub fn or_on(self) -> Switch {
        match self {
            Switch::Auto => Switch::On,
            other => other,
        }
    }
}
